/**
 * Group commit (src/store/group-commit.ts) without a syncer: a batch whose jobs all succeed runs
 * each job once in one transaction; when a job of a batch throws, the first attempt is undone
 * completely and the batch runs again with a savepoint per job, so the failing job alone is
 * rolled back (its partial writes too) and every other job's writes land exactly once; a batch
 * of one that throws leaves nothing behind and no transaction open; `onUndo` hears of every
 * rollback of a job's work.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { GroupCommitter } from '../../src/store/group-commit.js';

function setup(t: { after: (fn: () => void) => void }) {
  const db = new Database(':memory:');
  t.after(() => db.close());
  db.exec('CREATE TABLE t (v INTEGER PRIMARY KEY); CREATE TABLE n (k TEXT PRIMARY KEY, c INTEGER NOT NULL)');
  db.exec("INSERT INTO n VALUES ('hits', 0)");
  const ins = db.prepare('INSERT INTO t (v) VALUES (?)');
  const bump = db.prepare("UPDATE n SET c = c + 1 WHERE k = 'hits' RETURNING c");
  const values = () =>
    (db.prepare('SELECT v FROM t ORDER BY v').all() as Array<{ v: number }>).map((r) => r.v);
  const hits = () => (db.prepare("SELECT c FROM n WHERE k = 'hits'").get() as { c: number }).c;
  let undos = 0;
  const gc = new GroupCommitter(db, 0, 2000, undefined, () => undos++);
  return { db, gc, ins, bump, values, hits, undos: () => undos };
}

test('a batch that succeeds runs each job once, in one commit, without undo', async (t) => {
  const { gc, ins, bump, values, hits, undos } = setup(t);
  const runs = [0, 0, 0];
  const results = await Promise.all(
    [1, 2, 3].map((v, i) =>
      gc.submit(() => {
        runs[i]!++;
        ins.run(v);
        return (bump.get() as { c: number }).c;
      }),
    ),
  );
  assert.deepEqual(results, [1, 2, 3]);
  assert.deepEqual(runs, [1, 1, 1]);
  assert.deepEqual(values(), [1, 2, 3]);
  assert.equal(hits(), 3);
  assert.equal(gc.commits, 1);
  assert.equal(undos(), 0);
});

test('a failing job in a batch is undone alone; the others land exactly once', async (t) => {
  const { db, gc, ins, bump, values, hits, undos } = setup(t);
  const settled = await Promise.allSettled([
    gc.submit(() => (ins.run(1), (bump.get() as { c: number }).c)),
    gc.submit(() => {
      ins.run(2); // a partial write, then the job fails
      bump.get();
      throw new Error('job 2 fails');
    }),
    gc.submit(() => (ins.run(3), (bump.get() as { c: number }).c)),
    gc.submit(() => ins.run(1).changes), // a unique violation against job 1
  ]);
  assert.deepEqual(
    settled.map((s) => s.status),
    ['fulfilled', 'rejected', 'fulfilled', 'rejected'],
  );
  assert.ok(settled[0]!.status === 'fulfilled' && settled[0]!.value === 1);
  assert.ok(settled[1]!.status === 'rejected' && /job 2 fails/.test(String(settled[1]!.reason)));
  assert.ok(settled[2]!.status === 'fulfilled' && settled[2]!.value === 2);
  assert.ok(settled[3]!.status === 'rejected' && /UNIQUE/.test(String(settled[3]!.reason)));
  // The first attempt (which ran job 1 before job 2 threw) left nothing: job 1 counted once.
  assert.deepEqual(values(), [1, 3]);
  assert.equal(hits(), 2);
  assert.equal(gc.commits, 1, 'one commit for the batch');
  assert.equal(db.inTransaction, false);
  // The failed attempt, then job 2 and job 4 in their savepoints.
  assert.equal(undos(), 3);
});

test('a batch of one that fails leaves nothing and no open transaction', async (t) => {
  const { db, gc, ins, values, undos } = setup(t);
  await assert.rejects(
    gc.submit(() => {
      ins.run(7);
      throw new RangeError('alone');
    }),
    RangeError,
  );
  assert.deepEqual(values(), []);
  assert.equal(db.inTransaction, false);
  assert.equal(undos(), 1);
  assert.equal(await gc.submit(() => ins.run(8).changes), 1, 'the next write works');
  assert.deepEqual(values(), [8]);
});
