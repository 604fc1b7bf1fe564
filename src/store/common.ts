/**
 * Pieces both adapters share: SAN parsing, search-filter SQL (with `?` placeholders; the
 * PostgreSQL adapter renumbers them), paging limits and row ↔ record mapping. The statements
 * themselves are in statements.ts.
 */
import type {
  CertificateQuery,
  CertificateRecord,
  CertificateStatus,
  IssuedRecord,
  JsonObject,
  NewCertificate,
  RevocationReason,
  TransactionRecord,
  TransactionQuery,
  TransactionState,
} from './types.js';
import { DEFAULT_CA, DEFAULT_PROFILE, normalizeSerial } from './types.js';

export const SAN_TYPES: ReadonlySet<string> = new Set([
  'dns',
  'email',
  'ip',
  'uri',
  'upn',
  'other',
  'dn',
  'rid',
]);

/** Splits `dns:Host.Example` into `{ type: 'dns', value: 'host.example' }` (value lower-cased). */
/** The distinct (type, value) pairs of a certificate's SANs, as stored in certificate_sans. */
export function sanRows(sans: readonly string[]): Array<{ type: string; value: string }> {
  const seen = new Map<string, { type: string; value: string }>();
  for (const entry of sans) {
    const s = parseSan(entry);
    seen.set(`${s.type}\n${s.value}`, s);
  }
  return [...seen.values()];
}

export function parseSan(entry: string): { type: string; value: string } {
  const i = entry.indexOf(':');
  if (i > 0) {
    const type = entry.slice(0, i).toLowerCase();
    if (SAN_TYPES.has(type)) return { type, value: entry.slice(i + 1).toLowerCase() };
  }
  return { type: '', value: entry.toLowerCase() };
}

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 10_000;

export function pageBounds(q: { limit?: number; offset?: number }): { limit: number; offset: number } {
  const limit = Math.min(Math.max(Math.trunc(q.limit ?? DEFAULT_LIMIT), 0), MAX_LIMIT);
  const offset = Math.max(Math.trunc(q.offset ?? 0), 0);
  return { limit, offset };
}

/** Escapes LIKE wildcards; use with `ESCAPE '\'`. */
export function likeContains(s: string): string {
  return '%' + s.replace(/[\\%_]/g, (c) => '\\' + c) + '%';
}

/** Value conversions that differ between the drivers. */
export interface Dialect {
  /** A Date as a parameter (SQLite: ms since the epoch; PostgreSQL: the Date). */
  ts(d: Date): unknown;
  /** A time column's value as a Date. */
  date(v: unknown): Date;
  /** A bigint as a parameter (SQLite: the bigint; PostgreSQL: its decimal string). */
  big(v: bigint): unknown;
  /** Case-insensitive LIKE operator. */
  ilike: string;
}

/** Builds a WHERE clause from optional filters, with `?` parameters in order. */
class Where {
  private readonly parts: string[] = [];
  readonly params: unknown[] = [];
  constructor(private readonly d: Dialect) {}

  /** A condition and its parameters. */
  add(sql: string, ...params: unknown[]): void {
    this.parts.push(sql);
    this.params.push(...params);
  }

  /** `column = value` when the value is given. */
  eq(column: string, value: unknown): void {
    if (value !== undefined) this.add(`${column} = ?`, value);
  }

  /** A case-insensitive substring match when the text is given and not empty. */
  contains(column: string, text: string | undefined): void {
    if (text !== undefined && text !== '')
      this.add(`${column} ${this.d.ilike} ? ESCAPE '\\'`, likeContains(text));
  }

  /** `created_at` in [since, until). */
  created(since: Date | undefined, until: Date | undefined): void {
    if (since !== undefined) this.add('created_at >= ?', this.d.ts(since));
    if (until !== undefined) this.add('created_at < ?', this.d.ts(until));
  }

  get sql(): string {
    return this.parts.length ? this.parts.join(' AND ') : '1=1';
  }
}

