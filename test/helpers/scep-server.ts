/**
 * Helpers for the server/RA tests: an in-process scepter server on a temporary data directory,
 * a device (key + transient self-signed signer cert), PKCSReq building and CertRep opening with
 * our own client-side codec.
 */
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { startServer, type RunningServer, type StartServerOptions } from '../../src/server/index.js';
import { parseCertificate, toPem, type Certificate } from '../../src/pkix/certificate.js';
import {
  buildRaCertificate,
  buildRootCertificate,
  caExists,
  caPaths,
  exportKey,
  writePublic,
  writeSecret,
} from '../../src/ca/keystore.js';
import type { CaLocation } from '../../src/ca/ca-location.js';
import { CertificateAuthority } from '../../src/ca/issuer.js';
import { buildCsr, parseCsr, type BuildCsrOptions } from '../../src/pkix/csr.js';
import {
  buildIssuerAndSubject,
  decodeCertRep,
  encodePkiRequest,
  MessageType,
  parseCaCertResponse,
  type CertRep,
  type PkiRequestOptions,
} from '../../src/scep/index.js';
import { makeRsaKey, makeSelfSigned, pooledRsaKey, type TestCert } from './pki.js';

export const TEST_CHALLENGE = 'test-challenge-0815';

/** A temporary directory removed after the test. */
export function tempDir(t: TestContext, prefix = 'scepter-srv-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Fixture-pool indices of test CA and RA keys (device keys use low indices): 40–47, handed out
 * in turn, so the servers of one test file (up to four CA+RA pairs) never share a key.
 */
const CA_KEYS_FROM = 40;
const CA_KEYS = 8;
let nextCaKey = 0;
function takeCaKey(): number {
  const n = CA_KEYS_FROM + (nextCaKey % CA_KEYS);
  nextCaKey++;
  return n;
}

export interface SeedCaOptions {
  /** Also write an RA key and certificate. */
  ra?: boolean;
  /** Encrypt the key files with this passphrase. */
  passphrase?: string;
  /** RSA size of the fixture keys (2048 default; 1024 and 3072 have 4 fixture keys each). */
  keySize?: 1024 | 2048 | 3072;
  /** Fixture-pool indices of the CA and RA keys (default: the next unused of 40–47). */
  caKey?: number;
  raKey?: number;
  subject?: string;
  /** An EC CA key (generated: EC keys are cheap) behind the RSA fixture RA; implies `ra`. */
  caKeyType?: 'rsa' | 'ec-p256' | 'ec-p384';
}

/**
 * Writes a CA (and optionally an RA) into `<dataDir>/ca/` (or a named CA's `<dataDir>/cas/NAME/`)
 * exactly as `initCa` would — same
 * certificate builders, file names and modes — but with keys from the committed fixture pool,
 * so that starting a test server never generates an RSA key. Does nothing when a CA exists.
 */
export function seedCa(at: CaLocation, o: SeedCaOptions = {}): void {
  if (caExists(at)) return;
  const paths = caPaths(at);
  const bits = o.keySize ?? 2048;
  const ec = o.caKeyType === 'ec-p256' || o.caKeyType === 'ec-p384';
  const key = ec
    ? generateKeyPairSync('ec', { namedCurve: o.caKeyType === 'ec-p384' ? 'secp384r1' : 'prime256v1' })
        .privateKey
    : pooledRsaKey(o.caKey ?? (bits === 2048 ? takeCaKey() : 0), bits);
  const tag = Math.random().toString(16).slice(2, 10);
  const caDer = buildRootCertificate(key, o.subject ?? `CN=scepter CA ${tag},O=scepter`, 3650);
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  writeSecret(paths.key, exportKey(key, o.passphrase));
  writePublic(paths.cert, toPem(caDer));
  if (o.ra || ec) {
    const raKey = pooledRsaKey(o.raKey ?? (bits === 2048 ? takeCaKey() : 1), bits);
    const ca = new CertificateAuthority({ cert: parseCertificate(caDer), key, chain: [] });
    const raDer = buildRaCertificate(ca, raKey, `CN=scepter RA ${tag},O=scepter`, 730);
    writeSecret(paths.raKey, exportKey(raKey, o.passphrase));
    writePublic(paths.raCert, toPem(raDer));
  }
}

/** `startServer` options with the data directory's CA seeded from fixture keys (see `seedCa`). */
export function seeded<T extends Partial<StartServerOptions>>(o: T): T {
  if (o.dataDir !== undefined && !o.service) {
    mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
    seedCa(o.dataDir, {
      ...(o.ra ? { ra: true } : {}),
      ...(o.caPassphrase ? { passphrase: o.caPassphrase } : {}),
      ...(o.keySize === 3072 ? { keySize: 3072 as const } : {}),
      ...(o.caKeyType ? { caKeyType: o.caKeyType } : {}),
    });
  }
  return o;
}

/**
 * A server on a fresh data directory (2048-bit fixture CA, fixed challenge, silent logs),
 * closed after the test.
 */
export async function testServer(
  t: TestContext,
  o: Partial<StartServerOptions> = {},
): Promise<RunningServer> {
  const s = await startServer(
    seeded({
      dataDir: tempDir(t),
      keySize: 2048,
      challenge: TEST_CHALLENGE,
      logLevel: 'silent',
      ...o,
    }),
  );
  t.after(() => s.close());
  return s;
}

/** A device: its key and the transient self-signed certificate it signs requests with. */
export interface Device {
  key: KeyObject;
  signer: TestCert;
  subject: string;
}

/** A device with a fresh key (`fresh`) or a pooled one (index `pool`, faster). */
export function device(
  subject = 'CN=device,O=Test',
  o: { fresh?: boolean; pool?: number; bits?: number } = {},
): Device {
  const key = o.fresh ? makeRsaKey(o.bits ?? 2048) : pooledRsaKey(o.pool ?? 0, o.bits ?? 2048);
  return { key, subject, signer: makeSelfSigned({ subject, key, days: 1 }) };
}

/** The CA/RA certificates from GetCACert. */
export async function caCerts(url: string): Promise<Certificate[]> {
  const r = await fetch(`${url}?operation=GetCACert`);
  return parseCaCertResponse(r.headers.get('content-type') ?? '', Buffer.from(await r.arrayBuffer()));
}

/** The certificate envelopes go to: the RA (first, when present) or the CA. */
export function recipientOf(certs: Certificate[]): Certificate {
  return certs[0]!;
}

/** A PKCS#10 of the device (challenge by default TEST_CHALLENGE). */
export function csrOf(d: Device, o: Partial<BuildCsrOptions> = {}): Buffer {
  return buildCsr({
    subject: d.subject,
    key: d.key,
    publicKey: createPublicKey(d.key),
    challengePassword: TEST_CHALLENGE,
    ...o,
  });
}

/** A PKCSReq from the device to `recipient`. */
export function pkcsReq(
  d: Device,
  recipient: Certificate,
  o: Partial<PkiRequestOptions> & { challenge?: string } = {},
): { der: Buffer; senderNonce: Buffer; transactionId: string } {
  const transactionId = o.transactionId ?? `tx-${Math.random().toString(36).slice(2)}`;
  const { challenge, ...rest } = o;
  const content = o.content ?? csrOf(d, challenge !== undefined ? { challengePassword: challenge } : {});
  const m = encodePkiRequest({
    messageType: MessageType.PKCSReq,
    signerCert: d.signer.cert,
    signerKey: d.key,
    digest: 'sha256',
    recipient,
    cipher: 'aes128',
    ...rest,
    transactionId,
    content,
  });
  return { ...m, transactionId };
}

/**
 * A CertPoll for `transactionId`, signed by `d` (or `o.signer`) and encrypted to `recipient`: its
 * IssuerAndSubject names `ca` and the subject of the original request's CSR (that of `d`);
 * `o.content` replaces the IssuerAndSubject.
 */
export function certPoll(
  d: Device,
  recipient: Certificate,
  ca: Certificate,
  transactionId: string,
  o: { signer?: Device; content?: Buffer } = {},
): { der: Buffer; senderNonce: Buffer; transactionId: string } {
  const signer = o.signer ?? d;
  const subjectRaw = parseCsr(csrOf(d)).subjectRaw;
  const m = encodePkiRequest({
    messageType: MessageType.CertPoll,
    transactionId,
    signerCert: signer.signer.cert,
    signerKey: signer.key,
    digest: 'sha256',
    recipient,
    cipher: 'aes128',
    content: o.content ?? buildIssuerAndSubject({ issuerRaw: ca.subjectRaw, subjectRaw }),
  });
  return { ...m, transactionId };
}

/** POSTs a pkiMessage; returns status, content type and body. */
export async function postPki(
  url: string,
  der: Buffer,
  contentType: string | undefined = 'application/x-pki-message',
): Promise<{ status: number; contentType: string; body: Buffer }> {
  const r = await fetch(`${url}?operation=PKIOperation`, {
    method: 'POST',
    body: der,
    headers: contentType ? { 'content-type': contentType } : {},
  });
  return {
    status: r.status,
    contentType: r.headers.get('content-type') ?? '',
    body: Buffer.from(await r.arrayBuffer()),
  };
}

/** Authenticates and opens a CertRep for the device's request. */
export function openCertRep(
  body: Buffer,
  req: { senderNonce: Buffer; transactionId: string },
  d: Device,
  trusted: Certificate[],
  o: { allowSingleDes?: boolean } = {},
): CertRep {
  return decodeCertRep(body, {
    transactionId: req.transactionId,
    senderNonce: req.senderNonce,
    trustedSigners: trusted,
    decrypt: { cert: d.signer.cert, key: d.key },
    ...o,
  });
}

/**
 * A renewal: `csr` in a message signed by `old` (a certificate we issued) — RenewalReq by
 * default, or PKCSReq — POSTed to `url`; the reply must be HTTP 200 and is decrypted with the
 * old key, as it is encrypted to the request's signer.
 */
export async function sendSignedBy(
  url: string,
  certs: Certificate[],
  old: { cert: Certificate; key: KeyObject },
  csr: Buffer,
  o: { messageType?: MessageType; transactionId?: string } = {},
): Promise<CertRep> {
  const transactionId = o.transactionId ?? `renew-${Math.random().toString(36).slice(2)}`;
  const m = encodePkiRequest({
    messageType: o.messageType ?? MessageType.RenewalReq,
    transactionId,
    signerCert: old.cert,
    signerKey: old.key,
    digest: 'sha256',
    recipient: recipientOf(certs),
    cipher: 'aes256',
    content: csr,
  });
  const a = await postPki(url, m.der);
  if (a.status !== 200) throw new Error(`renewal answered HTTP ${a.status}: ${a.body.toString()}`);
  return decodeCertRep(a.body, {
    transactionId,
    senderNonce: m.senderNonce,
    trustedSigners: certs,
    decrypt: { cert: old.cert, key: old.key },
  });
}
