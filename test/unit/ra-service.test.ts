/**
 * The enrollment service end to end at the service boundary (bytes in, answer out): success
 * and every FAILURE mapping, idempotent resends, concurrency, RA mode, GetCACaps/GetCACert.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import * as der from '../../src/asn1/writer.js';
import { OID } from '../../src/asn1/oids.js';
import { buildEnvelopedData } from '../../src/cms/index.js';
import {
  parseCertificate,
  verifyCertificateSignature,
  type Certificate,
} from '../../src/pkix/certificate.js';
import { buildCsr } from '../../src/pkix/csr.js';
import { nameToString } from '../../src/pkix/name.js';
import { spkiOf } from '../../src/crypto/keys.js';
import { FailInfo, MessageType, PkiStatus, parseCaCertResponse } from '../../src/scep/index.js';
import { BASE_CAPABILITIES } from '../../src/ra/service.js';
import { attr, rawSignedData } from '../helpers/scep-fixtures.js';
import { makeSelfSigned } from '../helpers/pki.js';
import { testService, type TestService, type TestServiceOptions } from '../helpers/service.js';
import {
  csrOf,
  device,
  openCertRep,
  pkcsReq,
  testServer,
  TEST_CHALLENGE,
  type Device,
} from '../helpers/scep-server.js';

interface Env extends TestService {
  /** GetCACert certificates (RA first in RA mode). */
  certs: Certificate[];
}

/** The service as `scepter serve` composes it, in memory (test/helpers/service.ts). */
async function env(t: TestContext, o: TestServiceOptions = {}): Promise<Env> {
  const s = await testService(t, o);
  const a = s.svc.getCaCert();
  return { ...s, certs: parseCaCertResponse(a.contentType, a.body) };
}

async function send(e: Env, der: Buffer) {
  return e.svc.pkiOperation(der, { remoteAddress: '192.0.2.1' });
}

async function enroll(e: Env, d: Device, o: Parameters<typeof pkcsReq>[2] = {}) {
  const req = pkcsReq(d, e.certs[0]!, o);
  const a = await send(e, req.der);
  assert.equal(a.httpStatus, 200);
  assert.equal(a.contentType, 'application/x-pki-message');
  return { req, a, rep: openCertRep(a.body, req, d, e.certs, { allowSingleDes: true }) };
}

function assertFailure(rep: { status: PkiStatus; failInfo?: FailInfo }, fi: FailInfo): void {
  assert.equal(rep.status, PkiStatus.FAILURE);
  assert.equal(rep.failInfo, fi, `failInfo ${rep.failInfo} != ${fi}`);
}

test('PKCSReq → SUCCESS: the certificate carries the CSR subject and key, is issued by the CA and stored', async (t) => {
  const e = await env(t);
  const d = device('CN=dev-ok,O=Test', { pool: 1 });
  const { a, rep, req } = await enroll(e, d, {
    content: csrOf(d, { subjectAltNames: [{ type: 'dns', value: 'dev-ok.example' }] }),
  });
  assert.equal(rep.status, PkiStatus.SUCCESS);
  assert.equal(a.log.outcome, 'SUCCESS');
  assert.equal(a.log.messageType, 'PKCSReq');
  assert.equal(a.log.transactionId, req.transactionId);
  const cert = rep.certificates[0]!;
  assert.equal(nameToString(cert.subjectRaw), 'CN=dev-ok,O=Test');
  assert.ok(cert.spki.equals(spkiOf(d.key)), 'the issued key is the device key');
  assert.ok(verifyCertificateSignature(cert, e.certs[0]!.publicKey()), 'signed by the CA');
  assert.ok(cert.issuerRaw.equals(e.certs[0]!.subjectRaw));
  assert.equal(rep.cipher, 'aes128', 'reply uses the request cipher');
  assert.equal(rep.digest, 'sha256');
  assert.equal(a.log.serial, cert.serialHex);
  const stored = await e.svc.store.getCertificate(cert.serialHex);
  assert.ok(stored?.der.equals(cert.der), 'stored before the reply');
  assert.equal(stored?.transactionId, req.transactionId);
  assert.deepEqual(stored?.sans, ['dns:dev-ok.example']);
  const tx = await e.svc.store.getTransaction(req.transactionId);
  assert.equal(tx?.state, 'issued');
  assert.equal(tx?.certSerial, cert.serialHex);
  assert.equal(tx?.requester, '192.0.2.1');
});

