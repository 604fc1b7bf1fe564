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
import { nameText } from '../pkix/name.js';
import { parseCsr } from '../pkix/csr.js';
import {
  normalizeSerial,
  type CertificateQuery,
  type CertificateRecord,
  type CrlRecord,
  type RevocationReason,
  type Store,
  type TransactionRecord,
  type TransactionState,
} from '../store/index.js';
import { auditText, recordAudit } from './audit.js';
import { sanText } from './names.js';
import { recordDecision } from './retry-after.js';

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
/** Page size of a listing when none is given. */
export const DEFAULT_PAGE_LIMIT = 100;
/** Hard maximum page size of a listing: a larger `limit` is refused (`invalid`). */
export const MAX_PAGE_LIMIT = 500;
/** Largest position a cursor may point at. */
const MAX_CURSOR = 10_000_000;

/**
 * One page of a listing, the same shape in the CLI (`--json`) and the admin API: the total
 * number of matches, this page's items, and `nextCursor` when more follow (pass it back as
 * `cursor` for the next page). A cursor is opaque text.
 */
export interface ListPage<T> {
  total: number;
  items: T[];
  nextCursor?: string;
}

/** Paging input of a listing: `limit` (1..MAX_PAGE_LIMIT, default 100) and a `cursor`. */
export interface Paging {
  limit?: number;
  cursor?: string;
}

function pageOf(p: Paging): { limit: number; offset: number } {
  const limit = p.limit ?? DEFAULT_PAGE_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_LIMIT)
    throw new OperatorError('invalid', `limit must be a whole number from 1 to ${MAX_PAGE_LIMIT}`);
  let offset = 0;
  if (p.cursor !== undefined) {
    const m = /^o(\d{1,8})$/.exec(p.cursor);
    offset = m ? Number(m[1]) : NaN;
    if (!(offset >= 0 && offset <= MAX_CURSOR)) throw new OperatorError('invalid', 'cursor is not valid');
  }
  return { limit, offset };
}

function listPage<T>(items: T[], total: number, offset: number): ListPage<T> {
  const next = offset + items.length;
  return next < total && items.length > 0 ? { total, items, nextCursor: `o${next}` } : { total, items };
}

/** A time filter (`since`/`until`): an ISO 8601 date or date-time, or `invalid`. */
export function parseTime(name: string, text: string): Date {
  const d = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(text)
    ? new Date(text)
    : new Date(NaN);
  if (Number.isNaN(d.getTime()))
    throw new OperatorError('invalid', `${name} must be an ISO 8601 date or date-time (2026-01-31T12:00Z)`);
  return d;
}

/** What a CA or profile name filter may be (names are never wildcards). */
const NAME_FILTER = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** A CA or profile name filter, or an `invalid` OperatorError. */
function nameFilter(name: string, v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (!NAME_FILTER.test(v))
    throw new OperatorError(
      'invalid',
      `${name} must be a name: letters, digits, ".", "-" or "_" (at most 64)`,
    );
  return v;
}

