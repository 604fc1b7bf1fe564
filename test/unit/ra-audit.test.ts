/**
 * The audit trail's RA helpers (src/ra/audit.ts) on an in-memory store: `recordConfigReload`
 * (for the configuration reload) records who and what; listings check their filters and page
 * with `before`; `verifyAuditTrail` with a recorded head passes while the head row is intact
 * and fails when the chain no longer holds it; `parseAuditHead` accepts only SEQ:HASH.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AuditQueryError,
  listAuditRecords,
  parseAuditHead,
  recordAudit,
  recordConfigReload,
  recentFailures,
  verifyAuditTrail,
} from '../../src/ra/audit.js';
import { openStore } from '../../src/store/index.js';

test('recordConfigReload, listings, recorded heads', async (t) => {
  const store = await openStore(':memory:');
  t.after(() => store.close());
  await recordConfigReload(store, 'cli:root', { profiles: 3, changed: 'profiles', skipped: undefined });
  await recordAudit(store, 'device', 'enroll.refused', 'tx-1', {
    reason: 'wrong challenge',
    failInfo: 'badRequest',
  });
  await recordAudit(store, 'alice', 'certificate.revoked', '0abc', { reason: 'superseded' });

  const reload = await listAuditRecords(store, { action: 'config.reloaded' });
  assert.deepEqual(
    reload.items.map((r) => [r.actor, r.action, r.target, r.details]),
    [['cli:root', 'config.reloaded', null, { profiles: 3, changed: 'profiles' }]],
  );
  const first = await listAuditRecords(store, { limit: 2 });
  assert.deepEqual(
    first.items.map((r) => r.seq),
    [3, 2],
  );
  assert.equal(first.nextBefore, 2);
  const second = await listAuditRecords(store, { limit: 2, before: first.nextBefore! });
  assert.deepEqual(
    second.items.map((r) => r.seq),
    [1],
  );
  assert.equal(second.nextBefore, undefined);
  for (const bad of [{ action: 'enroll' }, { action: 'nope.' }, { limit: 0 }, { limit: 501 }, { before: 0 }])
    await assert.rejects(listAuditRecords(store, bad), AuditQueryError, JSON.stringify(bad));
  assert.deepEqual(
    (await recentFailures(store)).map((f) => [f.transactionId, f.reason, f.failInfo, f.source, f.profile]),
    [['tx-1', 'wrong challenge', 'badRequest', null, null]],
  );

  const v = await verifyAuditTrail(store, { pageSize: 2 });
  assert.equal(v.ok, true);
  assert.equal(v.rows, 3);
  const head = parseAuditHead(`${v.head.seq}:${v.head.hash.toUpperCase()}`);
  assert.deepEqual(head, v.head);
  await recordAudit(store, 'alice', 'request.approved', 'tx-2');
  assert.equal((await verifyAuditTrail(store, { expectHead: head, pageSize: 2 })).ok, true);
  const wrong = await verifyAuditTrail(store, { expectHead: { seq: 3, hash: 'f'.repeat(64) } });
  assert.equal(wrong.ok, false);
  assert.match(wrong.headMismatch ?? '', /row 3 has another hash/);
  const beyond = await verifyAuditTrail(store, { expectHead: { seq: 9, hash: v.head.hash } });
  assert.match(beyond.headMismatch ?? '', /row 9 is not in the chain/);
  for (const bad of ['3', '0:' + 'a'.repeat(64), '3:' + 'a'.repeat(63), 'x:y'])
    assert.throws(() => parseAuditHead(bad), AuditQueryError, bad);
});
