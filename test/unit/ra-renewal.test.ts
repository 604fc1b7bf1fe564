/**
 * Renewal (docs/conformance.md cases 40–42) and GetCert/GetCRL (cases 43–44) through the HTTP server:
 * RenewalReq and PKCSReq signed by an issued certificate renew without a challenge; revoked,
 * expired and foreign signers fail; key and subject rules; GetCert tolerates a leading 0x00;
 * GetCRL returns a CRL that lists a revocation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { randomSerial } from '../../src/ca/serial.js';
import {
  parseCertificate,
  verifyCertificateSignature,
  type Certificate,
} from '../../src/pkix/certificate.js';
import { buildCsr } from '../../src/pkix/csr.js';
import { certificateRecord } from '../../src/ra/issuance.js';
import {
  buildIssuerAndSerial,
  encodePkiRequest,
  FailInfo,
  MessageType,
  PkiStatus,
  type CertRep,
} from '../../src/scep/index.js';
import { verifyCrlSignature } from '../../src/client/client.js';
import type { RunningServer } from '../../src/server/index.js';
import { makeIssued, makeSelfSigned, pooledRsaKey } from '../helpers/pki.js';
import {
  caCerts,
  device,
  openCertRep,
  pkcsReq,
  postPki,
  recipientOf,
  testServer,
  sendSignedBy,
} from '../helpers/scep-server.js';
import type { KeyObject } from 'node:crypto';

interface Holder {
  cert: Certificate;
  key: KeyObject;
}

async function enroll(
  s: RunningServer,
  certs: Certificate[],
  subject: string,
  pool: number,
): Promise<Holder> {
  const d = device(subject, { pool });
  const r = pkcsReq(d, recipientOf(certs));
  const rep = openCertRep((await postPki(s.url, r.der)).body, r, d, certs);
  assert.equal(rep.status, PkiStatus.SUCCESS, rep.failInfoText);
  return { cert: rep.certificates[0]!, key: d.key };
}

/** A renewal signed by `old`: RenewalReq (default) or PKCSReq, CSR for `key` without a challenge. */
async function renew(
  s: RunningServer,
  certs: Certificate[],
  old: Holder,
  o: { key?: KeyObject; messageType?: MessageType; subjectRaw?: Buffer; transactionId?: string } = {},
): Promise<CertRep> {
  const key = o.key ?? old.key;
  const csr = buildCsr({
    subject: o.subjectRaw ?? old.cert.subjectRaw,
    key,
    publicKey: createPublicKey(key),
  });
  // The reply is encrypted to the OLD certificate (the request's signer).
  return sendSignedBy(s.url, certs, old, csr, {
    ...(o.messageType !== undefined ? { messageType: o.messageType } : {}),
    ...(o.transactionId !== undefined ? { transactionId: o.transactionId } : {}),
  });
}

test('RenewalReq and PKCSReq signed by an issued certificate renew without a challenge', async (t) => {
  const s = await testServer(t);
  const certs = await caCerts(s.url);
  assert.match(await (await fetch(`${s.url}?operation=GetCACaps`)).text(), /^Renewal$/m);
  const old = await enroll(s, certs, 'CN=renew-me,O=Test', 10);

  const same = await renew(s, certs, old);
  assert.equal(same.status, PkiStatus.SUCCESS, same.failInfoText);
  const c1 = same.certificates[0]!;
  assert.notEqual(c1.serialHex, old.cert.serialHex);
  assert.ok(c1.spki.equals(old.cert.spki), 'same key renewal');
  assert.ok(verifyCertificateSignature(c1, certs[0]!.publicKey()));

  const newKey = pooledRsaKey(11);
  const viaPkcs = await renew(s, certs, old, { key: newKey, messageType: MessageType.PKCSReq });
  assert.equal(viaPkcs.status, PkiStatus.SUCCESS, viaPkcs.failInfoText);
  assert.ok(
    viaPkcs.certificates[0]!.spki.equals(createPublicKey(newKey).export({ type: 'spki', format: 'der' })),
  );

  // Resend of the same renewal transaction → the same certificate, nothing issued twice.
  const tid = 'renew-resend-1';
  const a = await renew(s, certs, old, { transactionId: tid });
  const b = await renew(s, certs, old, { transactionId: tid });
  assert.ok(a.certificates[0]!.der.equals(b.certificates[0]!.der));

  // Subject must stay the same (default policy).
  const other = await renew(s, certs, old, { subjectRaw: parseCertificate(certs[0]!.der).subjectRaw });
  assert.equal(other.status, PkiStatus.FAILURE);
  assert.equal(other.failInfo, FailInfo.badRequest);
});