function textFilter(name: string, v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (v.length === 0 || v.length > MAX_FILTER_LENGTH)
    throw new OperatorError('invalid', `${name} must be 1 to ${MAX_FILTER_LENGTH} characters`);
  return v;
}

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
  /** The CA the request was sent to (`default`: the data directory's default CA). */
  ca: string;
  /** The profile the request was sent to. */
  profile: string;
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
  /** The device's latest poll while pending (null before its first). */
  lastPollAt: string | null;
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
      subject ??= nameText(csr.subjectRaw);
    } catch {
      /* shown without CSR details */
    }
  }
  return {
    transactionId: t.transactionId,
    state: t.state,
    ca: t.ca,
    profile: t.profile,
    subject,
    sans,
    key: keyType !== null ? `${keyType} ${keyBits ?? '?'}` : null,
    keyType,
    keyBits,
    challenge: verdictOf(t),
    requester: t.requester,
    createdAt: t.createdAt.toISOString(),
    lastPollAt: t.lastPollAt?.toISOString() ?? null,
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

/** Filters of the request listing (`scepter pending list`, `GET /admin/pending`). */
export interface RequestFilters extends Paging {
  /** Only this state (default `pending`); ignored with `all`. */
  state?: TransactionState;
  /** Every state. */
  all?: boolean;
  /** Case-insensitive substring of the subject (CN included). */
  subject?: string;
  /** Only requests sent to this profile / this CA. */
  profile?: string;
  ca?: string;
  /** Created at or after / before (ISO 8601 text). */
  since?: string;
  until?: string;
  /** `newest` first (default) or `oldest` first. */
  order?: 'newest' | 'oldest';
}

/**
 * Requests matching the filters as summaries (never the CSR; `getRequest` shows one), newest
 * first by default so a flood of requests does not bury the real ones. Overdue pending
 * requests become `expired` first, so nobody approves one.
 */
export async function listRequests(store: Store, f: RequestFilters): Promise<ListPage<RequestView>> {
  const { limit, offset } = pageOf(f);
  const state = f.all ? undefined : (f.state ?? 'pending');
  const subject = textFilter('subject', f.subject);
  const profile = nameFilter('profile', f.profile);
  const ca = nameFilter('ca', f.ca);
  const since = f.since !== undefined ? parseTime('since', f.since) : undefined;
  const until = f.until !== undefined ? parseTime('until', f.until) : undefined;
  await store.expirePending(new Date());
  const page = await store.listTransactions({
    order: f.order ?? 'newest',
    limit,
    offset,
    ...(state ? { state } : {}),
    ...(subject !== undefined ? { subject } : {}),
    ...(profile !== undefined ? { profile } : {}),
    ...(ca !== undefined ? { ca } : {}),
    ...(since ? { since } : {}),
    ...(until ? { until } : {}),
  });
  return listPage(page.items.map(requestView), page.total, offset);
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
  ctx: { store: Store; actor: string },
  transactionId: string,
  decision: 'approve' | 'reject',
  reason?: string,
): Promise<RequestView> {
  const { store } = ctx;
  if (reason !== undefined && decision === 'approve')
    throw new OperatorError('invalid', 'a reason goes with reject only');
  if (reason !== undefined) checkReason(reason);
  const t = await getRequest(store, transactionId);
  const ok = await store.decide(transactionId, decision === 'approve' ? 'approved' : 'rejected', reason);
  if (!ok) {
    const now = (await store.getTransaction(transactionId)) ?? t;
    throw new OperatorError('conflict', `${transactionId} is ${now.state}, not pending`);
  }
  await recordAudit(
    store,
    ctx.actor,
    decision === 'approve' ? 'request.approved' : 'request.rejected',
    transactionId,
    {
      subject: t.subject !== null ? auditText(t.subject) : undefined,
      reason,
      ca: t.ca,
      profile: t.profile,
    },
  );
  // Someone works on the queue: PENDING hints go back to --retry-after (src/ra/retry-after.ts).
  await recordDecision(store, new Date());
  const after = await store.getTransaction(transactionId);
  return requestView(after ?? t);
}

// ---------------------------------------------------------------- certificates

/** What an operator sees of a certificate. */
export interface CertificateView {
  serial: string;
  /** The issuing CA's name (`default`: the data directory's default CA). */
  ca: string;
  /** The profile it was issued under. */
  profile: string;
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
    ca: c.ca,
    profile: c.profile,
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
export interface CertificateFilters extends Paging {
  subject?: string;
  cn?: string;
  san?: string;
  serial?: string;
  status?: string;
  /** Only certificates of this CA / issued under this profile. */
  ca?: string;
  profile?: string;
  expiringDays?: number;
  /** Issued at or after / before (ISO 8601 text). */
  since?: string;
  until?: string;
}

/** Validates the filters into a store query (`invalid` OperatorError on bad values). */
export function certificateQuery(f: CertificateFilters): CertificateQuery {
  const { limit, offset } = pageOf(f);
  const q: CertificateQuery = { limit, offset };
  const subject = textFilter('subject', f.subject);
  if (subject !== undefined) q.subject = subject;
  const cn = textFilter('cn', f.cn);
  if (cn !== undefined) q.commonName = cn;
  const san = textFilter('san', f.san);
  if (san !== undefined) q.san = san;
  if (f.serial !== undefined) q.serial = parseSerial(f.serial);
  const ca = nameFilter('ca', f.ca);
  if (ca !== undefined) q.ca = ca;
  const profile = nameFilter('profile', f.profile);
  if (profile !== undefined) q.profile = profile;
  if (f.status !== undefined) {
    if (f.status !== 'valid' && f.status !== 'revoked')
      throw new OperatorError('invalid', 'status must be valid or revoked');
    q.status = f.status;
  }
  if (f.expiringDays !== undefined) q.expiringWithinDays = f.expiringDays;
  if (f.since !== undefined) q.since = parseTime('since', f.since);
  if (f.until !== undefined) q.until = parseTime('until', f.until);
  return q;
}

/** Certificates matching the filters, newest first, as views. */
export async function searchCertificates(
  store: Store,
  f: CertificateFilters,
): Promise<ListPage<CertificateView>> {
  const q = certificateQuery(f);
  const page = await store.searchCertificates(q);
  return listPage(page.items.map(certificateView), page.total, q.offset ?? 0);
}

/**
 * One certificate by serial (any input form) and, when given, the name of its CA. Without a CA
 * the serial must be unambiguous: two CAs may have issued the same serial, and then the caller
 * must say which (`invalid`). `not-found` when unknown.
 */
export async function getCertificate(
  store: Store,
  serialInput: string,
  caName?: string,
): Promise<CertificateRecord> {
  const serial = parseSerial(serialInput);
  const ca = nameFilter('ca', caName);
  if (ca !== undefined) {
    const c = await store.getCertificate(serial, ca);
    if (!c) throw new OperatorError('not-found', `no certificate with serial ${serial} in CA ${ca}`);
    return c;
  }
  const found = await store.searchCertificates({ serial, limit: 20 });
  const only = found.items[0];
  if (!only) throw new OperatorError('not-found', `no certificate with serial ${serial}`);
  if (found.total > 1) {
    const names = found.items.map((c) => c.ca).join(', ');
    throw new OperatorError(
      'invalid',
      `serial ${serial} was issued by several CAs (${names}): name the CA (--ca NAME, ?ca=NAME)`,
    );
  }
  return only;
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

/**
 * The CRL publisher of each CA a revocation may need, by CA name (undefined: not served here).
 * A single publisher stands for the CAs it holds (matched by the certificate's issuer).
 */
export type CrlPublishers = CrlPublisher | ((caName: string) => CrlPublisher | undefined);

export interface RevokeResult {
  /** False when it was revoked already (the first reason and time stay). */
  changed: boolean;
  /** The certificate after the call. */
  cert: CertificateRecord;
  /** The CRL published right after (also when it was revoked already, to repair a lost one). */
  crl: CrlRecord;
}

/**
 * Revokes a certificate (of CA `caName`; see getCertificate for an ambiguous serial) and, at
 * once, signs and stores a new CRL for its issuer (current or retired CA of that CA), which
 * every server process serves from the store immediately. `not-found` for an unknown serial,
 * `conflict` when its CA or issuer is not one of the publishers'.
 */
export async function revokeCertificate(
  ctx: { store: Store; crls: CrlPublishers; actor: string },
  serialInput: string,
  reason: RevocationReason,
  at: Date = new Date(),
  caName?: string,
): Promise<RevokeResult> {
  const { store } = ctx;
  const cert = await getCertificate(store, serialInput, caName);
  const crls = typeof ctx.crls === 'function' ? ctx.crls(cert.ca) : ctx.crls;
  if (!crls) throw new OperatorError('conflict', `the CA ${cert.ca} of ${cert.serial} is not served here`);
  const issuer = crls.cas.byFingerprint(cert.issuer);
  if (!issuer)
    throw new OperatorError(
      'conflict',
      `the issuer of ${cert.serial} (${cert.issuer}) is not one of our CAs`,
    );
  const changed = await store.revoke(cert.serial, reason, at, cert.ca);
  if (changed)
    await recordAudit(store, ctx.actor, 'certificate.revoked', cert.serial, {
      ca: cert.ca,
      subject: auditText(cert.subject),
      reason: revocationReasonName(reason),
      issuer: cert.issuer,
    });
  const crl = await crls.regenerate(issuer.cert.fingerprint);
  const now = (await store.getCertificate(cert.serial, cert.ca)) ?? cert;
  return { changed, cert: now, crl };
}
