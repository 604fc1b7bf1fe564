/**
 * A pending enrollment saved to disk, so that the next run resumes the same SCEP transaction
 * (CertPoll with the same transactionID, key and signer) instead of starting a second one —
 * what certmonger does. Used by `scepter enroll` and `scepter renew` when polling gives up.
 *
 * Layout in the output directory (all written atomically, 0600):
 * - `pending.json`: version, URL, transactionID, request kind, issuer and subject names (base64
 *   DER), the signer certificate (PEM) and when the request was first sent;
 * - `pending-key.pem`: the private key the certificate will be for;
 * - `pending-signer-key.pem`: the key of the signer certificate, only when it is not that key
 *   (a renewal signed by the current certificate).
 * A reply that ends the transaction (issued, or FAILURE) removes the three files.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { fromPem, parseCertificate, toPem } from '../pkix/certificate.js';
import type { PendingResult } from './client.js';
import { keyToPem, writeFileAtomic } from './files.js';

export const PENDING_FILE = 'pending.json';
const KEY_FILE = 'pending-key.pem';
const SIGNER_KEY_FILE = 'pending-signer-key.pem';

interface PendingJson {
  version: 1;
  url: string;
  transactionId: string;
  via: PendingResult['via'];
  issuer: string;
  subject: string;
  signerCert: string;
  negotiated: PendingResult['negotiated'];
  createdAt: string;
}

/** A saved pending request that cannot be used (unreadable, inconsistent, other version). */
export class PendingStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PendingStateError';
  }
}

function spki(key: KeyObject): Buffer {
  return createPublicKey(key).export({ type: 'spki', format: 'der' });
}

/** Saves `p` (a PENDING answer from `url`) under `dir`. Key files first, the JSON last. */
export async function savePendingState(dir: string, url: string, p: PendingResult): Promise<string> {
  await fs.mkdir(dir, { recursive: true, mode: 0o755 });
  await writeFileAtomic(join(dir, KEY_FILE), keyToPem(p.key), 0o600);
  const separateSigner = !spki(p.signer.key).equals(spki(p.key));
  if (separateSigner) await writeFileAtomic(join(dir, SIGNER_KEY_FILE), keyToPem(p.signer.key), 0o600);
  else await fs.rm(join(dir, SIGNER_KEY_FILE), { force: true });
  const state: PendingJson = {
    version: 1,
    url,
    transactionId: p.transactionId,
    via: p.via,
    issuer: p.issuerRaw.toString('base64'),
    subject: p.subjectRaw.toString('base64'),
    signerCert: toPem(p.signer.cert.der),
    negotiated: p.negotiated,
    createdAt: new Date().toISOString(),
  };
  const file = join(dir, PENDING_FILE);
  await writeFileAtomic(file, JSON.stringify(state, null, 2) + '\n', 0o600);
  return file;
}

function field(o: Record<string, unknown>, k: string): string {
  const v = o[k];
  if (typeof v !== 'string' || v === '') throw new PendingStateError(`${PENDING_FILE}: ${k} is missing`);
  return v;
}

/**
 * The pending request saved under `dir` with the URL it was sent to, or undefined when there
 * is none. Throws PendingStateError when the saved state is unusable.
 */
export async function loadPendingState(
  dir: string,
): Promise<{ url: string; pending: PendingResult; createdAt: string } | undefined> {
  let text: string;
  try {
    text = await fs.readFile(join(dir, PENDING_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PendingStateError(`cannot read ${join(dir, PENDING_FILE)}`);
  }
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    throw new PendingStateError(`${join(dir, PENDING_FILE)} is not valid JSON`);
  }
  if (typeof o !== 'object' || o === null || (o as { version?: unknown }).version !== 1)
    throw new PendingStateError(`${join(dir, PENDING_FILE)} is not a pending request of this version`);
  const j = o as Record<string, unknown>;
  const via = field(j, 'via');
  if (via !== 'PKCSReq' && via !== 'RenewalReq' && via !== 'PKCSReq-renewal')
    throw new PendingStateError(`${PENDING_FILE}: unknown request kind`);
  const neg = j.negotiated as Record<string, unknown> | undefined;
  if (
    typeof neg !== 'object' ||
    neg === null ||
    typeof neg.cipher !== 'string' ||
    typeof neg.digest !== 'string' ||
    typeof neg.post !== 'boolean'
  )
    throw new PendingStateError(`${PENDING_FILE}: negotiated is missing`);
  let key: KeyObject;
  let signerKey: KeyObject;
  let signerDer: Buffer | undefined;
  try {
    key = createPrivateKey(await fs.readFile(join(dir, KEY_FILE), 'utf8'));
    const sk = await fs.readFile(join(dir, SIGNER_KEY_FILE), 'utf8').catch(() => undefined);
    signerKey = sk === undefined ? key : createPrivateKey(sk);
    signerDer = fromPem(field(j, 'signerCert'))[0];
  } catch (e) {
    if (e instanceof PendingStateError) throw e;
    throw new PendingStateError(`the key saved with ${join(dir, PENDING_FILE)} cannot be read`);
  }
  if (!signerDer) throw new PendingStateError(`${PENDING_FILE}: signerCert holds no certificate`);
  const signerCert = parseCertificate(signerDer);
  if (!spki(signerKey).equals(signerCert.spki))
    throw new PendingStateError(`${PENDING_FILE}: the saved signer key does not match its certificate`);
  const transactionId = field(j, 'transactionId');
  if (!/^[\x21-\x7e]{1,128}$/.test(transactionId))
    throw new PendingStateError(`${PENDING_FILE}: transactionId is not printable ASCII`);
  const pending: PendingResult = {
    status: 'pending',
    transactionId,
    negotiated: neg as unknown as PendingResult['negotiated'],
    key,
    signer: { cert: signerCert, key: signerKey },
    issuerRaw: Buffer.from(field(j, 'issuer'), 'base64'),
    subjectRaw: Buffer.from(field(j, 'subject'), 'base64'),
    via,
  };
  return { url: field(j, 'url'), pending, createdAt: field(j, 'createdAt') };
}

/** Removes the saved pending request (if any) from `dir`. */
export async function removePendingState(dir: string): Promise<void> {
  // The JSON first: without it the key files are never taken for a pending request.
  await fs.rm(join(dir, PENDING_FILE), { force: true });
  await fs.rm(join(dir, KEY_FILE), { force: true });
  await fs.rm(join(dir, SIGNER_KEY_FILE), { force: true });
}
