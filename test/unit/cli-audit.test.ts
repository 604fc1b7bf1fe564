/**
 * `scepter audit list|verify` and the CLI's actor, with the built CLI (ensureBuilt): an
 * enrollment and CLI actions (`challenge new`, `pending approve`, `ca rollover`/`ca activate`)
 * are listed with actor `cli:<os user>`; stored control characters are printed escaped;
 * `verify` prints the head and accepts it with `--head`; after a row is edited with raw SQL
 * (the append-only triggers dropped first, as an attacker could) `verify` exits 1 naming the
 * row, and a recorded head that no longer matches fails too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ScepClient, type IssuedResult, type PendingResult } from '../../src/client/index.js';
import { scepterCli } from '../helpers/cli.js';
import { ensureBuilt } from '../helpers/build.js';
import { pooledRsaKey } from '../helpers/pki.js';
import { tempDir, testServer, TEST_CHALLENGE } from '../helpers/scep-server.js';

/** Runs the built CLI without blocking this process (the test server keeps serving). */
async function cli(main: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await scepterCli(args, { main });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

test('scepter audit list/verify: CLI actors, escaping, tamper detection, recorded head', async (t) => {
  const build = ensureBuilt();
  assert.equal(build.status, 0, `build failed:\n${build.output}`);
  const main = build.main;
  const data = tempDir(t);
  const s = await testServer(t, { dataDir: data, lifecycle: { approval: { mode: 'challenge-or-manual' } } });
  const c = new ScepClient({ url: s.url });
  const issued = (await c.enroll({
    subject: 'CN=cli-audit',
    challenge: TEST_CHALLENGE,
    key: pooledRsaKey(1, 2048),
  })) as IssuedResult;
  assert.equal(issued.status, 'issued');
  const queued = (await c.enroll({ subject: 'CN=cli-queued', key: pooledRsaKey(2, 2048) })) as PendingResult;
  // A stored control character (as if a client had supplied it) must print escaped.
  await s.enrollment!.store.appendAudit([
    { actor: 'device', action: 'enroll.refused', target: 'evil\u001b[2J\u202e', details: { reason: 'x\ny' } },
  ]);
  await s.close();

  const me = `cli:${userInfo().username}`;
  assert.equal((await cli(main, ['challenge', 'new', '--data', data])).code, 0);
  assert.equal((await cli(main, ['pending', 'approve', queued.transactionId, '--data', data])).code, 0);
  const roll = await cli(main, ['ca', 'rollover', '--data', data, '--key-size', '2048']);
  assert.equal(roll.code, 0, roll.err);
  const act = await cli(main, ['ca', 'activate', '--data', data]);
  assert.equal(act.code, 0, act.err);

  const list = await cli(main, ['audit', 'list', '--data', data, '--json']);
  assert.equal(list.code, 0, list.err);
  const items = (JSON.parse(list.out) as { items: Array<Record<string, unknown>> }).items;
  assert.deepEqual(
    items.map((i) => [i.action, i.actor]),
    [
      ['ca.activated', me],
      ['ca.rollover.staged', me],
      ['request.approved', me],
      ['challenge.minted', me],
      ['enroll.refused', 'device'],
      ['enroll.issued', 'device'],
    ],
  );
  const filtered = await cli(main, ['audit', 'list', '--data', data, '--action', 'ca.', '--limit', '1']);
  assert.equal(filtered.code, 0);
  assert.match(filtered.out, /ca\.activated/);
  assert.doesNotMatch(filtered.out, /ca\.rollover\.staged/);
  assert.match(filtered.out, /more: --before 6/);
  const table = await cli(main, ['audit', 'list', '--data', data]);
  assert.ok(!/[\u001b\u202e]/.test(table.out), 'raw control characters printed');
  assert.match(table.out, /evil\\x1b\[2J\\u202e/);
  assert.equal((await cli(main, ['audit', 'list', '--data', data, '--action', 'bogus'])).code, 2);

  const ok = await cli(main, ['audit', 'verify', '--data', data]);
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /intact: 6 rows/);
  const head = /head (\d+:[0-9a-f]{64})/.exec(ok.out)?.[1];
  assert.ok(head);
  assert.equal((await cli(main, ['audit', 'verify', '--data', data, '--head', head])).code, 0);

  // An attacker with write access drops the triggers and edits row 2.
  const db = new Database(join(data, 'scepter.db'));
  db.exec('DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete');
  db.prepare("UPDATE audit_log SET details = '{}' WHERE seq = 2").run();
  const broken = await cli(main, ['audit', 'verify', '--data', data]);
  assert.equal(broken.code, 1);
  assert.match(broken.err, /BROKEN at row 2/);
  // Rebuilding the whole chain from scratch passes the chain check, not the recorded head:
  // the last row removed here stands for any rewrite after the head was recorded.
  db.prepare('DELETE FROM audit_log WHERE seq >= 2').run();
  db.close();
  const cut = await cli(main, ['audit', 'verify', '--data', data, '--head', head]);
  assert.equal(cut.code, 1);
  assert.match(cut.err, /row 6 is not in the chain/);
});
