/**
 * The one Store interface every caller (ca, ra, server, cli) codes against. Two adapters
 * implement it: SQLite (embedded default, `src/store/sqlite.ts`) and PostgreSQL
 * (`src/store/postgres.ts`); `openStore(url)` in `src/store/index.ts` picks one.
 *
 * Conventions: all methods are async; records are plain objects with `Date` and `Buffer`;
 * serials are lower-case hex strings of whole octets without redundant leading zero octets
 * (see `normalizeSerial`, same as pkix `serialToHex`);
 * hashes and fingerprints are lower-case SHA-256 hex. Every write is durable (committed with
 * fsync / synchronous_commit) before its promise resolves.
 */

export type CertificateStatus = 'valid' | 'revoked';

/**
 * The CA name recorded when none is given: the data directory's default CA (`DIR/ca/`, the
 * same name src/ca/ca-location.ts gives it). Serials are unique per CA name.
 */
export const DEFAULT_CA = 'default';
/** The profile name recorded when none is given. */
export const DEFAULT_PROFILE = 'default';

/**
 * RFC 5280 §5.3.1 CRLReason codes (7 is unused).
 * 0 unspecified, 1 keyCompromise, 2 cACompromise, 3 affiliationChanged, 4 superseded,
 * 5 cessationOfOperation, 6 certificateHold, 8 removeFromCRL, 9 privilegeWithdrawn,
 * 10 aACompromise.
 */
export type RevocationReason = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 8 | 9 | 10;

/** A stored certificate. */
export interface CertificateRecord {
  /** Name of the issuing CA (`default`: the data directory's default CA). Key: (ca, serial). */
  ca: string;
  /** Lower-case hex of whole octets, no redundant leading zero octets (unique per CA). */
  serial: string;
  /** The profile the certificate was issued under (`default` when there are no profiles). */
  profile: string;
  /** SHA-256 fingerprint (hex) of the issuing CA certificate; survives CA rollover. */
  issuer: string;
  /** Subject DN in string form (e.g. `CN=device-1,O=Example`). Searchable by substring. */
  subject: string;
  commonName: string | null;
  /**
   * Subject alternative names, each `type:value` with a lower-case type:
   * `dns:`, `email:`, `ip:`, `uri:`, `upn:`, or `other:` (e.g. `dns:host.example.com`).
   * Searchable by exact value (see `CertificateQuery.san`).
   */
  sans: string[];
  der: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** SHA-256 hex of the SubjectPublicKeyInfo DER. */
  keyHash: string;
  /** SCEP transactionID this certificate answered; null for certificates issued otherwise. */
  transactionId: string | null;
  status: CertificateStatus;
  revokedAt: Date | null;
  revocationReason: RevocationReason | null;
  createdAt: Date;
}

/** What callers pass to insert a certificate; status defaults to 'valid', createdAt to now. */
export type NewCertificate = Omit<
  CertificateRecord,
  'ca' | 'profile' | 'status' | 'revokedAt' | 'revocationReason' | 'createdAt'
> &
  Partial<
    Pick<CertificateRecord, 'ca' | 'profile' | 'status' | 'revokedAt' | 'revocationReason' | 'createdAt'>
  >;

/** Certificate search filters; all given filters must match (AND). */
export interface CertificateQuery {
  /** Exact serial (normalised first, so `00AB` finds `ab`); several CAs may have it. */
  serial?: string;
  /** Issuing CA name. */
  ca?: string;
  /** Profile name. */
  profile?: string;
  /** Case-insensitive substring of the subject DN. */
  subject?: string;
  /** Case-insensitive substring of the common name. */
  commonName?: string;
  /**
   * Exact SAN match, case-insensitive: either `type:value` (`dns:host.example.com`) or just the
   * value (`host.example.com`, any type).
   */
  san?: string;
  transactionId?: string;
  status?: CertificateStatus;
  /** Issuer CA fingerprint. */
  issuer?: string;
  keyHash?: string;
  /** notAfter within [now, now + N days]. */
  expiringWithinDays?: number;
  /** Reference time for `expiringWithinDays` (default: now). */
  now?: Date;
  /** Recorded (issued) at or after this time. */
  since?: Date;
  /** Recorded (issued) before this time. */
  until?: Date;
  /** Default 100, max 10000. */
  limit?: number;
  offset?: number;
}

