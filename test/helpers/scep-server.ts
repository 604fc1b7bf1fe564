/**
 * Helpers for the server/RA tests: an in-process scepter server on a temporary data directory,
 * a device (key + transient self-signed signer cert), PKCSReq building and CertRep opening with
 * our own client-side codec.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { startServer, type RunningServer, type StartServerOptions } from '../../src/server/index.js';
import type { Certificate } from '../../src/pkix/certificate.js';
import { buildCsr, type BuildCsrOptions } from '../../src/pkix/csr.js';
import {
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

/** A server on a fresh data directory (2048-bit CA, fixed challenge, silent logs), closed after the test. */
export async function testServer(
  t: TestContext,
  o: Partial<StartServerOptions> = {},
): Promise<RunningServer> {
  const s = await startServer({
    dataDir: tempDir(t),
    keySize: 2048,
    challenge: TEST_CHALLENGE,
    logLevel: 'silent',
    ...o,
  });
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
