/**
 * The adaptive Retry-After of PENDING answers (src/ra/retry-after.ts): the configured value for
 * a small queue; for a large one it doubles per 15 idle minutes without a decision and spreads
 * the queue's polls over a budget, within [--retry-after, --max-retry-after]; an operator
 * decision brings it back. Clocks are injected: no waiting.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveApprovalConfig } from '../../src/ra/approval.js';
import { decideRequest } from '../../src/ra/operator.js';
import {
  adaptiveRetryAfter,
  LAST_DECISION_SETTING,
  recordDecision,
  RetryAfterHint,
} from '../../src/ra/retry-after.js';
import { PkiStatus } from '../../src/scep/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { device, openCertRep, pkcsReq } from '../helpers/scep-server.js';
import { testService } from '../helpers/service.js';

test('adaptiveRetryAfter: base for a small queue; doubling per idle period and the poll budget for a large one; bounded', () => {
  assert.equal(adaptiveRetryAfter(60, 3600, { open: 99, idleSeconds: 86_400 }), 60);
  assert.equal(adaptiveRetryAfter(60, 3600, { open: 100, idleSeconds: 0 }), 60);
  assert.equal(adaptiveRetryAfter(60, 3600, { open: 100, idleSeconds: 899 }), 60);
  assert.equal(adaptiveRetryAfter(60, 3600, { open: 100, idleSeconds: 900 }), 120);
  assert.equal(adaptiveRetryAfter(60, 3600, { open: 100, idleSeconds: 3600 }), 960);
  assert.equal(adaptiveRetryAfter(60, 3600, { open: 100, idleSeconds: 5 * 3600 }), 3600, 'capped');
  // 20 polls per second for the whole queue: 10,000 pending → 500 s even while decisions flow.
  assert.equal(adaptiveRetryAfter(60, 3600, { open: 10_000, idleSeconds: 0 }), 500);
  assert.equal(adaptiveRetryAfter(60, 3600, { open: 100_000, idleSeconds: 0 }), 3600);
  assert.equal(adaptiveRetryAfter(60, 60, { open: 100_000, idleSeconds: 86_400 }), 60, 'max = base: fixed');
  assert.equal(adaptiveRetryAfter(60, 3600, { open: 500, idleSeconds: -10 }), 60, 'clock skew: no growth');
  assert.throws(
    () => resolveApprovalConfig({ retryAfterSeconds: 120, maxRetryAfterSeconds: 60 }),
    RangeError,
  );
  assert.equal(resolveApprovalConfig({ retryAfterSeconds: 7200 }).maxRetryAfterSeconds, 7200);
});

async function fill(store: Store, n: number, at: Date): Promise<void> {
  for (let i = 0; i < n; i++) {
    await store.beginTransaction({
      transactionId: `queued-${i}`,
      signerKeyHash: 'aa'.repeat(32),
      messageType: 19,
      state: 'pending',
      csr: Buffer.from([0x30, 0x00]),
      subject: `CN=queued-${i}`,
      requester: null,
      expiresAt: new Date(at.getTime() + 7 * 86_400_000),
    });
  }
}

test('RetryAfterHint: reads the queue and the last decision from the store; a decision resets it', async (t) => {
  const store = await openStore(':memory:');
  t.after(() => store.close());
  let now = Date.parse('2026-03-01T20:00:00Z');
  const hint = new RetryAfterHint(store, 60, 3600, () => new Date(now));
  await hint.refresh();
  assert.equal(hint.current(), 60, 'empty queue');
  await fill(store, 150, new Date(now));
  now += 2 * 3600_000;
  await hint.refresh();
  assert.equal(hint.current(), 3600, '150 waiting, nobody decided for 2 h → 60 × 2^8, capped');
  await recordDecision(store, new Date(now - 20 * 60_000));
  await hint.refresh();
  assert.equal(hint.current(), 120, 'a decision 20 min ago: one doubling');
  await recordDecision(store, new Date(now));
  await hint.refresh();
  assert.equal(hint.current(), 60);
});

test('the operator decision is recorded; the PENDING answer carries the adapted Retry-After', async (t) => {
  // Near the real clock: the store's decide() checks expiry against it.
  let now = Date.now();
  const s = await testService(t, {
    lifecycle: { approval: { mode: 'manual', retryAfterSeconds: 30, maxRetryAfterSeconds: 1800 } },
    now: () => new Date(now),
  });
  const d = device('CN=hint-1,O=Test', { pool: 10 });
  const first = pkcsReq(d, s.ca.cert, { challenge: '' });
  const a0 = await s.svc.pkiOperation(first.der, {});
  assert.equal(openCertRep(a0.body, first, d, [s.ca.cert]).status, PkiStatus.PENDING);
  assert.equal(a0.headers?.['retry-after'], '30');

  await fill(s.store, 120, new Date(now));
  now += 3600_000;
  await s.svc.lifecycle.maintain();
  const poll = pkcsReq(d, s.ca.cert, { challenge: '', transactionId: first.transactionId });
  const a1 = await s.svc.pkiOperation(poll.der, {});
  assert.equal(openCertRep(a1.body, poll, d, [s.ca.cert]).status, PkiStatus.PENDING);
  assert.equal(a1.headers?.['retry-after'], '480', '121 waiting, 1 h without a decision: 30 × 2^4');

  assert.equal(await s.store.getSetting(LAST_DECISION_SETTING), null);
  await decideRequest({ store: s.store, actor: 'test' }, 'queued-0', 'reject', 'not ours');
  const recorded = await s.store.getSetting(LAST_DECISION_SETTING);
  assert.ok(recorded !== null && Number.isFinite(Date.parse(recorded)), 'decideRequest records the decision');
});