/** One page of results plus the total number of matches ignoring limit/offset. */
export interface Page<T> {
  items: T[];
  total: number;
}

/**
 * SCEP transaction states. `pending` waits for an operator; `approved` may be issued (auto
 * approval begins in `approved`); `issued` carries certSerial; `rejected`/`failed` carry
 * failInfo/failText; `expired` is a pending one nobody decided in time.
 */
export type TransactionState = 'pending' | 'approved' | 'issued' | 'rejected' | 'failed' | 'expired';

/** JSON-serialisable extra data attached to a record. */
export type JsonObject = { [key: string]: JsonValue };
export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;

export interface TransactionRecord {
  /** SCEP transactionID (natural key). */
  transactionId: string;
  /** SHA-256 hex of the request signer's SPKI; a resend must come from the same key. */
  signerKeyHash: string;
  /** SCEP messageType of the request that began it (19 PKCSReq, 17 RenewalReq, ...). */
  messageType: number;
  state: TransactionState;
  /** The PKCS#10 request DER (kept for manual approval and re-issuance). */
  csr: Buffer | null;
  subject: string | null;
  /** Who asked (remote address, maybe user agent). */
  requester: string | null;
  createdAt: Date;
  updatedAt: Date;
  /** When a pending transaction expires (null: never). */
  expiresAt: Date | null;
  /** Set once issued. */
  certSerial: string | null;
  /** SCEP failInfo number when rejected/failed (the RA maps an operator rejection to badRequest). */
  failInfo: number | null;
  failText: string | null;
  /** Free-form extra data for the RA (renewal signer serial, ...). */
  meta: JsonObject | null;
  /** Name of the CA the request was sent to (its certificate, once issued: (ca, certSerial)). */
  ca: string;
  /** The profile the request was sent to. */
  profile: string;
  /** The device's latest poll (CertPoll or resent PKCSReq) while pending; null before one. */
  lastPollAt: Date | null;
}

/** What `beginTransaction` takes; timestamps default to now. `state` may not be 'issued'. */
export interface NewTransaction {
  transactionId: string;
  signerKeyHash: string;
  messageType: number;
  state: Exclude<TransactionState, 'issued'>;
  csr?: Buffer | null;
  subject?: string | null;
  requester?: string | null;
  expiresAt?: Date | null;
  failInfo?: number | null;
  failText?: string | null;
  meta?: JsonObject | null;
  createdAt?: Date;
  /** Default `default`. */
  ca?: string;
  /** Default `default`. */
  profile?: string;
}

/** What `recordIssued` takes. */
export interface IssuedRecord {
  transactionId: string;
  cert: NewCertificate;
  audit?: NewAuditEntry;
  /** Open the transaction in the same write (a new request issued at once). */
  open?: NewTransaction & { state: 'approved' };
}

export type BeginResult =
  { created: true; record: TransactionRecord } | { created: false; existing: TransactionRecord };

export interface TransactionQuery {
  state?: TransactionState;
  /** Case-insensitive substring of the subject. */
  subject?: string;
  /** CA name. */
  ca?: string;
  /** Profile name. */
  profile?: string;
  /** Created at or after this time. */
  since?: Date;
  /** Created before this time. */
  until?: Date;
  /** By creation time: `oldest` first (default) or `newest` first. */
  order?: 'oldest' | 'newest';
  /** Default 100, max 10000. */
  limit?: number;
  offset?: number;
}

export interface RevokedEntry {
  serial: string;
  revokedAt: Date;
  reason: RevocationReason | null;
}

export interface CrlRecord {
  issuer: string;
  crlNumber: bigint;
  der: Buffer;
  thisUpdate: Date;
  nextUpdate: Date;
}

/**
 * One record for the audit trail (src/store/audit-chain.ts). Never a secret: no challenge, no
 * token, no key material.
 */
