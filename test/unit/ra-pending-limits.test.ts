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
import { PkiStatus } from '../../src/scep/index.js';
import {
  caCerts,
  csrOf,
  device,
  openCertRep,
  pkcsReq,
  postPki,
  recipientOf,
  tempDir,
  testServer,
} from '../helpers/scep-server.js';

const T0 = 30_000_000 * 60_000; // a window start

async function addPending(store: Store, n: number, prefix = 'p', profile?: string): Promise<void> {
  for (let i = 0; i < n; i++)
    await store.beginTransaction({
      transactionId: `${prefix}-${i}`,
      signerKeyHash: 'aa',
      messageType: 19,
      state: 'pending',
      ...(profile !== undefined ? { profile } : {}),
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

test('pending limits per profile: a full queue or a busy address in one profile does not limit another', async (t) => {
  const store = await openStore(':memory:');
  t.after(() => store.close());
  const now = () => T0;
  const routers = new PendingLimits(store, { maxOpen: 3, maxPerAddress: 2, profile: 'routers', now });
  const laptops = new PendingLimits(store, { maxOpen: 3, maxPerAddress: 2, profile: 'laptops', now });
  await addPending(store, 3, 'r', 'routers');
  assert.ok(isPendingOverloaded(await routers.checkNewPending({ remoteAddress: '192.0.2.1' })));
  assert.equal(await laptops.checkNewPending({ remoteAddress: '192.0.2.1' }), undefined);
  assert.equal(await laptops.checkNewPending({ remoteAddress: '192.0.2.1' }), undefined);
  const third = await laptops.checkNewPending({ remoteAddress: '192.0.2.1' });
  assert.ok(third && !isPendingOverloaded(third) && third.status === 'FAILURE');
  assert.equal(third.text, PENDING_RATE_TEXT);
  await addPending(store, 3, 'l', 'laptops');
  assert.ok(isPendingOverloaded(await laptops.checkNewPending({ remoteAddress: '192.0.2.9' })));
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

// ---------------------------------------------------------------------------------------
// Through a running server (real HTTP): the limits are wired into the one enrollment path.

test('HTTP, manual approval, defaults: a burst of 300 new requests from one address is not all queued; polls are never limited', async (t) => {
  const s = await testServer(t, { lifecycle: { approval: { mode: 'manual' } } });
  const certs = await caCerts(s.url);
  const d = device('CN=flood,O=Test', { pool: 5 });
  const first = pkcsReq(d, recipientOf(certs), { content: csrOf(d, { challengePassword: '' }) });
  const statuses: PkiStatus[] = [];
  const texts: string[] = [];
  for (let i = 0; i < 300; i++) {
    const r =
      i === 0 ? first : pkcsReq(d, recipientOf(certs), { content: csrOf(d, { challengePassword: '' }) });
    const rep = openCertRep((await postPki(s.url, r.der)).body, r, d, certs);
    statuses.push(rep.status);
    if (rep.status === PkiStatus.FAILURE) texts.push(rep.failInfoText ?? '');
  }
  const queued = statuses.filter((x) => x === PkiStatus.PENDING).length;
  const refused = statuses.filter((x) => x === PkiStatus.FAILURE).length;
  assert.equal(queued + refused, 300);
  // At most 100 per fixed minute; the burst may straddle one minute boundary, never two.
  assert.ok(queued <= 200, `queued ${queued}`);
  assert.ok(refused >= 100, `refused ${refused}`);
  assert.ok(texts.every((x) => x === PENDING_RATE_TEXT));
  const open = await s.enrollment!.store.listTransactions({ state: 'pending', limit: 0 });
  assert.equal(open.total, queued);
  // A resend of a queued request is a poll, not a new request: still PENDING.
  const again = openCertRep((await postPki(s.url, first.der)).body, first, d, certs);
  assert.equal(again.status, PkiStatus.PENDING);
  // Counted in /metrics.
  const m = await (await fetch(`${s.url.replace(/\/scep$/, '')}/metrics`)).text();
  assert.match(m, new RegExp(`scepter_limit_refusals_total\\{limit="pending-rate"\\} ${refused}\\b`));
});

test('HTTP, manual approval: a full approval queue answers 503 with Retry-After; nothing is queued', async (t) => {
  const s = await testServer(t, {
    lifecycle: { approval: { mode: 'manual', maxPendingPerAddress: 0, maxOpenPending: 3 } },
  });
  const certs = await caCerts(s.url);
  const d = device('CN=queue,O=Test', { pool: 6 });
  for (let i = 0; i < 3; i++) {
    const r = pkcsReq(d, recipientOf(certs), { content: csrOf(d, { challengePassword: '' }) });
    assert.equal(openCertRep((await postPki(s.url, r.der)).body, r, d, certs).status, PkiStatus.PENDING);
  }
  const r = pkcsReq(d, recipientOf(certs), { content: csrOf(d, { challengePassword: '' }) });
  const res = await fetch(`${s.url}?operation=PKIOperation`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-pki-message' },
    body: r.der,
  });
  assert.equal(res.status, 503);
  assert.ok(Number(res.headers.get('retry-after')) >= 60);
  assert.match(await res.text(), /approval queue is full/);
  assert.equal(await s.enrollment!.store.getTransaction(r.transactionId), null);
  const m = await (await fetch(`${s.url.replace(/\/scep$/, '')}/metrics`)).text();
  assert.match(m, /scepter_limit_refusals_total\{limit="pending-queue"\} 1\b/);
  assert.match(m, /scepter_requests_total\{operation="PKIOperation",outcome="overloaded"\} 1\b/);
  assert.match(m, /scepter_internal_errors_total 0\b/);
});
