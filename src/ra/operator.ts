/**
 * Operator actions on the store — the ONE implementation behind both the CLI (`scepter pending`,
 * `scepter certs`, `scepter revoke`) and the HTTP admin API (src/server/admin-routes.ts):
 * listing and deciding pending requests, searching certificates, revoking with an immediate
 * CRL. Callers parse their own syntax (argv or JSON/query) into plain values; these functions
 * validate the values, act, and report failures as an `OperatorError` whose `kind` each caller
 * maps (CLI: usage error / exit 1; HTTP: 400 / 404 / 409).
 */
import {
  parseRevocationReason,
  REVOCATION_REASONS,
  revocationReasonName,
  type CrlPublisher,
} from '../ca/crl.js';
import { nameToString } from '../pkix/name.js';
import { parseCsr } from '../pkix/csr.js';
import {
  normalizeSerial,
  type CertificateQuery,
  type CertificateRecord,
  type CrlRecord,
  type Page,
  type RevocationReason,
  type Store,
  type TransactionRecord,
  type TransactionState,
} from '../store/index.js';
import { sanText } from './issuance.js';

/** `invalid`: bad input; `not-found`: no such request/certificate; `conflict`: wrong state. */
export type OperatorErrorKind = 'invalid' | 'not-found' | 'conflict';

export class OperatorError extends Error {
  constructor(
    readonly kind: OperatorErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'OperatorError';
  }
}

/** Longest operator rejection reason (it becomes the device's failInfoText). */
export const MAX_REASON_LENGTH = 512;
/** Longest text filter (subject, CN, SAN). */
export const MAX_FILTER_LENGTH = 256;
/** Longest serial accepted as input (20 octets with colons is 59). */
export const MAX_SERIAL_INPUT_LENGTH = 128;

const TRANSACTION_STATES: readonly TransactionState[] = [
  'pending',
  'approved',
  'issued',
  'rejected',
  'failed',
  'expired',
];

// ---------------------------------------------------------------- pending requests

/** How the request's challenge was judged (never the value): `one-time` is a redeemed, bound one. */
export type ChallengeVerdictView = 'valid' | 'invalid' | 'absent' | 'one-time';

/** What an operator sees of a request. */
export interface RequestView {
  transactionId: string;
  state: TransactionState;
  subject: string | null;
  sans: string[];
  /** `rsa 2048`-style summary of keyType and keyBits. */
  key: string | null;
  keyType: string | null;
  keyBits: number | null;
  challenge: ChallengeVerdictView | null;
  /** Remote address of the device. */
  requester: string | null;
  createdAt: string;
  expiresAt: string | null;
  certSerial: string | null;
  failText: string | null;
}

function verdictOf(t: TransactionRecord): ChallengeVerdictView | null {
  const m = t.meta;
  if (!m) return null;
  if (m.challengeKind === 'one-time') return 'one-time';
  const c = m.challenge;
  return c === 'valid' || c === 'invalid' || c === 'absent' ? c : null;
}

export function requestView(t: TransactionRecord): RequestView {
  let sans = Array.isArray(t.meta?.sans) ? t.meta.sans.map(String) : [];
  let keyType = typeof t.meta?.keyType === 'string' ? t.meta.keyType : null;
  let keyBits = typeof t.meta?.keyBits === 'number' ? t.meta.keyBits : null;
  let subject = t.subject;
  if (t.csr && (keyType === null || subject === null)) {
    try {
      const csr = parseCsr(t.csr);
      keyType = csr.keyType;
      keyBits = csr.keyBits;
      sans = csr.subjectAltNames.map(sanText);
      subject ??= nameToString(csr.subjectRaw);
    } catch {
      /* shown without CSR details */
    }
  }
  return {
    transactionId: t.transactionId,
    state: t.state,
    subject,
    sans,
    key: keyType !== null ? `${keyType} ${keyBits ?? '?'}` : null,
    keyType,
    keyBits,
    challenge: verdictOf(t),
    requester: t.requester,
    createdAt: t.createdAt.toISOString(),
    expiresAt: t.expiresAt?.toISOString() ?? null,
    certSerial: t.certSerial,
    failText: t.failText,
  };
}