test('reply mirrors the request digest and cipher (SHA-1/512, AES-256, 3DES)', async (t) => {
  const e = await env(t);
  const d = device('CN=dev-mirror', { pool: 1 });
  for (const [digest, cipher] of [
    ['sha512', 'aes256'],
    ['sha1', 'des3'],
    ['sha256', 'aes192'],
  ] as const) {
    const { rep } = await enroll(e, d, { digest, cipher });
    assert.equal(rep.status, PkiStatus.SUCCESS, `${digest}/${cipher}`);
    assert.equal(rep.digest, digest);
    assert.equal(rep.cipher, cipher);
  }
});

test('wrong or missing challenge → FAILURE badRequest; the challenge never appears in the answer', async (t) => {
  const e = await env(t);
  const d = device('CN=dev-chal', { pool: 1 });
  const { a, rep } = await enroll(e, d, { challenge: 'not-the-challenge' });
  assertFailure(rep, FailInfo.badRequest);
  assert.match(rep.failInfoText ?? '', /challengePassword/);
  assert.equal(a.log.failInfo, 'badRequest');
  const all = a.body.toString('latin1') + JSON.stringify(a.log);
  assert.ok(!all.includes('not-the-challenge') && !all.includes(TEST_CHALLENGE));
  const missing = await enroll(e, d, {
    content: buildCsr({ subject: d.subject, key: d.key, publicKey: createPublicKey(d.key) }),
  });
  assertFailure(missing.rep, FailInfo.badRequest);
  const tx = await e.svc.store.searchCertificates({ subject: 'dev-chal' });
  assert.equal(tx.total, 0, 'nothing issued');
});

test('bad outer signature → FAILURE badMessageCheck; bad CSR signature → badMessageCheck', async (t) => {
  const e = await env(t);
  const d = device('CN=dev-sig', { pool: 1 });
  const req = pkcsReq(d, e.certs[0]!);
  const forged = rawSignedData({
    attrs: [
      attr(OID.scepMessageType, der.printable('19')),
      attr(OID.scepTransactionId, der.printable('tx-forged')),
      attr(OID.scepSenderNonce, der.octetString(req.senderNonce)),
    ],
    content: buildEnvelopedData({ content: csrOf(d), recipient: e.certs[0]!, cipher: 'aes128' }),
    signerCert: d.signer,
    signingKey: device('CN=other', { pool: 2 }).key,
  });
  const a = await send(e, forged);
  const rep = openCertRep(a.body, { senderNonce: req.senderNonce, transactionId: 'tx-forged' }, d, e.certs);
  assertFailure(rep, FailInfo.badMessageCheck);

  const csr = csrOf(d);
  csr[csr.length - 3]! ^= 0x40;
  const popBad = await enroll(e, d, { content: csr });
  assertFailure(popBad.rep, FailInfo.badMessageCheck);
});

test('single DES → badAlg naming the switch; with allowSingleDes → SUCCESS answered in 3DES', async (t) => {
  const strict = await env(t);
  const d = device('CN=dev-des', { pool: 1 });
  const refused = await enroll(strict, d, { cipher: 'des', allowSingleDes: true });
  assertFailure(refused.rep, FailInfo.badAlg);
  assert.match(refused.rep.failInfoText ?? '', /single DES.*--allow-single-des/);

  const legacy = await env(t, { enrollment: { allowSingleDes: true } });
  const ok = await enroll(legacy, d, { cipher: 'des', allowSingleDes: true });
  assert.equal(ok.rep.status, PkiStatus.SUCCESS);
  assert.equal(ok.rep.cipher, 'des3', 'never answer in single DES');
  assert.equal(legacy.svc.stats.singleDesAccepted, 1);
});

test('MD5 digest → FAILURE badAlg (signed with an allowed digest)', async (t) => {
  const e = await env(t);
  const d = device('CN=dev-md5', { pool: 1 });
  const nonce = randomBytes(16);
  const md5 = rawSignedData({
    attrs: [
      attr(OID.scepMessageType, der.printable('19')),
      attr(OID.scepTransactionId, der.printable('tx-md5')),
      attr(OID.scepSenderNonce, der.octetString(nonce)),
    ],
    content: buildEnvelopedData({ content: csrOf(d), recipient: e.certs[0]!, cipher: 'aes128' }),
    signerCert: d.signer,
    hash: 'md5',
    digestOid: OID.md5,
  });
  const a = await send(e, md5);
  const rep = openCertRep(a.body, { senderNonce: nonce, transactionId: 'tx-md5' }, d, e.certs);
  assertFailure(rep, FailInfo.badAlg);
  assert.notEqual(rep.digest, 'md5' as never);
});

