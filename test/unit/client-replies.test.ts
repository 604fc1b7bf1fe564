/**
 * ScepClient against a loopback SCEP server built from our codec: the happy paths (CA-only
 * and NDES-style RA, POST and GET, pending → CertPoll, renewal both ways, GetCert, GetCRL,
 * GetNextCACert) and every reply the client must refuse (docs/conformance.md §6 case 46): wrong
 * recipientNonce, foreign signer, tampered signature, wrong transactionID, unsigned
 * GetNextCACert, pinned-fingerprint mismatch. Plus transport behaviour (timeouts, retries).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, verify } from 'node:crypto';
import {
  ScepClient,
  ScepFailureError,
  ScepPendingTimeoutError,
  ScepProtocolError,
  ScepTransportError,
  verifyCrlSignature,
  type IssuedResult,
} from '../../src/client/index.js';
import { FailInfo, MessageType } from '../../src/scep/index.js';
import { verifyCertificateSignature } from '../../src/pkix/certificate.js';
import { nameToString } from '../../src/pkix/name.js';
import { OID } from '../../src/asn1/oids.js';
import { parseSubjectAltName } from '../../src/pkix/extensions.js';
import { startFakeScep, type FakeScep } from '../helpers/fake-scep.js';
import { pooledRsaKey } from '../helpers/pki.js';

const servers: FakeScep[] = [];
after(async () => {
  for (const s of servers) await s.close();
});

async function server(o: Parameters<typeof startFakeScep>[0] = {}): Promise<FakeScep> {
  const s = await startFakeScep(o);
  servers.push(s);
  return s;
}

function issued(r: Awaited<ReturnType<ScepClient['enroll']>>): IssuedResult {
  assert.equal(r.status, 'issued');
  return r as IssuedResult;
}

test('enroll against a CA-only server: caps with CRLF/odd case, POST, aes256/sha256, verified certificate', async () => {
  const s = await server({ challenge: 'pw-1' });
  const c = new ScepClient({ url: s.url, caFingerprint: `sha256:${s.ca.cert.fingerprint.toUpperCase()}` });
  const caps = await c.getCaCaps();
  assert.ok(caps.has('AES') && caps.has('Renewal') && caps.has('POSTPKIOperation'));
  const key = pooledRsaKey(0);
  const r = issued(
    await c.enroll({
      subject: 'CN=dev1,O=Acme',
      sans: 'dns:dev1.example,ip:10.0.0.1',
      challenge: 'pw-1',
      key,
    }),
  );
  assert.equal(r.via, 'PKCSReq');
  assert.deepEqual(r.negotiated, { cipher: 'aes256', digest: 'sha256', post: true });
  assert.equal(r.insecureCipher, undefined);
  assert.equal(r.replyCipher, 'aes256');
  assert.equal(nameToString(r.certificate.subjectRaw), 'CN=dev1,O=Acme');
  assert.ok(r.certificate.spki.equals(createPublicKey(key).export({ type: 'spki', format: 'der' })));
  assert.ok(verifyCertificateSignature(r.certificate, s.ca.cert.publicKey()));
  assert.equal(r.chain[0]!.fingerprint, s.ca.cert.fingerprint);
  const san = parseSubjectAltName(r.certificate.extension(OID.subjectAltName)!.value);
  assert.deepEqual(san, [
    { type: 'dns', value: 'dev1.example' },
    { type: 'ip', value: '10.0.0.1' },
  ]);
  assert.deepEqual(
    s.log.map((l) => [l.messageType, l.method]),
    [[MessageType.PKCSReq, 'POST']],
  );
});

test('wrong challenge → ScepFailureError with failInfo and text', async () => {
  const s = await server({ challenge: 'right' });
  const c = new ScepClient({ url: s.url });
  await assert.rejects(
    c.enroll({ subject: 'CN=x', challenge: 'wrong', key: pooledRsaKey(1) }),
    (e: unknown) =>
      e instanceof ScepFailureError && e.failInfo === FailInfo.badRequest && e.failInfoName === 'badRequest',
  );
});

test('without POSTPKIOperation/AES/SHA-256 the client uses GET, DES3 and SHA-1', async () => {
  const s = await server({ caps: 'DES3\nSHA-1\n' });
  const c = new ScepClient({ url: s.url });
  const r = issued(await c.enroll({ subject: 'CN=get-client', challenge: 'x', key: pooledRsaKey(1) }));
  assert.deepEqual(r.negotiated, { cipher: 'des3', digest: 'sha1', post: false });
  assert.equal(s.log[0]!.method, 'GET');
  assert.equal(r.replyCipher, 'des3');
});

test('NDES-style RA: encrypts to the keyEncipherment RA cert, accepts replies signed by the signing RA cert', async () => {
  const s = await server({ ra: true });
  const c = new ScepClient({ url: s.url, caFingerprint: s.ca.cert.fingerprint });
  const ca = await c.getCaCert();
  assert.equal(ca.ra, true);
  assert.equal(ca.encryption.fingerprint, s.raEnc!.cert.fingerprint);
  assert.ok(ca.signers.some((x) => x.fingerprint === s.raSign!.cert.fingerprint));
  assert.equal(ca.ca.fingerprint, s.ca.cert.fingerprint);
  const r = issued(await c.enroll({ subject: 'CN=via-ra', challenge: 'x', key: pooledRsaKey(2) }));
  assert.ok(verifyCertificateSignature(r.certificate, s.ca.cert.publicKey()));
});

test('a pinned fingerprint that matches nothing stops before any PKIOperation', async () => {
  const s = await server();
  const c = new ScepClient({ url: s.url, caFingerprint: 'ab'.repeat(32) });
  await assert.rejects(
    c.enroll({ subject: 'CN=x', challenge: 'x', key: pooledRsaKey(0) }),
    ScepProtocolError,
  );
  assert.equal(s.log.length, 0);
  assert.ok(!s.http.includes('PKIOperation'));
});

for (const [tamper, pattern] of [
  ['recipientNonce', /recipientNonce/],
  ['signer', /not signed by a trusted/],
  ['signature', /signature/],
  ['transactionId', /transactionID/],
] as const) {
  test(`a CertRep with a tampered ${tamper} is rejected`, async () => {
    const s = await server({ tamper });
    const c = new ScepClient({ url: s.url });
    await assert.rejects(
      c.enroll({ subject: 'CN=victim', challenge: 'x', key: pooledRsaKey(0) }),
      (e: unknown) => e instanceof ScepProtocolError && pattern.test(e.message),
    );
    // The same server without tampering is accepted (the check, not the setup, failed above).
    s.options.tamper = undefined;
    issued(await c.enroll({ subject: 'CN=victim', challenge: 'x', key: pooledRsaKey(0) }));
  });
}

test('a FAILURE signed by a foreign key is a protocol error, not a FAILURE', async () => {
  const s = await server({ tamper: 'signer', fail: FailInfo.badCertId });
  const c = new ScepClient({ url: s.url });
  await assert.rejects(
    c.enroll({ subject: 'CN=x', challenge: 'x', key: pooledRsaKey(0) }),
    ScepProtocolError,
  );
});

test('single-DES reply: opened as a fallback and reported; refused when disallowed', async () => {
  const s = await server({ tamper: 'des' });
  const r = issued(
    await new ScepClient({ url: s.url }).enroll({ subject: 'CN=des', challenge: 'x', key: pooledRsaKey(0) }),
  );
  assert.equal(r.insecureCipher, 'des');
  assert.equal(r.replyCipher, 'des');
  assert.equal(r.negotiated.cipher, 'aes256', 'requests are never single DES');
  await assert.rejects(
    new ScepClient({ url: s.url, allowSingleDesReplies: false }).enroll({
      subject: 'CN=des',
      challenge: 'x',
      key: pooledRsaKey(0),
    }),
    (e: unknown) => e instanceof ScepProtocolError && /DES/i.test(e.message),
  );
});

test('PENDING → CertPoll with the same transactionID and IssuerAndSubject → issued', async () => {
  const s = await server({ pending: 3 });
  const c = new ScepClient({ url: s.url });
  const first = await c.enroll({ subject: 'CN=waiting', challenge: 'x', key: pooledRsaKey(1) });
  assert.equal(first.status, 'pending');
  if (first.status !== 'pending') return;
  const polls: number[] = [];
  const r = await c.waitForCertificate(first, {
    intervalMs: 10,
    timeoutMs: 5000,
    onPoll: (n) => polls.push(n),
  });
  assert.deepEqual(polls, [1, 2, 3]);
  assert.ok(
    r.certificate.spki.equals(createPublicKey(pooledRsaKey(1)).export({ type: 'spki', format: 'der' })),
  );
  assert.deepEqual(
    s.log.map((l) => l.messageType),
    [MessageType.PKCSReq, MessageType.CertPoll, MessageType.CertPoll, MessageType.CertPoll],
  );
  assert.equal(new Set(s.log.map((l) => l.transactionId)).size, 1);
});

test('polling gives up with ScepPendingTimeoutError', async () => {
  const s = await server({ pending: 1000 });
  const c = new ScepClient({ url: s.url });
  const first = await c.enroll({ subject: 'CN=never', challenge: 'x', key: pooledRsaKey(1) });
  assert.equal(first.status, 'pending');
  if (first.status !== 'pending') return;
  await assert.rejects(
    c.waitForCertificate(first, { intervalMs: 5, timeoutMs: 60_000, maxPolls: 2 }),
    (e: unknown) => {
      return e instanceof ScepPendingTimeoutError && e.polls === 2 && e.transactionId === first.transactionId;
    },
  );
});

test('renew: RenewalReq when Renewal is advertised, PKCSReq signed by the old cert otherwise; new key or same key', async () => {
  const s = await server();
  const c = new ScepClient({ url: s.url });
  const r1 = issued(
    await c.enroll({ subject: 'CN=renew-me', sans: 'dns:r.example', challenge: 'x', key: pooledRsaKey(0) }),
  );
  const r2 = issued(await c.renew({ cert: r1.certificate, key: r1.key, newKey: pooledRsaKey(1) }));
  assert.equal(r2.via, 'RenewalReq');
  assert.equal(s.log.at(-1)!.messageType, MessageType.RenewalReq);
  assert.ok(!r2.certificate.spki.equals(r1.certificate.spki));
  assert.equal(nameToString(r2.certificate.subjectRaw), 'CN=renew-me');
  assert.ok(r2.certificate.extension(OID.subjectAltName), 'SANs are carried over');
  const r3 = issued(await c.renew({ cert: r2.certificate, key: r2.key }));
  assert.ok(r3.certificate.spki.equals(r2.certificate.spki), 'same key when newKey is absent');

  const legacy = await server({ caps: 'AES\nSHA-256\nPOSTPKIOperation\n' });
  const lc = new ScepClient({ url: legacy.url });
  const l1 = issued(await lc.enroll({ subject: 'CN=legacy', challenge: 'x', key: pooledRsaKey(0) }));
  const l2 = issued(await lc.renew({ cert: l1.certificate, key: l1.key, newKey: pooledRsaKey(2) }));
  assert.equal(l2.via, 'PKCSReq-renewal');
  assert.equal(legacy.log.at(-1)!.messageType, MessageType.PKCSReq);
  await assert.rejects(c.renew({ cert: r1.certificate, key: pooledRsaKey(2) }), /does not belong/);
});

test('getCert by serial and getCrl; unknown serial → badCertId', async () => {
  const s = await server();
  const c = new ScepClient({ url: s.url });
  const r = issued(await c.enroll({ subject: 'CN=fetch-me', challenge: 'x', key: pooledRsaKey(0) }));
  const got = await c.getCert(r.certificate.serialHex);
  assert.ok(got.der.equals(r.certificate.der));
  assert.equal(s.log.at(-1)!.messageType, MessageType.GetCert);
  const padded = await c.getCert(`0x0000${r.certificate.serialHex}`);
  assert.ok(padded.der.equals(r.certificate.der), 'leading zeros and 0x are accepted');
  await assert.rejects(
    c.getCert('0badc0de'),
    (e: unknown) => e instanceof ScepFailureError && e.failInfo === FailInfo.badCertId,
  );
  const crl = await c.getCrl(r.certificate, { signer: { cert: r.certificate, key: r.key } });
  assert.equal(s.log.at(-1)!.messageType, MessageType.GetCRL);
  assert.ok(verifyCrlSignature(crl.crl, s.ca.cert));
  assert.ok(crl.crl.includes(r.certificate.serial), 'the CRL lists the revoked serial');
});

test('getCert/getCrl with a named issuer: the certificate may come from that CA, the CertRep must still be signed by the current CA', async () => {
  const s = await server();
  const c = new ScepClient({ url: s.url });
  const r = issued(await c.enroll({ subject: 'CN=named-issuer', challenge: 'x', key: pooledRsaKey(0) }));
  // Naming the CA that really issued it changes nothing for a current certificate.
  assert.ok((await c.getCert(r.certificate.serialHex, { issuer: s.ca.cert })).der.equals(r.certificate.der));
  const crl = await c.getCrl(r.certificate, { issuer: s.ca.cert });
  assert.ok(verifyCrlSignature(crl.crl, s.ca.cert));
  // A CertRep signed by another key is refused whatever issuer is named: `issuer` only widens
  // what may sign the returned certificate or CRL, never who may sign the reply.
  s.options.tamper = 'signer';
  for (const op of [
    () => c.getCert(r.certificate.serialHex, { issuer: s.ca.cert }),
    () => c.getCrl(r.certificate, { issuer: s.ca.cert }),
  ]) {
    await assert.rejects(
      op(),
      (e: unknown) => e instanceof ScepProtocolError && /rejected the server's reply/.test(e.message),
    );
  }
});

test('getNextCaCert: accepted when signed by the current CA, rejected when foreign-signed or unsigned', async () => {
  const s = await server();
  const c = new ScepClient({ url: s.url });
  const next = await c.getNextCaCert();
  assert.equal(next.length, 1);
  assert.match(nameToString(next[0]!.subjectRaw), /Fake SCEP CA 2/);
  assert.ok(verify('sha256', next[0]!.tbs, next[0]!.publicKey(), next[0]!.signature));
  s.options.tamper = 'signer';
  await assert.rejects(c.getNextCaCert(), ScepProtocolError);
  s.options.tamper = 'unsigned-next-ca';
  await assert.rejects(c.getNextCaCert(), ScepProtocolError);
});

test('transport: 503 is retried, 400 is not, a silent server times out', async () => {
  const s = await server({ httpError: 503, httpErrorCount: 2 });
  const c = new ScepClient({ url: s.url, retries: 2, backoffMs: 5 });
  const caps = await c.getCaCaps();
  assert.ok(caps.has('AES'));
  assert.equal(s.http.filter((o) => o === 'GetCACaps').length, 3);

  s.options.httpError = 400;
  s.options.httpErrorCount = 10;
  const before = s.http.length;
  await assert.rejects(new ScepClient({ url: s.url, retries: 3, backoffMs: 5 }).getCaCert(), (e: unknown) => {
    return e instanceof ScepTransportError && e.status === 400;
  });
  assert.equal(s.http.length - before, 1, 'a 400 is not retried');

  s.options.httpError = undefined;
  s.options.hang = true;
  const hungBefore = s.http.length;
  // The fake never answers: that the call settles at all proves the timeout (1 retry: 2 tries).
  await assert.rejects(
    new ScepClient({ url: s.url, timeoutMs: 150, retries: 1, backoffMs: 5 }).getCaCert(),
    (e: unknown) => {
      return e instanceof ScepTransportError && e.timedOut;
    },
  );
  assert.equal(s.http.length - hungBefore, 2, 'one try and one retry, each timed out');
  s.options.hang = false;
});

test('an unreachable server is a transport error', async () => {
  const s = await server();
  const url = s.url;
  await s.close();
  servers.splice(servers.indexOf(s), 1);
  await assert.rejects(new ScepClient({ url, retries: 1, backoffMs: 5 }).getCaCaps(), ScepTransportError);
});