/** A state name, or an `invalid` OperatorError. */
export function parseTransactionState(s: string): TransactionState {
  const st = TRANSACTION_STATES.find((x) => x === s);
  if (!st) throw new OperatorError('invalid', `state must be one of ${TRANSACTION_STATES.join(', ')}`);
  return st;
}

/**
 * Requests in `state` (default pending; undefined in `opts.state` with `all`: every state),
 * oldest first. Overdue pending requests become `expired` first, so nobody approves one.
 */
export async function listRequests(
  store: Store,
  o: { state?: TransactionState; all?: boolean; limit: number; offset?: number },
): Promise<Page<RequestView>> {
  await store.expirePending(new Date());
  const state = o.all ? undefined : (o.state ?? 'pending');
  const page = await store.listTransactions({
    ...(state ? { state } : {}),
    limit: o.limit,
    ...(o.offset ? { offset: o.offset } : {}),
  });
  return { total: page.total, items: page.items.map(requestView) };
}

/** One request (any state); `not-found` when unknown. */
export async function getRequest(store: Store, transactionId: string): Promise<TransactionRecord> {
  await store.expirePending(new Date());
  const t = await store.getTransaction(transactionId);
  if (!t)
    throw new OperatorError('not-found', `no request with transactionID ${JSON.stringify(transactionId)}`);
  return t;
}

/** Checks a rejection reason: at most MAX_REASON_LENGTH printable characters, no line breaks. */
export function checkReason(reason: string): string {
  if (reason.length > MAX_REASON_LENGTH)
    throw new OperatorError('invalid', `the reason must be at most ${MAX_REASON_LENGTH} characters`);
  if (/[\u0000-\u001f\u007f]/.test(reason))
    throw new OperatorError('invalid', 'the reason must be one line of printable text');
  return reason;
}

/**
 * Approves or rejects a pending request (same semantics everywhere: only `pending` changes;
 * the device's next CertPoll or resend gets the certificate or FAILURE badRequest with the
 * reason). `not-found` when unknown, `conflict` when not pending (expired ones included).
 */
export async function decideRequest(
  store: Store,
  transactionId: string,
  decision: 'approve' | 'reject',
  reason?: string,
): Promise<RequestView> {
  if (reason !== undefined && decision === 'approve')
    throw new OperatorError('invalid', 'a reason goes with reject only');
  if (reason !== undefined) checkReason(reason);
  const t = await getRequest(store, transactionId);
  const ok = await store.decide(transactionId, decision === 'approve' ? 'approved' : 'rejected', reason);
  if (!ok) {
    const now = (await store.getTransaction(transactionId)) ?? t;
    throw new OperatorError('conflict', `${transactionId} is ${now.state}, not pending`);
  }
  const after = await store.getTransaction(transactionId);
  return requestView(after ?? t);
}

// ---------------------------------------------------------------- certificates

/** What an operator sees of a certificate. */
export interface CertificateView {
  serial: string;
  subject: string;
  commonName: string | null;
  sans: string[];
  status: CertificateRecord['status'];
  notBefore: string;
  notAfter: string;
  revokedAt: string | null;
  revocationReason: string | null;
  issuer: string;
  keyHash: string;
  transactionId: string | null;
}

export function certificateView(c: CertificateRecord): CertificateView {
  return {
    serial: c.serial,
    subject: c.subject,
    commonName: c.commonName,
    sans: c.sans,
    status: c.status,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    revokedAt: c.revokedAt?.toISOString() ?? null,
    revocationReason: c.status === 'revoked' ? revocationReasonName(c.revocationReason) : null,
    issuer: c.issuer,
    keyHash: c.keyHash,
    transactionId: c.transactionId,
  };
}

/** The canonical serial, or an `invalid` OperatorError. */
export function parseSerial(s: string): string {
  if (s.length === 0 || s.length > MAX_SERIAL_INPUT_LENGTH)
    throw new OperatorError('invalid', 'the serial must be hexadecimal');
  try {
    return normalizeSerial(s);
  } catch {
    throw new OperatorError('invalid', 'the serial must be hexadecimal');
  }
}