/** WHERE clause (without the keyword; `1=1` when empty) and its parameters for a search. */
export function certificateWhere(q: CertificateQuery, d: Dialect): { sql: string; params: unknown[] } {
  const w = new Where(d);
  if (q.serial !== undefined) w.add('serial = ?', normalizeSerial(q.serial));
  w.eq('ca', q.ca);
  w.eq('profile', q.profile);
  w.contains('subject', q.subject);
  w.contains('common_name', q.commonName);
  if (q.san !== undefined && q.san !== '') {
    const san = parseSan(q.san);
    if (san.type)
      w.add(
        '(ca, serial) IN (SELECT ca, serial FROM certificate_sans WHERE value = ? AND type = ?)',
        san.value,
        san.type,
      );
    else w.add('(ca, serial) IN (SELECT ca, serial FROM certificate_sans WHERE value = ?)', san.value);
  }
  w.eq('transaction_id', q.transactionId);
  w.eq('status', q.status);
  w.eq('issuer', q.issuer?.toLowerCase());
  w.eq('key_hash', q.keyHash?.toLowerCase());
  if (q.expiringWithinDays !== undefined) {
    const now = q.now ?? new Date();
    const until = new Date(now.getTime() + q.expiringWithinDays * 86_400_000);
    w.add('not_after >= ? AND not_after <= ?', d.ts(now), d.ts(until));
  }
  w.created(q.since, q.until);
  return { sql: w.sql, params: w.params };
}

/** WHERE clause (`1=1` when empty), parameters and ORDER BY of a transaction listing. */
export function transactionWhere(
  q: TransactionQuery,
  d: Dialect,
): { sql: string; params: unknown[]; order: string } {
  const w = new Where(d);
  w.eq('state', q.state);
  w.contains('subject', q.subject);
  w.eq('ca', q.ca);
  w.eq('profile', q.profile);
  w.created(q.since, q.until);
  const order = q.order === 'newest' ? 'created_at DESC, transaction_id DESC' : 'created_at, transaction_id';
  return { sql: w.sql, params: w.params, order };
}

/** Fills defaults and normalises a certificate for insertion. */
export function prepareCertificate(c: NewCertificate, now: Date): CertificateRecord {
  const status: CertificateStatus = c.status ?? 'valid';
  return {
    ca: c.ca ?? DEFAULT_CA,
    serial: normalizeSerial(c.serial),
    profile: c.profile ?? DEFAULT_PROFILE,
    issuer: c.issuer.toLowerCase(),
    subject: c.subject,
    commonName: c.commonName,
    sans: [...c.sans],
    der: c.der,
    notBefore: c.notBefore,
    notAfter: c.notAfter,
    keyHash: c.keyHash.toLowerCase(),
    transactionId: c.transactionId,
    status,
    revokedAt: status === 'revoked' ? (c.revokedAt ?? now) : null,
    revocationReason: status === 'revoked' ? (c.revocationReason ?? null) : null,
    createdAt: c.createdAt ?? now,
  };
}

/** Column values as both adapters see them (times already converted by `toDate`). */
export interface CertificateRow {
  ca: string;
  serial: string;
  profile: string;
  issuer: string;
  subject: string;
  common_name: string | null;
  sans: string;
  der: Buffer;
  not_before: unknown;
  not_after: unknown;
  key_hash: string;
  transaction_id: string | null;
  status: string;
  revoked_at: unknown;
  revocation_reason: number | null;
  created_at: unknown;
}

export interface TransactionRow {
  transaction_id: string;
  signer_key_hash: string;
  message_type: number;
  state: string;
  csr: Buffer | null;
  subject: string | null;
  requester: string | null;
  created_at: unknown;
  updated_at: unknown;
  expires_at: unknown;
  cert_serial: string | null;
  fail_info: number | null;
  fail_text: string | null;
  meta: string | null;
  ca: string;
  profile: string;
  last_poll_at?: unknown;
}

