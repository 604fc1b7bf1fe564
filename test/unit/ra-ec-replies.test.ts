/**
 * Which recipient the CertRep of an EC signer gets (src/ra/service.ts `replyRecipient`):
 * a PasswordRecipientInfo keyed by the request's challengePassword when it sent one, a
 * KeyAgreeRecipientInfo (ECDH) when it sent none (renewal), key transport for RSA signers.
 * The envelope is opened only with the right secret: the challenge for PWRI, the signer's key
 * for KARI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import {
  decryptEnvelopedDataAs,
  parseEnvelopedData,
  parseSignedData,
  type EnvelopedData,
} from '../../src/cms/index.js';
import { buildCsr } from '../../src/pkix/csr.js';
import { parseCertificate, type Certificate } from '../../src/pkix/certificate.js';
import { buildSelfSignedCertificate } from '../../src/pkix/self-signed.js';
import { decodeCertRep, encodePkiRequest, MessageType, PkiStatus } from '../../src/scep/index.js';
import { TEST_CHALLENGE } from '../helpers/scep-server.js';
import { testService } from '../helpers/service.js';
import { pooledRsaKey } from '../helpers/pki.js';

const ctx = { remoteAddress: '127.0.0.1' };

function selfSigned(key: KeyObject, subject: string): Certificate {
  return parseCertificate(
    buildSelfSignedCertificate({ subject, key, publicKey: createPublicKey(key), days: 1 }),
  );
}

function envelopeOf(body: Buffer): EnvelopedData {
  return parseEnvelopedData(parseSignedData(body).eContent!);
}

async function send(
  svc: Awaited<ReturnType<typeof testService>>,
  o: {
    messageType: MessageType;
    signer: { cert: Certificate; key: KeyObject };
    csrKey: KeyObject;
    challenge?: string;
  },
) {
  const csr = buildCsr({
    subject: 'CN=ec device,O=scepter',
    key: o.csrKey,
    publicKey: createPublicKey(o.csrKey),
    ...(o.challenge ? { challengePassword: o.challenge } : {}),
  });
  const transactionId = `tx-${o.messageType}-${o.signer.cert.serialHex}`;
  const { der, senderNonce } = encodePkiRequest({
    messageType: o.messageType,
    transactionId,
    signerCert: o.signer.cert,
    signerKey: o.signer.key,
    digest: 'sha256',
    recipient: svc.ra!.cert,
    cipher: 'aes256',
    content: csr,
  });
  const a = await svc.svc.pkiOperation(der, ctx);
  assert.equal(a.httpStatus, 200);
  return { body: a.body, senderNonce, transactionId };
}

test('EC signer with a challenge → PWRI keyed by it; renewal without one → KARI; RSA → KTRI', async (t) => {
  const svc = await testService(t, { ra: true });
  const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  const signer = { cert: selfSigned(key, 'CN=ec device,O=scepter'), key };

  const first = await send(svc, {
    messageType: MessageType.PKCSReq,
    signer,
    csrKey: key,
    challenge: TEST_CHALLENGE,
  });
  const env1 = envelopeOf(first.body);
  assert.equal(env1.passwordRecipients.length, 1);
  assert.equal(env1.agreeRecipients.length + env1.recipients.length, 0);
  assert.equal(env1.passwordRecipients[0]!.iterations, 10_000);
  // Only the challenge opens it: the device key alone does not.
  assert.throws(() => decryptEnvelopedDataAs(env1, signer));
  assert.throws(() => decryptEnvelopedDataAs(env1, { ...signer, password: Buffer.from('wrong') }));
  const opened = decryptEnvelopedDataAs(env1, { ...signer, password: Buffer.from(TEST_CHALLENGE) });
  assert.ok(opened.content.length > 0);
  const rep = decodeCertRep(first.body, {
    transactionId: first.transactionId,
    senderNonce: first.senderNonce,
    trustedSigners: [svc.ra!.cert, svc.ca.cert],
    decrypt: { ...signer, password: Buffer.from(TEST_CHALLENGE) },
  });
  assert.equal(rep.status, PkiStatus.SUCCESS);
  const issued = rep.certificates[0]!;

  // RenewalReq signed by the issued EC certificate, no challenge: key agreement to it.
  const renewal = await send(svc, {
    messageType: MessageType.RenewalReq,
    signer: { cert: issued, key },
    csrKey: key,
  });
  const env2 = envelopeOf(renewal.body);
  assert.equal(env2.agreeRecipients.length, 1);
  assert.equal(env2.passwordRecipients.length + env2.recipients.length, 0);
  assert.ok(decryptEnvelopedDataAs(env2, { cert: issued, key }).content.length > 0);
  const stranger = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  assert.throws(() => decryptEnvelopedDataAs(env2, { cert: issued, key: stranger }));

  // An RSA device: key transport as before.
  const rsa = pooledRsaKey(3);
  const rsaSigner = { cert: selfSigned(rsa, 'CN=rsa device,O=scepter'), key: rsa };
  const r = await send(svc, {
    messageType: MessageType.PKCSReq,
    signer: rsaSigner,
    csrKey: rsa,
    challenge: TEST_CHALLENGE,
  });
  const env3 = envelopeOf(r.body);
  assert.equal(env3.recipients.length, 1);
  assert.equal(env3.passwordRecipients.length + env3.agreeRecipients.length, 0);
});
