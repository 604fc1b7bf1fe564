import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  buildIssuerAndSerial,
  buildIssuerAndSubject,
  decodeCertRep,
  decodePkiRequest,
  encodeCertRep,
  FailInfo,
  MessageType,
  openEnvelope,
  parseIssuerAndSerial,
  parseIssuerAndSubject,
  PkiStatus,
  ScepError,
} from '../../src/scep/index.js';
import { parseCsr } from '../../src/pkix/csr.js';
import type { CipherName, DigestName } from '../../src/crypto/algorithms.js';
import { CHALLENGE, fixture, makeRequest } from '../helpers/scep-fixtures.js';
import { makeIssued } from '../helpers/pki.js';

const CIPHERS: CipherName[] = ['aes128', 'aes192', 'aes256', 'des3'];
const DIGESTS: DigestName[] = ['sha1', 'sha224', 'sha256', 'sha384', 'sha512'];

test('PKCSReq round trip for every cipher × digest', () => {
  const f = fixture();
  for (const cipher of CIPHERS) {
    for (const digest of DIGESTS) {
      const { der, senderNonce } = makeRequest({ cipher, digest, transactionId: `tx-${cipher}-${digest}` });
      const req = decodePkiRequest(der);
      assert.equal(req.failure, undefined, `${cipher}/${digest}: ${req.failure?.text}`);
      assert.equal(req.messageType, MessageType.PKCSReq);
      assert.equal(req.transactionId, `tx-${cipher}-${digest}`);
      assert.deepEqual(req.senderNonce, senderNonce);
      assert.equal(req.digest, digest);
      assert.ok(req.signerCert.der.equals(f.client.certDer));
      const opened = openEnvelope(req, [f.caRecipient]);
      assert.equal(opened.cipher, cipher);
      assert.ok(opened.content.equals(f.csr));
      assert.equal(parseCsr(opened.content).challengePassword, CHALLENGE);
    }
  }
});

test('RenewalReq, CertPoll, GetCert, GetCRL round trip with their message data', () => {
  const f = fixture();
  const ias = buildIssuerAndSubject({
    issuerRaw: f.ca.cert.subjectRaw,
    subjectRaw: f.client.cert.subjectRaw,
  });
  const iasn = buildIssuerAndSerial({
    issuerRaw: f.ca.cert.subjectRaw,
    serial: Buffer.from([0x00, 0x8f, 0x01]),
  });
  const cases: Array<[MessageType, Buffer]> = [
    [MessageType.RenewalReq, f.csr],
    [MessageType.CertPoll, ias],
    [MessageType.GetCert, iasn],
    [MessageType.GetCRL, iasn],
  ];
  for (const [messageType, content] of cases) {
    const { der } = makeRequest({ messageType, content, keyTransport: 'oaep-sha256', cipher: 'aes256' });
    const req = decodePkiRequest(der);
    assert.equal(req.failure, undefined);
    assert.equal(req.messageType, messageType);
    const { content: got } = openEnvelope(req, [f.caRecipient]);
    assert.ok(got.equals(content));
    if (messageType === MessageType.CertPoll) {
      const p = parseIssuerAndSubject(got);
      assert.ok(p.issuerRaw.equals(f.ca.cert.subjectRaw));
      assert.ok(p.subjectRaw.equals(f.client.cert.subjectRaw));
    } else if (messageType !== MessageType.RenewalReq) {
      const p = parseIssuerAndSerial(got);
      assert.ok(p.serial.equals(Buffer.from([0x00, 0x8f, 0x01])));
      assert.ok(p.issuerRaw.equals(f.ca.cert.subjectRaw));
    }
  }
});

test('message data parse errors are the uniform badMessageCheck', () => {
  for (const fn of [parseIssuerAndSubject, parseIssuerAndSerial]) {
    assert.throws(
      () => fn(Buffer.from('3003020101', 'hex')),
      (e: unknown) => e instanceof ScepError && e.failInfo === FailInfo.badMessageCheck,
    );
  }
});