export interface NewAuditEntry {
  /** Who: an admin token name, `cli:<os user>`, `device`, `system`. */
  actor: string;
  /** What: `enroll.issued`, `enroll.refused`, `request.approved`, `certificate.revoked`, … */
  action: string;
  /** What it concerns: a transactionID, a serial, a CA fingerprint … */
  target?: string | null;
  /** Further facts (reason, failInfo, source address, profile …). */
  details?: JsonObject | null;
  /** Default: now. */
  at?: Date;
}

/** A stored audit row as the chain sees it: `details` as its canonical JSON text. */
export interface AuditRow {
  /** 1, 2, 3, … without gaps. */
  seq: number;
  at: Date;
  actor: string;
  action: string;
  target: string | null;
  details: string | null;
  /** The hash of row seq − 1 (64 zeros for row 1). */
  prevHash: string;
  /** SHA-256 hex over prevHash and the row's canonical content. */
  hash: string;
}

/** An audit record as shown to operators (`details` parsed). */
export interface AuditRecord extends Omit<AuditRow, 'details'> {
  details: JsonObject | null;
}

export interface AuditQuery {
  /** Exact action, or a prefix ending in `.` (`enroll.` matches `enroll.issued`, …). */
  action?: string;
  /** At or after this time. */
  since?: Date;
  /** Only rows with seq below this (the previous page's last seq). */
  beforeSeq?: number;
  /** Default 100, max 10000. Newest first. */
  limit?: number;
}

export interface IntegrityReport {
  ok: boolean;
  problems: string[];
}

/** Counters for metrics: how many write operations shared how many commits. */
export interface StoreStats {
  writes: number;
  commits: number;
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres';

  // ---- certificates ----
  /** The certificate of CA `ca` (default `default`) with this serial (normalised first), or null. */
  getCertificate(serial: string, ca?: string): Promise<CertificateRecord | null>;
  /** Certificates matching all filters, newest first (createdAt desc, serial). */
  searchCertificates(query: CertificateQuery): Promise<Page<CertificateRecord>>;
  /**
   * Inserts a certificate that belongs to no SCEP transaction (CA/RA certs, imports).
   * Throws SerialConflictError if its CA already has the serial.
   */
  insertCertificate(cert: NewCertificate): Promise<void>;
  /**
   * Fast pre-fill (benchmarks, imports): one database transaction, prepared/multi-row inserts.
   * All or nothing; a duplicate serial throws SerialConflictError. Returns rows inserted.
   */
  bulkInsertCertificates(certs: readonly NewCertificate[]): Promise<number>;
  /**
   * Marks the certificate of CA `ca` (default `default`) revoked. Idempotent: returns false
   * when it is unknown or already revoked (the first reason and time stay).
   */
  revoke(serial: string, reason: RevocationReason, at: Date, ca?: string): Promise<boolean>;
  /** Every revoked certificate of this issuer, for the CRL (ordered by serial). */
  listRevoked(issuer: string): Promise<RevokedEntry[]>;