/** Search filters as an operator gives them (`scepter certs list`, `GET /admin/certificates`). */
export interface CertificateFilters {
  subject?: string;
  cn?: string;
  san?: string;
  serial?: string;
  status?: string;
  expiringDays?: number;
  limit: number;
  offset?: number;
}

/** Validates the filters into a store query (`invalid` OperatorError on bad values). */
export function certificateQuery(f: CertificateFilters): CertificateQuery {
  const q: CertificateQuery = { limit: f.limit };
  if (f.offset) q.offset = f.offset;
  const text = (name: string, v: string | undefined): string | undefined => {
    if (v === undefined) return undefined;
    if (v.length === 0 || v.length > MAX_FILTER_LENGTH)
      throw new OperatorError('invalid', `${name} must be 1 to ${MAX_FILTER_LENGTH} characters`);
    return v;
  };
  const subject = text('subject', f.subject);
  if (subject !== undefined) q.subject = subject;
  const cn = text('cn', f.cn);
  if (cn !== undefined) q.commonName = cn;
  const san = text('san', f.san);
  if (san !== undefined) q.san = san;
  if (f.serial !== undefined) q.serial = parseSerial(f.serial);
  if (f.status !== undefined) {
    if (f.status !== 'valid' && f.status !== 'revoked')
      throw new OperatorError('invalid', 'status must be valid or revoked');
    q.status = f.status;
  }
  if (f.expiringDays !== undefined) q.expiringWithinDays = f.expiringDays;
  return q;
}

/** Certificates matching the filters, newest first, views plus the total. */
export async function searchCertificates(
  store: Store,
  f: CertificateFilters,
): Promise<Page<CertificateView>> {
  const page = await store.searchCertificates(certificateQuery(f));
  return { total: page.total, items: page.items.map(certificateView) };
}

/** One certificate by serial (any input form); `not-found` when unknown. */
export async function getCertificate(store: Store, serialInput: string): Promise<CertificateRecord> {
  const serial = parseSerial(serialInput);
  const c = await store.getCertificate(serial);
  if (!c) throw new OperatorError('not-found', `no certificate with serial ${serial}`);
  return c;
}

// ---------------------------------------------------------------- revocation

/** A reason name (`keyCompromise`) or number; absent → unspecified. `invalid` when unknown. */
export function parseReason(text: string | undefined): RevocationReason {
  if (text === undefined) return 0;
  const r = text.length <= 64 ? parseRevocationReason(text) : undefined;
  if (r === undefined)
    throw new OperatorError(
      'invalid',
      `unknown revocation reason; use one of ${Object.keys(REVOCATION_REASONS).join(', ')}`,
    );
  return r;
}

export interface RevokeResult {
  /** False when it was revoked already (the first reason and time stay). */
  changed: boolean;
  /** The certificate after the call. */
  cert: CertificateRecord;
  /** The CRL published right after (also when it was revoked already, to repair a lost one). */
  crl: CrlRecord;
}

/**
 * Revokes a certificate and, at once, signs and stores a new CRL for its issuer (current or
 * retired CA), which every server process serves from the store immediately. `not-found` for an
 * unknown serial, `conflict` when its issuer is not one of the publisher's CAs.
 */
export async function revokeCertificate(
  ctx: { store: Store; crls: CrlPublisher },
  serialInput: string,
  reason: RevocationReason,
  at: Date = new Date(),
): Promise<RevokeResult> {
  const { store, crls } = ctx;
  const cert = await getCertificate(store, serialInput);
  const issuer = crls.cas.byFingerprint(cert.issuer);
  if (!issuer)
    throw new OperatorError(
      'conflict',
      `the issuer of ${cert.serial} (${cert.issuer}) is not one of our CAs`,
    );
  const changed = await store.revoke(cert.serial, reason, at);
  const crl = await crls.regenerate(issuer.cert.fingerprint);
  const now = (await store.getCertificate(cert.serial)) ?? cert;
  return { changed, cert: now, crl };
}