test('renewal refused: same key with --renewal-key new, revoked, expired, foreign, key of another subject', async (t) => {
  const s = await testServer(t, { lifecycle: { renewal: { key: 'new' } } });
  const certs = await caCerts(s.url);
  const store = s.enrollment!.store;
  const old = await enroll(s, certs, 'CN=strict,O=Test', 12);

  const sameKey = await renew(s, certs, old);
  assert.equal(sameKey.status, PkiStatus.FAILURE);
  assert.equal(sameKey.failInfo, FailInfo.badRequest);
  assert.match(sameKey.failInfoText ?? '', /same key/);
  const fresh = await renew(s, certs, old, { key: pooledRsaKey(13) });
  assert.equal(fresh.status, PkiStatus.SUCCESS, fresh.failInfoText);

  // A key already certified to another subject.
  const taken = await enroll(s, certs, 'CN=someone-else,O=Test', 14);
  const steal = await renew(s, certs, old, { key: taken.key });
  assert.equal(steal.status, PkiStatus.FAILURE);
  assert.match(steal.failInfoText ?? '', /another subject/);

  // Revoked signer.
  const rev = await enroll(s, certs, 'CN=revoked,O=Test', 15);
  assert.equal(await store.revoke(rev.cert.serialHex, 1, new Date()), true);
  const r1 = await renew(s, certs, rev, { key: pooledRsaKey(16) });
  assert.equal(r1.status, PkiStatus.FAILURE);
  assert.match(r1.failInfoText ?? '', /revoked/);

  // Expired signer issued by our CA (and in the store).
  const ca = s.dataDir!.loaded.ca;
  const key = pooledRsaKey(17);
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const der = ca.issue({
    subjectRaw: old.cert.subjectRaw,
    spki,
    serial: randomSerial(),
    notBefore: new Date(Date.now() - 10 * 86_400_000),
    notAfter: new Date(Date.now() - 86_400_000),
    profile: s.enrollment!.config.profile,
  });
  const expired = { cert: parseCertificate(der), key };
  await store.insertCertificate(certificateRecord(expired.cert, ca.cert.fingerprint, null));
  const r2 = await renew(s, certs, expired, { key: pooledRsaKey(18) });
  assert.equal(r2.status, PkiStatus.FAILURE);
  assert.match(r2.failInfoText ?? '', /expired/);

  // Foreign CA: a RenewalReq is refused; a PKCSReq is an initial enrollment (needs a challenge).
  const foreignCa = makeSelfSigned({ subject: 'CN=Foreign CA', key: pooledRsaKey(19), ca: true });
  const f = makeIssued({ subject: 'CN=strict,O=Test', key: pooledRsaKey(20), issuer: foreignCa });
  const foreign = { cert: f.cert, key: pooledRsaKey(20) };
  const r3 = await renew(s, certs, foreign);
  assert.equal(r3.status, PkiStatus.FAILURE);
  assert.match(r3.failInfoText ?? '', /not signed by a certificate this CA issued/);
  const r4 = await renew(s, certs, foreign, { messageType: MessageType.PKCSReq });
  assert.equal(r4.status, PkiStatus.FAILURE);
  assert.match(r4.failInfoText ?? '', /challengePassword/);
});

test('renewal disabled: RenewalReq → FAILURE badRequest and Renewal is not advertised', async (t) => {
  const s = await testServer(t, { lifecycle: { renewal: { enabled: false } } });
  const certs = await caCerts(s.url);
  assert.doesNotMatch(await (await fetch(`${s.url}?operation=GetCACaps`)).text(), /Renewal/);
  const old = await enroll(s, certs, 'CN=no-renewal,O=Test', 21);
  const r = await renew(s, certs, old);
  assert.equal(r.status, PkiStatus.FAILURE);
  assert.equal(r.failInfo, FailInfo.badRequest);
});