export type ToDate = (v: unknown) => Date;

function optDate(v: unknown, toDate: ToDate): Date | null {
  return v === null || v === undefined ? null : toDate(v);
}

export function certificateFromRow(r: CertificateRow, toDate: ToDate): CertificateRecord {
  return {
    ca: r.ca,
    serial: r.serial,
    profile: r.profile,
    issuer: r.issuer,
    subject: r.subject,
    commonName: r.common_name,
    sans: JSON.parse(r.sans) as string[],
    der: r.der,
    notBefore: toDate(r.not_before),
    notAfter: toDate(r.not_after),
    keyHash: r.key_hash,
    transactionId: r.transaction_id,
    status: r.status as CertificateStatus,
    revokedAt: optDate(r.revoked_at, toDate),
    revocationReason: r.revocation_reason as RevocationReason | null,
    createdAt: toDate(r.created_at),
  };
}

export function transactionFromRow(r: TransactionRow, toDate: ToDate): TransactionRecord {
  return {
    transactionId: r.transaction_id,
    signerKeyHash: r.signer_key_hash,
    messageType: r.message_type,
    state: r.state as TransactionState,
    csr: r.csr,
    subject: r.subject,
    requester: r.requester,
    createdAt: toDate(r.created_at),
    updatedAt: toDate(r.updated_at),
    expiresAt: optDate(r.expires_at, toDate),
    certSerial: r.cert_serial,
    failInfo: r.fail_info,
    failText: r.fail_text,
    meta: r.meta === null ? null : (JSON.parse(r.meta) as JsonObject),
    ca: r.ca,
    profile: r.profile,
    lastPollAt: optDate(r.last_poll_at ?? null, toDate),
  };
}

/** Invariant queries run by integrityCheck in both dialects; each returns offending ids. */
export const INVARIANTS: ReadonlyArray<{ what: string; sql: string }> = [
  {
    what: 'issued transaction without its certificate',
    sql: `SELECT t.transaction_id AS id FROM transactions t
          LEFT JOIN certificates c ON c.ca = t.ca AND c.serial = t.cert_serial
          WHERE t.state = 'issued' AND c.serial IS NULL LIMIT 20`,
  },
  {
    what: 'certificate whose transaction is not issued with it',
    sql: `SELECT c.serial AS id FROM certificates c
          JOIN transactions t ON t.transaction_id = c.transaction_id
          WHERE t.state <> 'issued' OR t.cert_serial IS NULL OR t.cert_serial <> c.serial OR t.ca <> c.ca
          LIMIT 20`,
  },
  {
    what: 'duplicate serial in one CA',
    sql: `SELECT serial AS id FROM certificates GROUP BY ca, serial HAVING count(*) > 1 LIMIT 20`,
  },
  {
    what: 'more than one certificate for a transaction',
    sql: `SELECT transaction_id AS id FROM certificates WHERE transaction_id IS NOT NULL
          GROUP BY transaction_id HAVING count(*) > 1 LIMIT 20`,
  },
  {
    what: 'revoked certificate without revocation time',
    sql: `SELECT serial AS id FROM certificates WHERE status = 'revoked' AND revoked_at IS NULL LIMIT 20`,
  },
];

/** Indexes whose absence would break a guarantee; integrityCheck verifies they exist. */
export const REQUIRED_UNIQUE_INDEXES = ['certificates_transaction_id_key'] as const;

/** Why `recordIssued`'s `open` cannot be used (undefined: it can, or there is none). */
export function badOpen(args: IssuedRecord): TypeError | undefined {
  const open = args.open;
  if (!open) return undefined;
  if (open.transactionId !== args.transactionId)
    return new TypeError('recordIssued: open is for another transactionID');
  if ((open.state as string) !== 'approved') return new TypeError('recordIssued: open must be approved');
  return undefined;
}
