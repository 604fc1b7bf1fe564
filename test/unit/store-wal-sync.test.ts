/**
 * Group commit with an off-thread syncer: a write resolves only after the sync that covers
 * its COMMIT; a failed sync rejects every write it covered; syncs coalesce; the real
 * WalSyncer keeps an on-disk store durable across reopen.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { GroupCommitter, type CommitSyncer } from '../../src/store/group-commit.js';
import { openSqliteStore } from '../../src/store/sqlite.js';

class ManualSyncer implements CommitSyncer {
  calls: Array<(err: Error | null) => void> = [];
  sync(done: (err: Error | null) => void): void {
    this.calls.push(done);
  }
}

const tick = () => new Promise((r) => setImmediate(r));

test('a write settles only after its sync; failed syncs reject; syncs coalesce', async (t) => {
  const db = new Database(':memory:');
  t.after(() => db.close());
  db.exec('CREATE TABLE t (v INTEGER)');
  const ins = db.prepare('INSERT INTO t (v) VALUES (?)');
  const syncer = new ManualSyncer();
  const gc = new GroupCommitter(db, 0, 2000, syncer);

  let done = false;
  const w1 = gc.submit(() => ins.run(1).changes).then((v) => ((done = true), v));
  await tick();
  assert.equal(syncer.calls.length, 1, 'the batch committed and asked for a sync');
  assert.equal((db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n, 1, 'committed');
  await tick();
  assert.equal(done, false, 'not resolved before the sync finished');

  // Two more batches while the first sync runs: they wait for ONE further sync.
  const w2 = gc.submit(() => ins.run(2).changes);
  await tick();
  const w3 = gc.submit(() => ins.run(3).changes);
  await tick();
  assert.equal(syncer.calls.length, 1, 'no second sync while one runs');
  syncer.calls[0]!(null);
  assert.equal(await w1, 1);
  assert.equal(syncer.calls.length, 2, 'one sync for both later batches');
  syncer.calls[1]!(new Error('EIO'));
  await assert.rejects(w2, /EIO/);
  await assert.rejects(w3, /EIO/);
  assert.equal(gc.syncs, 2);

  // Reads never release what a power loss could take back: after the failed sync the rows of
  // w2/w3 are visible but not durable, so a read waits for a sync that succeeds.
  let read = false;
  const r = gc.durableRead(() => (db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n);
  void r.then(() => (read = true));
  await tick();
  assert.equal(read, false, 'the read waits');
  assert.equal(syncer.calls.length, 3, 'and asked for a sync');
  syncer.calls[2]!(null);
  assert.equal(await r, 3);
  // Nothing unsynced now: reads and whenSynced are immediate.
  assert.equal(await gc.durableRead(() => 7), 7);
  await gc.whenSynced();
  assert.equal(syncer.calls.length, 3);

  // A write may settle at COMMIT when its result says it is intermediate state.
  const early = await gc.submit(() => ins.run(4).changes, { durable: (n) => n !== 1 });
  assert.equal(early, 1, 'settled without a sync');
  assert.equal(syncer.calls.length, 3);
  const late = gc.submit(() => ins.run(5).changes, { durable: (n) => n === 1 });
  await tick();
  assert.equal(syncer.calls.length, 4, 'the predicate asked for durability');
  syncer.calls[3]!(null);
  assert.equal(await late, 1);
});

test('an on-disk store with the WAL syncer is durable across reopen', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'scepter-walsync-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 's.db');
  const s1 = openSqliteStore(path);
  await Promise.all(Array.from({ length: 50 }, (_, i) => s1.setSetting(`k${i}`, `v${i}`)));
  const { writes, commits } = s1.stats();
  assert.equal(writes, 50);
  assert.ok(commits < writes, `writes shared commits (${commits})`);
  // The off-thread path is the one in use: the WAL was fsync'd by the syncer, not by SQLite.
  const inner = s1 as unknown as { gc: GroupCommitter; db: Database.Database };
  assert.ok(inner.gc.syncs > 0 && inner.gc.syncs <= commits, `syncs ${inner.gc.syncs}`);
  assert.equal(inner.db.pragma('synchronous', { simple: true }), 1, 'SQLite itself commits with NORMAL');
  await s1.close();
  const s2 = openSqliteStore(path);
  t.after(() => s2.close());
  assert.equal(await s2.getSetting('k49'), 'v49');
  assert.deepEqual(await s2.integrityCheck(), { ok: true, problems: [] });
});
