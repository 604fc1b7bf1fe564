/**
 * Manual approval and polling (docs/conformance.md cases 37–39): PENDING with Retry-After, CertPoll and
 * resent PKCSReq answer PENDING until an operator decides, then SUCCESS (issued once) or
 * FAILURE badRequest; every reply echoes that message's own senderNonce; unknown transaction
 * or another key → FAILURE badRequest; expiry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FailInfo, PkiStatus } from '../../src/scep/index.js';
import {
  caCerts,
  certPoll,
  device,
  openCertRep,
  pkcsReq,
  postPki,
  recipientOf,
  testServer,
} from '../helpers/scep-server.js';

test('manual approval: PENDING with Retry-After, polls PENDING, approve → SUCCESS once, nonces echoed', async (t) => {
  const s = await testServer(t, { lifecycle: { approval: { mode: 'manual', retryAfterSeconds: 7 } } });
  const certs = await caCerts(s.url);
  const rcpt = recipientOf(certs);
  const d = device('CN=pending-1,O=Test', { pool: 1 });
  // No challenge at all: in manual mode the operator decides.
  const r1 = pkcsReq(d, rcpt, { challenge: '' });
  const a1 = await postPki(s.url, r1.der);
  assert.equal(a1.status, 200);
  const rep1 = openCertRep(a1.body, r1, d, certs);
  assert.equal(rep1.status, PkiStatus.PENDING);
  assert.deepEqual(rep1.recipientNonce, r1.senderNonce);
  const head = await fetch(`${s.url}?operation=PKIOperation`, { method: 'POST', body: r1.der });
  assert.equal(head.headers.get('retry-after'), '7');

  const store = s.enrollment!.store;
  const tx = await store.getTransaction(r1.transactionId);
  assert.equal(tx?.state, 'pending');
  assert.equal(tx?.meta?.challenge, 'absent');

  const p1 = certPoll(d, rcpt, certs[0]!, r1.transactionId);
  const rp1 = openCertRep((await postPki(s.url, p1.der)).body, p1, d, certs);
  assert.equal(rp1.status, PkiStatus.PENDING);
  assert.deepEqual(rp1.recipientNonce, p1.senderNonce, 'each reply echoes that CertPoll nonce');

  // A CertPoll signed by another key is refused, and so is an unknown transaction.
  const other = device('CN=pending-1,O=Test', { pool: 2 });
  const bad = certPoll(d, rcpt, certs[0]!, r1.transactionId, { signer: other });
  const rb = openCertRep((await postPki(s.url, bad.der)).body, bad, other, certs);
  assert.equal(rb.status, PkiStatus.FAILURE);
  assert.equal(rb.failInfo, FailInfo.badRequest);
  const unk = certPoll(d, rcpt, certs[0]!, 'no-such-transaction');
  const ru = openCertRep((await postPki(s.url, unk.der)).body, unk, d, certs);
  assert.equal(ru.status, PkiStatus.FAILURE);
  assert.equal(ru.failInfo, FailInfo.badRequest);

  assert.equal(await store.decide(r1.transactionId, 'approved'), true);
  const p2 = certPoll(d, rcpt, certs[0]!, r1.transactionId);
  const rp2 = openCertRep((await postPki(s.url, p2.der)).body, p2, d, certs);
  assert.equal(rp2.status, PkiStatus.SUCCESS);
  assert.deepEqual(rp2.recipientNonce, p2.senderNonce);
  const issued = rp2.certificates[0]!;
  assert.ok(issued.spki.equals(d.signer.cert.spki));
  // The issuing CA follows the issued certificate (NDES shape), never the RA.
  const caCert = certs.find((c) => c.subjectRaw.equals(c.issuerRaw))!;
  assert.deepEqual(
    rp2.certificates.map((c) => c.fingerprint),
    [issued.fingerprint, caCert.fingerprint],
  );

  // The resent PKCSReq (same transactionID, same key) gets the same certificate: issued once.
  const r2 = pkcsReq(d, rcpt, { challenge: '', transactionId: r1.transactionId });
  const rep2 = openCertRep((await postPki(s.url, r2.der)).body, r2, d, certs);
  assert.equal(rep2.status, PkiStatus.SUCCESS);
  assert.deepEqual(rep2.recipientNonce, r2.senderNonce);
  assert.ok(rep2.certificates[0]!.der.equals(issued.der));
  assert.ok(rep2.certificates[1]?.der.equals(caCert.der), 'a replayed PKCSReq reply carries the CA too');
  const all = await store.searchCertificates({ transactionId: r1.transactionId });
  assert.equal(all.total, 1);
});

test('manual approval: rejection → FAILURE badRequest; expiry → FAILURE badRequest', async (t) => {
  const s = await testServer(t, { lifecycle: { approval: { mode: 'manual', pendingTtlSeconds: 60 } } });
  const certs = await caCerts(s.url);
  const rcpt = recipientOf(certs);
  const store = s.enrollment!.store;

  const d = device('CN=rejected,O=Test', { pool: 3 });
  const r = pkcsReq(d, rcpt);
  assert.equal(openCertRep((await postPki(s.url, r.der)).body, r, d, certs).status, PkiStatus.PENDING);
  assert.equal((await store.getTransaction(r.transactionId))?.meta?.challenge, 'valid');
  assert.equal(await store.decide(r.transactionId, 'rejected', 'not one of ours'), true);
  const p = certPoll(d, rcpt, certs[0]!, r.transactionId);
  const rp = openCertRep((await postPki(s.url, p.der)).body, p, d, certs);
  assert.equal(rp.status, PkiStatus.FAILURE);
  assert.equal(rp.failInfo, FailInfo.badRequest);
  assert.match(rp.failInfoText ?? '', /rejected: not one of ours/);

  // Expiry: a pending request whose expiresAt passed answers FAILURE and becomes 'expired'.
  const e = device('CN=expiring,O=Test', { pool: 4 });
  const re = pkcsReq(e, rcpt, { challenge: 'wrong' });
  assert.equal(openCertRep((await postPki(s.url, re.der)).body, re, e, certs).status, PkiStatus.PENDING);
  assert.equal((await store.getTransaction(re.transactionId))?.meta?.challenge, 'invalid');
  assert.equal(await store.expirePending(new Date(Date.now() + 120_000)), 1);
  const pe = certPoll(e, rcpt, certs[0]!, re.transactionId);
  const rpe = openCertRep((await postPki(s.url, pe.der)).body, pe, e, certs);
  assert.equal(rpe.status, PkiStatus.FAILURE);
  assert.equal(rpe.failInfo, FailInfo.badRequest);
  assert.match(rpe.failInfoText ?? '', /expired/);
  // An operator can no longer approve it.
  assert.equal(await store.decide(re.transactionId, 'approved'), false);
});

test('challenge-or-manual: a valid challenge issues at once, none waits', async (t) => {
  const s = await testServer(t, { lifecycle: { approval: { mode: 'challenge-or-manual' } } });
  const certs = await caCerts(s.url);
  const rcpt = recipientOf(certs);
  const a = device('CN=with-challenge,O=Test', { pool: 5 });
  const ra = pkcsReq(a, rcpt);
  assert.equal(openCertRep((await postPki(s.url, ra.der)).body, ra, a, certs).status, PkiStatus.SUCCESS);
  const b = device('CN=without,O=Test', { pool: 6 });
  const rb = pkcsReq(b, rcpt, { challenge: '' });
  assert.equal(openCertRep((await postPki(s.url, rb.der)).body, rb, b, certs).status, PkiStatus.PENDING);
});

test('auto approval (default): a missing challenge is still FAILURE badRequest', async (t) => {
  const s = await testServer(t);
  const certs = await caCerts(s.url);
  const d = device('CN=auto,O=Test', { pool: 7 });
  const r = pkcsReq(d, recipientOf(certs), { challenge: '' });
  const rep = openCertRep((await postPki(s.url, r.der)).body, r, d, certs);
  assert.equal(rep.status, PkiStatus.FAILURE);
  assert.equal(rep.failInfo, FailInfo.badRequest);
});
