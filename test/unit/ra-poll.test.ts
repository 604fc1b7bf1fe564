/**
 * Polling a pending transaction without decryption (src/ra/lifecycle.ts `pendingPoll`): a
 * CertPoll or a resent PKCSReq for a pending transaction, signed by the key that opened it, is
 * answered PENDING before the envelope is opened; another key, an approved transaction or an
 * expired one go the normal path (which opens the envelope). The service's
 * `stats.envelopesOpened` counts every opening (each an RSA private-key operation).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { parseCsr } from '../../src/pkix/csr.js';
import { FailInfo, PkiStatus } from '../../src/scep/index.js';
import { certPoll, csrOf, device, openCertRep, pkcsReq, type Device } from '../helpers/scep-server.js';
import { testService, type TestService } from '../helpers/service.js';

async function manual(t: TestContext, o: { now?: () => Date; ttl?: number } = {}): Promise<TestService> {
  return testService(t, {
    lifecycle: {
      approval: { mode: 'manual', retryAfterSeconds: 30, ...(o.ttl ? { pendingTtlSeconds: o.ttl } : {}) },
    },
    ...(o.now ? { now: o.now } : {}),
  });
}

async function ask(
  s: TestService,
  m: { der: Buffer; senderNonce: Buffer; transactionId: string },
  d: Device,
): Promise<{ rep: ReturnType<typeof openCertRep>; opened: number; retryAfter: string | undefined }> {
  const before = s.svc.stats.envelopesOpened;
  const a = await s.svc.pkiOperation(m.der, { remoteAddress: '192.0.2.7' });
  assert.equal(a.httpStatus, 200);
  const rep = openCertRep(a.body, m, d, [s.ca.cert]);
  return { rep, opened: s.svc.stats.envelopesOpened - before, retryAfter: a.headers?.['retry-after'] };
}

test('a CertPoll and a resent PKCSReq for a pending transaction get PENDING without opening the envelope', async (t) => {
  const s = await manual(t);
  const d = device('CN=poll-1,O=Test', { pool: 1 });
  const first = pkcsReq(d, s.ca.cert, { challenge: '' });
  const r0 = await ask(s, first, d);
  assert.equal(r0.rep.status, PkiStatus.PENDING);
  assert.equal(r0.opened, 1, 'the first request is decrypted (its CSR is stored)');

  const poll = certPoll(d, s.ca.cert, s.ca.cert, first.transactionId);
  const r1 = await ask(s, poll, d);
  assert.equal(r1.rep.status, PkiStatus.PENDING);
  assert.deepEqual(r1.rep.recipientNonce, poll.senderNonce, 'the reply echoes this poll nonce');
  assert.equal(r1.rep.transactionId, first.transactionId);
  assert.equal(r1.retryAfter, '30');
  assert.equal(r1.opened, 0, 'a poll of a pending transaction is not decrypted');

  const resend = pkcsReq(d, s.ca.cert, { challenge: '', transactionId: first.transactionId });
  const r2 = await ask(s, resend, d);
  assert.equal(r2.rep.status, PkiStatus.PENDING);
  assert.deepEqual(r2.rep.recipientNonce, resend.senderNonce);
  assert.equal(r2.opened, 0, 'a resent PKCSReq of a pending transaction is not decrypted');

  // The answer does not depend on the envelope: undecryptable garbage gets the same PENDING.
  const garbage = certPoll(d, s.ca.cert, s.ca.cert, first.transactionId, { content: Buffer.alloc(64, 7) });
  const r3 = await ask(s, garbage, d);
  assert.equal(r3.rep.status, PkiStatus.PENDING);
  assert.equal(r3.opened, 0);
});

test('a poll signed by another key goes the normal path (decrypted) and is refused', async (t) => {
  const s = await manual(t);
  const d = device('CN=poll-2,O=Test', { pool: 2 });
  const first = pkcsReq(d, s.ca.cert, { challenge: '' });
  assert.equal((await ask(s, first, d)).rep.status, PkiStatus.PENDING);

  const thief = device('CN=poll-2,O=Test', { pool: 3 });
  const poll = certPoll(d, s.ca.cert, s.ca.cert, first.transactionId, { signer: thief });
  const r = await ask(s, poll, thief);
  assert.equal(r.rep.status, PkiStatus.FAILURE);
  assert.equal(r.rep.failInfo, FailInfo.badRequest);
  assert.equal(r.opened, 1, 'another key never takes the pending shortcut');

  // The same for a PKCSReq replaying the transactionID with another key.
  const replay = pkcsReq(thief, s.ca.cert, { challenge: '', transactionId: first.transactionId });
  const r2 = await ask(s, replay, thief);
  assert.equal(r2.rep.status, PkiStatus.FAILURE);
  assert.equal(r2.opened, 1);
  assert.equal((await s.store.getTransaction(first.transactionId))?.state, 'pending');
});

test('approved, then polled: the certificate is delivered (the envelope is opened); a swapped CSR is refused then', async (t) => {
  const s = await manual(t);
  const d = device('CN=poll-3,O=Test', { pool: 4 });
  const first = pkcsReq(d, s.ca.cert, { challenge: '' });
  assert.equal((await ask(s, first, d)).rep.status, PkiStatus.PENDING);
  // While pending, a resend with another CSR is answered PENDING (not decrypted) ...
  const swapped = pkcsReq(d, s.ca.cert, {
    challenge: '',
    transactionId: first.transactionId,
    content: csrOf({ ...d, subject: 'CN=someone-else,O=Test' }, { challengePassword: '' }),
  });
  const rs = await ask(s, swapped, d);
  assert.equal(rs.rep.status, PkiStatus.PENDING);
  assert.equal(rs.opened, 0);

  assert.equal(await s.store.decide(first.transactionId, 'approved'), true);
  // ... and refused once decided: only the stored CSR is ever issued.
  const rs2 = await ask(s, swapped, d);
  assert.equal(rs2.rep.status, PkiStatus.FAILURE);
  assert.equal(rs2.opened, 1);

  const poll = certPoll(d, s.ca.cert, s.ca.cert, first.transactionId);
  const r = await ask(s, poll, d);
  assert.equal(r.rep.status, PkiStatus.SUCCESS);
  assert.equal(r.opened, 1);
  const issued = r.rep.certificates[0]!;
  assert.ok(issued.spki.equals(d.signer.cert.spki));
  assert.ok(issued.subjectRaw.equals(parseCsr(csrOf(d)).subjectRaw));
  const again = await ask(s, certPoll(d, s.ca.cert, s.ca.cert, first.transactionId), d);
  assert.equal(again.rep.status, PkiStatus.SUCCESS);
  assert.ok(again.rep.certificates[0]!.der.equals(issued.der), 'issued once');
});

test('an expired pending transaction goes the normal path: FAILURE, recorded as expired', async (t) => {
  let now = Date.parse('2026-01-01T00:00:00Z');
  const s = await manual(t, { now: () => new Date(now), ttl: 60 });
  const d = device('CN=poll-4,O=Test', { pool: 5 });
  const first = pkcsReq(d, s.ca.cert, { challenge: '' });
  assert.equal((await ask(s, first, d)).rep.status, PkiStatus.PENDING);
  now += 61_000;
  const r = await ask(s, certPoll(d, s.ca.cert, s.ca.cert, first.transactionId), d);
  assert.equal(r.rep.status, PkiStatus.FAILURE);
  assert.equal(r.opened, 1);
  assert.equal((await s.store.getTransaction(first.transactionId))?.state, 'expired');
});

test('auto mode: a PKCSReq is never answered from the pending shortcut (no extra lookup path)', async (t) => {
  const s = await testService(t);
  const d = device('CN=poll-5,O=Test', { pool: 6 });
  const m = pkcsReq(d, s.ca.cert);
  const r = await ask(s, m, d);
  assert.equal(r.rep.status, PkiStatus.SUCCESS);
  assert.equal(r.opened, 1);
});

test('polls note the last poll off the reply path: written once per window, a store failure is not the poll’s', async (t) => {
  let now = Date.parse('2026-01-01T00:00:00Z');
  const s = await manual(t, { now: () => new Date(now) });
  const d = device('CN=poll-6,O=Test', { pool: 7 });
  const first = pkcsReq(d, s.ca.cert, { challenge: '' });
  assert.equal((await ask(s, first, d)).rep.status, PkiStatus.PENDING);
  const lastPoll = async () => {
    // The write is not awaited by the poll: the group commit runs it on the next turn.
    await new Promise((r) => setImmediate(r));
    return (await s.store.getTransaction(first.transactionId))?.lastPollAt?.getTime() ?? null;
  };
  assert.equal(await lastPoll(), null);

  now += 1_000;
  assert.equal(
    (await ask(s, certPoll(d, s.ca.cert, s.ca.cert, first.transactionId), d)).rep.status,
    PkiStatus.PENDING,
  );
  assert.equal(await lastPoll(), now, 'the first poll is recorded at once');
  const firstPoll = now;

  now += 1_000;
  const resend = pkcsReq(d, s.ca.cert, { challenge: '', transactionId: first.transactionId });
  assert.equal((await ask(s, resend, d)).rep.status, PkiStatus.PENDING);
  assert.equal(await lastPoll(), firstPoll, 'a poll 1 s later is coalesced (written when its window ends)');

  // A failing write is logged by the recorder; the device still gets PENDING.
  const notePoll = s.store.notePoll;
  s.store.notePoll = () => Promise.reject(new Error('disk full'));
  t.after(() => (s.store.notePoll = notePoll));
  now += 60_000;
  const r = await ask(s, certPoll(d, s.ca.cert, s.ca.cert, first.transactionId), d);
  assert.equal(r.rep.status, PkiStatus.PENDING);
  assert.equal(r.opened, 0);
});
