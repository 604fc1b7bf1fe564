/**
 * Shared fixtures for the SCEP codec tests: a CA, a client with a self-signed signer cert and
 * a CSR carrying a challenge, and helpers to build request messages.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { pooledRsaKey, makeSelfSigned, type TestCert } from './pki.js';
import { buildCsr } from '../../src/pkix/csr.js';
import { encodePkiRequest, MessageType, type PkiRequestOptions } from '../../src/scep/index.js';
import { RsaKeyTransport } from '../../src/crypto/key-transport.js';

export const CHALLENGE = 'sekrit-challenge-4711';

export interface ScepFixture {
  ca: TestCert;
  client: TestCert;
  csr: Buffer;
  caRecipient: { cert: TestCert['cert']; transport: RsaKeyTransport };
}

let cached: ScepFixture | undefined;

/** One CA and one client (pooled keys, so cheap to call repeatedly). */
export function fixture(): ScepFixture {
  if (cached) return cached;
  const caKey = pooledRsaKey(0);
  const clientKey = pooledRsaKey(1);
  const ca = makeSelfSigned({ subject: 'CN=Scepter Test CA,O=Scepter', key: caKey, ca: true, days: 365 });
  const client = makeSelfSigned({ subject: 'CN=device-1,O=Scepter', key: clientKey, days: 1 });
  const csr = buildCsr({
    subject: 'CN=device-1,O=Scepter',
    key: clientKey,
    publicKey: createPublicKey(clientKey),
    challengePassword: CHALLENGE,
    subjectAltNames: [{ type: 'dns', value: 'device-1.example' }],
  });
  cached = { ca, client, csr, caRecipient: { cert: ca.cert, transport: new RsaKeyTransport(caKey) } };
  return cached;
}

/** A request from the fixture client to the fixture CA. */
export function makeRequest(over: Partial<PkiRequestOptions> = {}): { der: Buffer; senderNonce: Buffer } {
  const f = fixture();
  return encodePkiRequest({
    messageType: MessageType.PKCSReq,
    transactionId: 'tx-0001',
    signerCert: f.client.cert,
    signerKey: f.client.key as KeyObject,
    digest: 'sha256',
    recipient: f.ca.cert,
    cipher: 'aes128',
    content: f.csr,
    ...over,
  });
}