  // ---- SCEP transactions ----
  /**
   * Inserts the transaction if its id is new: `{ created: true, record }`. Otherwise changes
   * nothing and returns `{ created: false, existing }`; the caller compares signerKeyHash.
   * Exception to "durable before resolve": a newly created `approved` transaction may resolve
   * once committed (visible to every instance) but before it is durable — no reply depends on
   * it until `recordIssued`, whose durability covers it (SQLite: same WAL, synced in order).
   */
  beginTransaction(rec: NewTransaction): Promise<BeginResult>;
  getTransaction(transactionId: string): Promise<TransactionRecord | null>;
  /**
   * Whether a transaction with this id exists. A hint for choosing a path, never an answer:
   * it may see a committed write that is not durable yet (SQLite), and is not waited for.
   */
  transactionExists(transactionId: string): Promise<boolean>;
  /** Transactions (e.g. all pending), oldest first. */
  listTransactions(query: TransactionQuery): Promise<Page<TransactionRecord>>;
  /**
   * In ONE database transaction: inserts the certificate (its transactionId, CA and profile
   * are set to the transaction's) and moves the transaction from pending/approved to issued with certSerial.
   * Throws SerialConflictError (retry with a new serial), AlreadyIssuedError (another writer
   * issued for this transaction: answer with `err.serial`), or TransactionStateError (unknown,
   * rejected, failed or expired). At most one certificate per transactionId is ever committed.
   * `audit` is appended to the audit trail in the same database transaction.
   *
   * With `open` (its transactionId must be this one, its state 'approved'): the transaction is
   * created by this same write instead of by an earlier `beginTransaction` — a new
   * auto-approved request is then ONE write. If the transactionID exists already, nothing is
   * written and TransactionExistsError is thrown.
   */
  recordIssued(args: IssuedRecord): Promise<void>;
  /**
   * Operator decision on a pending transaction. Returns true if it changed the state (only
   * from 'pending'); 'rejected' stores `reason` as failText.
   */
  decide(transactionId: string, decision: 'approved' | 'rejected', reason?: string): Promise<boolean>;
  /**
   * Marks a pending/approved transaction rejected or failed with SCEP failInfo and text
   * (e.g. issuance failed). Returns whether it changed anything.
   */
  fail(
    transactionId: string,
    state: 'rejected' | 'failed',
    failInfo: number | null,
    failText: string | null,
  ): Promise<boolean>;
  /**
   * Records a poll (CertPoll or resent PKCSReq) of a pending transaction at `at`. Returns
   * whether it was pending.
   */
  notePoll(transactionId: string, at: Date): Promise<boolean>;
  /** Pending transactions whose expiresAt <= now become 'expired'. Returns how many. */
  expirePending(now: Date): Promise<number>;

  // ---- CRLs ----
  /** Next CRL number for this issuer: 1, 2, 3, ... strictly increasing across instances. */
  nextCrlNumber(issuer: string): Promise<bigint>;
  /**
   * Stores a CRL as this issuer's latest unless a CRL with a higher or equal number is already
   * stored. Returns whether it was stored.
   */
  saveCrl(crl: CrlRecord): Promise<boolean>;
  latestCrl(issuer: string): Promise<CrlRecord | null>;

  // ---- one-time secrets (challenges) ----
  /** Adds a one-time secret by its hash (hex). Throws if the hash exists. */
  addSecret(hash: string, expiresAt: Date, meta?: JsonObject | null): Promise<void>;
  /** Consumes an unexpired, unused secret. True exactly once across all instances. */
  consumeSecret(hash: string, now: Date): Promise<boolean>;
  /** Deletes secrets that expired before `before` (used or not). Returns how many. */
  pruneSecrets(before: Date): Promise<number>;

  // ---- settings ----
  getSetting(key: string): Promise<string | null>;
  setSetting(key: string, value: string): Promise<void>;

  // ---- shared counters (throttling, rate limits) ----
  /**
   * Atomically adds `by` (default 1) to the counter `scope` of the fixed window starting at
   * `windowStart` (ms since the epoch) and returns the new count. Shared by every worker and
   * instance on this store.
   */
  incrementCounter(scope: string, windowStart: number, by?: number): Promise<number>;
  /** The counts of these scopes in the window starting at `windowStart` (0 when absent), in order. */
  readCounters(scopes: readonly string[], windowStart: number): Promise<number[]>;
  /** Deletes counters of windows that started before `before` (ms). Returns how many. */
  pruneCounters(before: number): Promise<number>;

  // ---- audit trail (hash chain, src/store/audit-chain.ts) ----
  /**
   * Appends records to the audit trail, in order, in one database transaction. Appends are
   * serialized across connections, processes and instances, so the chain never forks.
   */
  appendAudit(entries: readonly NewAuditEntry[]): Promise<void>;
  /** Audit records matching `query`, newest first. */
  listAudit(query: AuditQuery): Promise<AuditRecord[]>;
  /** Up to `limit` (max 10000) stored rows with seq > afterSeq, oldest first (for verification). */
  readAuditChain(afterSeq: number, limit: number): Promise<AuditRow[]>;

  // ---- maintenance ----
  /** Database-level check plus invariants (issued ⇒ certificate exists, serials unique). */
  integrityCheck(): Promise<IntegrityReport>;
  stats(): StoreStats;
  close(): Promise<void>;
}

/** Canonical serial form: one implementation, in src/pkix/certificate.ts. */
export { normalizeSerial } from '../pkix/certificate.js';