test('CertRep SUCCESS/FAILURE/PENDING round trip through decodeCertRep', () => {
  const f = fixture();
  const issued = makeIssued({ subject: 'CN=device-1', issuer: f.ca, key: f.client.key });
  for (const cipher of [...CIPHERS, 'des' as const]) {
    for (const digest of DIGESTS) {
      const nonce = randomBytes(16);
      const der = encodeCertRep({
        transactionId: 'tx-1',
        recipientNonce: nonce,
        status: PkiStatus.SUCCESS,
        certificates: [issued.certDer, f.ca.certDer],
        recipientCert: f.client.cert,
        cipher,
        signer: { cert: f.ca.cert, key: f.ca.key },
        digest,
      });
      const rep = decodeCertRep(der, {
        transactionId: 'tx-1',
        senderNonce: nonce,
        trustedSigners: [f.ca.cert],
        decrypt: { cert: f.client.cert, key: f.client.key },
      });
      assert.equal(rep.status, PkiStatus.SUCCESS);
      assert.equal(rep.digest, digest);
      assert.equal(rep.cipher, cipher === 'des' ? 'des3' : cipher, 'single DES is answered with 3DES');
      assert.equal(rep.certificates.length, 2);
      assert.ok(rep.certificates[0]!.der.equals(issued.certDer), 'issued certificate first');
      assert.equal(rep.senderNonce.length, 16);
      assert.ok(!rep.senderNonce.equals(nonce));
    }
  }
  const nonce = randomBytes(32);
  const fail = encodeCertRep({
    transactionId: 'tx-2',
    recipientNonce: nonce,
    status: PkiStatus.FAILURE,
    failInfo: FailInfo.badCertId,
    failInfoText: 'no such certificate',
    signer: { cert: f.ca.cert, key: f.ca.key },
    digest: 'sha256',
  });
  const rep = decodeCertRep(fail, { transactionId: 'tx-2', senderNonce: nonce, trustedSigners: [f.ca.cert] });
  assert.equal(rep.status, PkiStatus.FAILURE);
  assert.equal(rep.failInfo, FailInfo.badCertId);
  assert.equal(rep.failInfoText, 'no such certificate');
  assert.ok(rep.recipientNonce.equals(nonce), '32-byte nonce echoed verbatim');
  const pend = encodeCertRep({
    transactionId: 'tx-3',
    recipientNonce: nonce,
    status: PkiStatus.PENDING,
    signer: { cert: f.ca.cert, key: f.ca.key },
    digest: 'sha512',
  });
  const p = decodeCertRep(pend, { transactionId: 'tx-3', senderNonce: nonce, trustedSigners: [f.ca.cert] });
  assert.equal(p.status, PkiStatus.PENDING);
  assert.equal(p.digest, 'sha512');
});

test('GetCRL CertRep carries CRLs only', () => {
  const f = fixture();
  // Any DER SEQUENCE stands in for a CertificateList here; the codec treats CRLs as opaque.
  const crl = Buffer.from('3003020101', 'hex');
  const nonce = randomBytes(16);
  const der = encodeCertRep({
    transactionId: 'crl',
    recipientNonce: nonce,
    status: PkiStatus.SUCCESS,
    crls: [crl],
    recipientCert: f.client.cert,
    cipher: 'aes128',
    signer: { cert: f.ca.cert, key: f.ca.key },
    digest: 'sha256',
  });
  const rep = decodeCertRep(der, {
    transactionId: 'crl',
    senderNonce: nonce,
    trustedSigners: [f.ca.cert],
    decrypt: { cert: f.client.cert, key: f.client.key },
  });
  assert.equal(rep.certificates.length, 0);
  assert.equal(rep.crls.length, 1);
  assert.ok(rep.crls[0]!.equals(crl));
});

test('decodeCertRep rejects a wrong nonce, transactionID, untrusted signer, or a request', () => {
  const f = fixture();
  const nonce = randomBytes(16);
  const der = encodeCertRep({
    transactionId: 'tx',
    recipientNonce: nonce,
    status: PkiStatus.PENDING,
    signer: { cert: f.ca.cert, key: f.ca.key },
    digest: 'sha256',
  });
  const bad = (o: Parameters<typeof decodeCertRep>[1], re: RegExp, input = der) =>
    assert.throws(
      () => decodeCertRep(input, o),
      (e: unknown) => e instanceof ScepError && e.kind === 'failure' && re.test(e.message),
    );
  bad({ transactionId: 'tx', senderNonce: randomBytes(16), trustedSigners: [f.ca.cert] }, /recipientNonce/);
  bad({ transactionId: 'other', senderNonce: nonce, trustedSigners: [f.ca.cert] }, /transactionID/);
  bad({ transactionId: 'tx', senderNonce: nonce, trustedSigners: [f.client.cert] }, /trusted/);
  const { der: reqDer, senderNonce } = makeRequest({ transactionId: 'tx' });
  bad(
    { transactionId: 'tx', senderNonce, trustedSigners: [f.client.cert] },
    /messageType|recipientNonce/,
    reqDer,
  );
});
