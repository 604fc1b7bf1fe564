/**
 * The manual-approval queue limiter (src/ra/pending-limits.ts): per-address rate of new pending
 * requests, global cap on open pending requests (overloaded marker → 503), counted in the store
 * and so shared by instances on one store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { FailInfo } from '../../src/scep/types.js';
import { isPendingOverloaded, PendingLimits, PENDING_RATE_TEXT } from '../../src/ra/pending-limits.js';
import { openStore, type Store } from '../../src/store/index.js';
import { tempDir } from '../helpers/scep-server.js';

const T0 = 30_000_000 * 60_000; // a window start

async function addPending(store: Store, n: number, prefix = 'p'): Promise<void> {
  for (let i = 0; i < n; i++)
    await store.beginTransaction({
      transactionId: `${prefix}-${i}`,
      signerKeyHash: 'aa',
      messageType: 19,
      state: 'pending',
    });
}

test('pending limits: a burst of 300 from one address within a minute queues at most 100', async (t) => {
  const store = await openStore(':memory:');
  t.after(() => store.close());
  let now = T0 + 1_000;
  const limits = new PendingLimits(store, { now: () => now });
  const ctx = { remoteAddress: '203.0.113.10' };
  let passed = 0;
  for (let i = 0; i < 300; i++) {
    const d = await limits.checkNewPending(ctx);
    if (d === undefined) passed++;
    else {
      assert.ok(!isPendingOverloaded(d));
      assert.equal(d.status, 'FAILURE');
      if (d.status === 'FAILURE') {
        assert.equal(d.failInfo, FailInfo.badRequest);
        assert.equal(d.text, PENDING_RATE_TEXT);
      }
    }
    now += 100; // 300 requests within 30 s
  }
  assert.equal(passed, 100);
  assert.equal(await limits.checkNewPending({ remoteAddress: '203.0.113.11' }), undefined, 'other addresses');
  // IPv6 addresses of one /64 share a budget.
  const v6 = new PendingLimits(store, { maxPerAddress: 2, now: () => now });
  assert.equal(await v6.checkNewPending({ remoteAddress: '2001:db8::1' }), undefined);
  assert.equal(await v6.checkNewPending({ remoteAddress: '2001:db8::2' }), undefined);
  assert.notEqual(await v6.checkNewPending({ remoteAddress: '2001:db8::3' }), undefined);
  now = T0 + 60_000; // the next minute
  assert.equal(await limits.checkNewPending(ctx), undefined);
});

test('pending limits: a full queue gives the overloaded marker (503 + Retry-After)', async (t) => {
  const store = await openStore(':memory:');
  t.after(() => store.close());
  const warnings: string[] = [];
  const limits = new PendingLimits(
    store,
    { maxOpen: 5, retryAfterSeconds: 120, now: () => T0 },
    { warn: (_o, msg) => warnings.push(msg) },
  );
  await addPending(store, 4);
  assert.equal(await limits.checkNewPending({ remoteAddress: '192.0.2.1' }), undefined);
  await addPending(store, 1, 'q');
  const d = await limits.checkNewPending({ remoteAddress: '192.0.2.2' });
  assert.deepEqual(d, { overloaded: true, retryAfterSeconds: 120 });
  assert.ok(isPendingOverloaded(d));
  await limits.checkNewPending({ remoteAddress: '192.0.2.3' });
  assert.equal(warnings.filter((w) => /queue full/.test(w)).length, 1, 'logged once while full');
  // Deciding one frees a slot.
  assert.equal(await store.decide('q-0', 'rejected', 'no'), true);
  assert.equal(await limits.checkNewPending({ remoteAddress: '192.0.2.4' }), undefined);
  assert.throws(() => new PendingLimits(store, { maxOpen: -1 }), RangeError);
});

test('pending limits: two instances on one store share the per-address rate', async (t) => {
  const path = join(tempDir(t, 'scepter-pending-'), 'db.sqlite');
  const a = await openStore(`sqlite:${path}`);
  const b = await openStore(`sqlite:${path}`);
  t.after(async () => {
    await a.close();
    await b.close();
  });
  const o = { maxPerAddress: 3, now: () => T0 + 5 };
  const la = new PendingLimits(a, o);
  const lb = new PendingLimits(b, o);
  const ctx = { remoteAddress: '198.51.100.5' };
  assert.equal(await la.checkNewPending(ctx), undefined);
  assert.equal(await lb.checkNewPending(ctx), undefined);
  assert.equal(await la.checkNewPending(ctx), undefined);
  assert.notEqual(await lb.checkNewPending(ctx), undefined, 'instance b counts instance a');
  assert.notEqual(await la.checkNewPending(ctx), undefined);
});