test('key policy: EC P-521 CSR → badAlg, RSA-1024 → badRequest, signer key ≠ CSR key → badRequest', async (t) => {
  const e = await env(t);
  const d = device('CN=dev-key', { pool: 1 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-521' });
  const ecCsr = buildCsr({
    subject: 'CN=ec',
    key: ec.privateKey,
    publicKey: ec.publicKey,
    challengePassword: TEST_CHALLENGE,
  });
  const r1 = await enroll(e, d, { content: ecCsr });
  assertFailure(r1.rep, FailInfo.badAlg);
  assert.match(r1.rep.failInfoText ?? '', /only EC keys on P-256 or P-384 are accepted/);

  const small = device('CN=small', { pool: 0, bits: 1024 });
  const r2 = await enroll(e, small);
  assertFailure(r2.rep, FailInfo.badRequest);
  assert.match(r2.rep.failInfoText ?? '', /too small/);

  const other = device('CN=dev-key', { pool: 2 });
  const r3 = await enroll(e, d, { content: csrOf(other) });
  assertFailure(r3.rep, FailInfo.badRequest);
  assert.match(r3.rep.failInfoText ?? '', /signer key differs/);
});

test('resend of an identical PKCSReq → the byte-identical certificate, one stored; another key → badRequest', async (t) => {
  const e = await env(t);
  const d = device('CN=dev-resend', { pool: 1 });
  const req = pkcsReq(d, e.certs[0]!, { transactionId: 'tx-resend' });
  const a1 = await send(e, req.der);
  const a2 = await send(e, req.der);
  const c1 = openCertRep(a1.body, req, d, e.certs);
  const c2 = openCertRep(a2.body, req, d, e.certs);
  assert.equal(c1.status, PkiStatus.SUCCESS);
  assert.equal(c2.status, PkiStatus.SUCCESS);
  assert.ok(c1.certificates[0]!.der.equals(c2.certificates[0]!.der), 'same certificate bytes');
  assert.notDeepEqual(c1.senderNonce, c2.senderNonce, 'fresh senderNonce per reply');
  assert.equal(a2.log.replay, true);
  // A resend with a new nonce and a different cipher still gets the same certificate.
  const again = pkcsReq(d, e.certs[0]!, { transactionId: 'tx-resend', cipher: 'aes256' });
  const c3 = openCertRep((await send(e, again.der)).body, again, d, e.certs);
  assert.ok(c3.certificates[0]!.der.equals(c1.certificates[0]!.der));
  assert.equal(c3.cipher, 'aes256');
  assert.equal((await e.svc.store.searchCertificates({ transactionId: 'tx-resend' })).total, 1);

  const thief = device('CN=dev-resend', { pool: 2 });
  const stolen = pkcsReq(thief, e.certs[0]!, { transactionId: 'tx-resend' });
  const r = openCertRep((await send(e, stolen.der)).body, stolen, thief, e.certs);
  assertFailure(r, FailInfo.badRequest);
  assert.match(r.failInfoText ?? '', /another key/);
  assert.equal((await e.svc.store.searchCertificates({ transactionId: 'tx-resend' })).total, 1);
});

test('concurrent identical requests issue once', async (t) => {
  const e = await env(t);
  const d = device('CN=dev-race', { pool: 1 });
  const req = pkcsReq(d, e.certs[0]!, { transactionId: 'tx-race' });
  const answers = await Promise.all(Array.from({ length: 8 }, () => send(e, req.der)));
  const serials = answers.map((a) => openCertRep(a.body, req, d, e.certs).certificates[0]!.serialHex);
  assert.equal(new Set(serials).size, 1);
  assert.equal((await e.svc.store.searchCertificates({ transactionId: 'tx-race' })).total, 1);
});

test('RenewalReq from a self-signed signer → FAILURE badRequest; CertPoll with a CSR body → badMessageCheck', async (t) => {
  // The lifecycle handlers (src/ra/lifecycle.ts) answer these; see ra-approval/ra-renewal tests.
  const e = await env(t);
  const d = device('CN=dev-types', { pool: 1 });
  const renewal = await enroll(e, d, { messageType: MessageType.RenewalReq });
  assertFailure(renewal.rep, FailInfo.badRequest);
  assert.match(renewal.rep.failInfoText ?? '', /not signed by a certificate this CA issued/);
  const poll = await enroll(e, d, { messageType: MessageType.CertPoll });
  assertFailure(poll.rep, FailInfo.badMessageCheck);
});

test('undecodable input → HTTP 400 with a one-line reason, never a throw', async (t) => {
  const e = await env(t);
  const d = device('CN=dev-junk', { pool: 1 });
  const good = pkcsReq(d, e.certs[0]!).der;
  const inputs = [
    Buffer.alloc(0),
    Buffer.from('hello world'),
    randomBytes(3000),
    good.subarray(0, good.length - 1),
    good.subarray(0, 100),
    Buffer.concat([good, Buffer.from([0])]),
  ];
  for (let i = 0; i < 40; i++) inputs.push(good.subarray(0, Math.floor(Math.random() * good.length)));
  for (const input of inputs) {
    const a = await send(e, input);
    assert.equal(a.httpStatus, 400);
    const text = a.body.toString('utf8');
    assert.match(text, /^[^\n]+\n$/, 'one line');
    assert.ok(!/at .*\.ts:\d+/.test(text), 'no stack');
    assert.equal(a.log.outcome, 'rejected');
  }
  assert.equal(e.svc.stats.internalErrors, 0);
});

test('envelope to a foreign certificate → badRequest; garbage inside the envelope → badMessageCheck', async (t) => {
  const e = await env(t);
  const d = device('CN=dev-env', { pool: 1 });
  const foreign = makeSelfSigned({
    subject: 'CN=Foreign CA',
    key: device('CN=x', { pool: 2 }).key,
    ca: true,
  });
  const { rep } = await enroll(e, d, { recipient: foreign.cert });
  assertFailure(rep, FailInfo.badRequest);
  const junk = await enroll(e, d, { content: Buffer.from('not a CSR at all') });
  assertFailure(junk.rep, FailInfo.badMessageCheck);
});

test('GetCACaps lists exactly what is implemented; GetCACert in CA-only mode is the CA DER', async (t) => {
  const e = await env(t);
  const caps = e.svc.getCaCaps();
  assert.equal(caps.contentType, 'text/plain');
  // Renewal is advertised because the lifecycle enables it by default.
  assert.deepEqual(caps.body.toString().split('\n').filter(Boolean), [...BASE_CAPABILITIES, 'Renewal']);
  const cc = e.svc.getCaCert('anything');
  assert.equal(cc.contentType, 'application/x-x509-ca-cert');
  assert.ok(parseCertificate(cc.body).der.equals(e.ca.certDer));
});

test('RA mode: GetCACert is RA+CA (RA first); envelopes to RA or CA succeed; CertReps are signed by the RA', async (t) => {
  const e = await env(t, { ra: true });
  const cc = e.svc.getCaCert();
  assert.equal(cc.contentType, 'application/x-x509-ca-ra-cert');
  assert.equal(e.certs.length, 2);
  const [ra, ca] = e.certs as [Certificate, Certificate];
  assert.ok(ra.der.equals(e.ra!.certDer), 'RA first');
  assert.ok(verifyCertificateSignature(ra, ca.publicKey()), 'RA issued by the CA');
  const d = device('CN=dev-ra', { pool: 1 });
  for (const recipient of [ra, ca]) {
    const req = pkcsReq(d, recipient);
    const a = await send(e, req.der);
    const rep = openCertRep(a.body, req, d, [ra]);
    assert.equal(rep.status, PkiStatus.SUCCESS);
    assert.ok(rep.signerCert.der.equals(ra.der), 'signed by the RA');
    assert.ok(verifyCertificateSignature(rep.certificates[0]!, ca.publicKey()), 'issued by the CA');
    assert.ok(rep.certificates[0]!.issuerRaw.equals(ca.subjectRaw));
  }
});

test('validitySeconds: a 30 s certificate (through two worker threads) is backdated 3 s, not 300 s; the default 365 d keeps 300 s', async (t) => {
  for (const o of [
    { validity: 30, workers: 2 },
    { validity: undefined, workers: 1 },
  ]) {
    const server = await testServer(t, {
      workers: o.workers,
      ...(o.validity !== undefined ? { enrollment: { validitySeconds: o.validity } } : {}),
    });
    const a = server.service.getCaCert();
    const certs = parseCaCertResponse(a.contentType, a.body);
    const d = device(`CN=validity-${o.validity ?? 'default'},O=Test`, { pool: 1 });
    const req = pkcsReq(d, certs[0]!);
    const before = Math.floor(Date.now() / 1000) * 1000;
    // server.service is the worker pool when workers > 1: the setting must reach the workers.
    const answer = await server.service.pkiOperation(req.der, { remoteAddress: '192.0.2.1' });
    const after = Date.now();
    const rep = openCertRep(answer.body, req, d, certs);
    assert.equal(rep.status, PkiStatus.SUCCESS, rep.failInfoText);
    const cert = rep.certificates[0]!;
    const validity = (o.validity ?? 365 * 86_400) * 1000;
    const backdate = o.validity !== undefined ? 3000 : 300_000;
    const nb = cert.notBefore.getTime();
    const na = cert.notAfter.getTime();
    assert.equal(na - nb, validity + backdate, `lifetime ${(na - nb) / 1000} s`);
    assert.ok(nb + backdate >= before - 1000 && nb + backdate <= after, 'notBefore = issuance − backdate');
  }
});