test('GetCert (leading 0x00 tolerated, unknown → badCertId) and GetCRL with a revocation', async (t) => {
  const s = await testServer(t, { lifecycle: { renewal: { revokeOld: true } } });
  const certs = await caCerts(s.url);
  const ca = certs[0]!;
  const held = await enroll(s, certs, 'CN=lookup,O=Test', 22);
  const asker = device('CN=asker', { pool: 23 });

  async function lookup(type: MessageType, serial: Buffer, issuerRaw = ca.subjectRaw): Promise<CertRep> {
    const transactionId = `lookup-${Math.random().toString(36).slice(2)}`;
    const m = encodePkiRequest({
      messageType: type,
      transactionId,
      signerCert: asker.signer.cert,
      signerKey: asker.key,
      digest: 'sha256',
      recipient: recipientOf(certs),
      cipher: 'aes128',
      content: buildIssuerAndSerial({ issuerRaw, serial }),
    });
    return openCertRep((await postPki(s.url, m.der)).body, { ...m, transactionId }, asker, certs);
  }

  const serial = Buffer.from(held.cert.serialHex, 'hex');
  for (const s0 of [serial, Buffer.concat([Buffer.from([0]), serial])]) {
    const rep = await lookup(MessageType.GetCert, s0);
    assert.equal(rep.status, PkiStatus.SUCCESS, rep.failInfoText);
    assert.ok(rep.certificates[0]!.der.equals(held.cert.der));
    assert.equal(rep.certificates.length, 1, 'GetCert answers just the requested certificate');
  }
  const miss = await lookup(MessageType.GetCert, Buffer.from('7f0102', 'hex'));
  assert.equal(miss.status, PkiStatus.FAILURE);
  assert.equal(miss.failInfo, FailInfo.badCertId);
  const wrongIssuer = await lookup(MessageType.GetCert, serial, asker.signer.cert.subjectRaw);
  assert.equal(wrongIssuer.failInfo, FailInfo.badCertId);

  // Renewal with revokeOld: the old certificate is revoked (superseded) and the CRL says so.
  const renewed = await renew(s, certs, held, { key: pooledRsaKey(24) });
  assert.equal(renewed.status, PkiStatus.SUCCESS, renewed.failInfoText);
  const issuingCa = certs.find((c) => c.subjectRaw.equals(c.issuerRaw))!;
  assert.deepEqual(
    renewed.certificates.slice(1).map((c) => c.fingerprint),
    [issuingCa.fingerprint],
    'RenewalReq: the issuing CA follows the renewed certificate',
  );
  const rec = await s.enrollment!.store.getCertificate(held.cert.serialHex);
  assert.equal(rec?.status, 'revoked');
  assert.equal(rec?.revocationReason, 4);

  const crlRep = await lookup(MessageType.GetCRL, serial);
  assert.equal(crlRep.status, PkiStatus.SUCCESS, crlRep.failInfoText);
  assert.equal(crlRep.certificates.length, 0);
  const crl = crlRep.crls[0]!;
  assert.ok(verifyCrlSignature(crl, ca));
  assert.ok(crl.includes(serial), 'the revoked serial is listed');
  const http = await fetch(`${s.origin}/crl`);
  assert.equal(http.headers.get('content-type'), 'application/pkix-crl');
  assert.ok(Buffer.from(await http.arrayBuffer()).equals(crl));
  const byIssuer = await fetch(`${s.origin}/crl/${ca.fingerprint}.crl`);
  assert.equal(byIssuer.status, 200);
  assert.equal((await fetch(`${s.origin}/crl/${'0'.repeat(64)}.crl`)).status, 404);

  const foreignIssuer = await lookup(MessageType.GetCRL, serial, asker.signer.cert.subjectRaw);
  assert.equal(foreignIssuer.failInfo, FailInfo.badCertId);
});
