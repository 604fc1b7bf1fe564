/**
 * Ready-made PKCSReq messages and reply checks for load, scale and crash tests and for the
 * benchmark (`bench/run.ts`): requests are built ahead of time (no crypto while measuring),
 * sent over keep-alive HTTP, and every reply is verified afterwards (SUCCESS, signed by the
 * CA, decrypts with the requester's key, certificate carries the requested key).
 */
import { generateKeyPair, randomBytes, createPublicKey, type KeyObject } from 'node:crypto';
import { Agent, request } from 'node:http';
import { parseCertificate, type Certificate } from '../../src/pkix/certificate.js';
import { buildCsr } from '../../src/pkix/csr.js';
import { buildSelfSignedCertificate } from '../../src/pkix/self-signed.js';
import type { CipherName, DigestName } from '../../src/crypto/algorithms.js';
import { decodeCertRep, encodePkiRequest, MessageType, PkiStatus } from '../../src/scep/index.js';
import { pooledRsaKey } from './pki.js';

let nextFixtureKey = 24;

/**
 * `count` distinct RSA keys: first from the committed fixture pool (indices 24–39 of
 * test/fixtures/keys, each handed out once per process, so two calls never share a key), then
 * freshly generated in parallel on the libuv thread pool.
 */
export async function generateRsaKeys(count: number, bits = 2048): Promise<KeyObject[]> {
  const out: KeyObject[] = [];
  while (out.length < count && bits === 2048 && nextFixtureKey < 40) out.push(pooledRsaKey(nextFixtureKey++));
  const one = () =>
    new Promise<KeyObject>((resolve, reject) =>
      generateKeyPair('rsa', { modulusLength: bits }, (err, _pub, priv) =>
        err ? reject(err) : resolve(priv),
      ),
    );
  return [...out, ...(await Promise.all(Array.from({ length: count - out.length }, one)))];
}

/** One pre-built enrollment: the request bytes plus what is needed to check its reply. */
export interface PreparedEnrollment {
  transactionId: string;
  cn: string;
  der: Buffer;
  senderNonce: Buffer;
  signerCert: Certificate;
  key: KeyObject;
  /** SubjectPublicKeyInfo DER of the requested key (the issued certificate must carry it). */
  spki: Buffer;
}

export interface EnrollmentOptions {
  key: KeyObject;
  /** The CA (or RA) certificate the envelope is encrypted to. */
  recipient: Certificate;
  challenge: string;
  cn: string;
  transactionId?: string;
  cipher?: CipherName;
  digest?: DigestName;
}

const signerCerts = new WeakMap<KeyObject, Certificate>();

/** The transient self-signed signer certificate of `key` (one per key, reused). */
export function signerCertFor(key: KeyObject): Certificate {
  let c = signerCerts.get(key);
  if (!c) {
    c = parseCertificate(
      buildSelfSignedCertificate({ subject: 'CN=scepter load client', key, publicKey: createPublicKey(key) }),
    );
    signerCerts.set(key, c);
  }
  return c;
}

/** Builds one PKCSReq (CSR with challenge, enveloped to `recipient`, signed by the key). */
export function makeEnrollment(o: EnrollmentOptions): PreparedEnrollment {
  const publicKey = createPublicKey(o.key);
  const csr = buildCsr({
    subject: `CN=${o.cn},O=Scepter Load`,
    key: o.key,
    publicKey,
    challengePassword: o.challenge,
    subjectAltNames: [{ type: 'dns', value: `${o.cn}.load.test` }],
  });
  const signerCert = signerCertFor(o.key);
  const transactionId = o.transactionId ?? randomBytes(16).toString('hex');
  const { der, senderNonce } = encodePkiRequest({
    messageType: MessageType.PKCSReq,
    transactionId,
    signerCert,
    signerKey: o.key,
    digest: o.digest ?? 'sha256',
    recipient: o.recipient,
    cipher: o.cipher ?? 'aes128',
    content: csr,
    ...(o.cipher === 'des' ? { allowSingleDes: true } : {}),
  });
  return {
    transactionId,
    cn: o.cn,
    der,
    senderNonce,
    signerCert,
    key: o.key,
    spki: publicKey.export({ type: 'spki', format: 'der' }),
  };
}

/** The outcome of checking one reply. */
export type ReplyCheck =
  | { ok: true; serial: string; certDer: Buffer; cipher: CipherName | undefined }
  | { ok: false; reason: string };

/**
 * Verifies a PKIOperation reply: HTTP 200, a CertRep signed by one of `trusted`, SUCCESS,
 * opens with the requester's key, and the first certificate holds the requested key.
 */
export function checkReply(
  httpStatus: number,
  body: Buffer,
  e: PreparedEnrollment,
  trusted: Certificate[],
  o: { allowSingleDes?: boolean } = {},
): ReplyCheck {
  if (httpStatus !== 200) return { ok: false, reason: `HTTP ${httpStatus}: ${body.toString().trim()}` };
  try {
    const rep = decodeCertRep(body, {
      transactionId: e.transactionId,
      senderNonce: e.senderNonce,
      trustedSigners: trusted,
      decrypt: { cert: e.signerCert, key: e.key },
      ...(o.allowSingleDes ? { allowSingleDes: true } : {}),
    });
    if (rep.status !== PkiStatus.SUCCESS) {
      return { ok: false, reason: `pkiStatus ${rep.status} ${rep.failInfo ?? ''} ${rep.failInfoText ?? ''}` };
    }
    const cert = rep.certificates.find((c) => c.spki.equals(e.spki));
    if (!cert) return { ok: false, reason: 'no certificate for the requested key in the reply' };
    return { ok: true, serial: cert.serialHex, certDer: cert.der, cipher: rep.cipher };
  } catch (err) {
    return { ok: false, reason: `bad CertRep: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** An HTTP reply (status and body). */
export interface HttpReply {
  status: number;
  body: Buffer;
}

/** POSTs one pkiMessage to `url` (…?operation=PKIOperation is added) over `agent`. */
export function postPkiMessage(url: string, der: Buffer, agent?: Agent): Promise<HttpReply> {
  const u = new URL(url);
  u.searchParams.set('operation', 'PKIOperation');
  return new Promise((resolve, reject) => {
    const req = request(
      u,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/x-pki-message', 'content-length': der.length },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(der);
  });
}
