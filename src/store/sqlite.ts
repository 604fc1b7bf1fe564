/**
 * SQLite adapter (better-sqlite3, the embedded default). WAL journal, busy_timeout so a
 * second process (the operator CLI) can write while the server runs, synchronous=FULL by
 * default so a resolved write survives power loss, and group commit (group-commit.ts) so
 * concurrent writes share one fsync. Reads run directly on the connection; they never see a
 * half-done batch because better-sqlite3 runs each batch synchronously.
 */
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  INVARIANTS,
  REQUIRED_UNIQUE_INDEXES,
  certificateFromRow,
  certificateWhere,
  transactionWhere,
  pageBounds,
  sanRows,
  prepareCertificate,
  transactionFromRow,
  type CertificateRow,
  type Dialect,
  type TransactionRow,
} from './common.js';
import {
  AlreadyIssuedError,
  DuplicateKeyError,
  SerialConflictError,
  TransactionStateError,
} from './errors.js';
import { GroupCommitter } from './group-commit.js';
import { WalSyncer } from './wal-sync.js';
import { MIGRATIONS, MIGRATIONS_TABLE_SQL } from './schema.js';
import {
  normalizeSerial,
  type BeginResult,
  type CertificateQuery,
  type CertificateRecord,
  type CrlRecord,
  type IntegrityReport,
  type JsonObject,
  type NewCertificate,
  type NewTransaction,
  type Page,
  type RevocationReason,
  type RevokedEntry,
  type Store,
  type StoreStats,
  type TransactionQuery,
  type TransactionRecord,
} from './types.js';

export interface SqliteOptions {
  /** 'full' (default): every commit fsyncs the WAL. 'normal': survives a crash, not power loss. */
  synchronous?: 'full' | 'normal';
  /** How long a writer waits for another process's lock (default 5000 ms). */
  busyTimeoutMs?: number;
  /** Extra wait to gather a batch (default 0: everything queued in the same event-loop turn). */
  groupCommitWindowMs?: number;
  /**
   * With 'full' on disk (default true): fsync the WAL on the thread pool after COMMIT instead of
   * inside it (src/store/wal-sync.ts); writes still resolve only once durable. false: plain
   * synchronous=FULL, the fsync blocks the event loop.
   */
  fsyncOffThread?: boolean;
}

/** Page cache per connection (KiB) in normal operation, and while bulk-loading. */
const CACHE_KIB = 32 * 1024;
const BULK_CACHE_KIB = 512 * 1024;

const toDate = (v: unknown): Date => new Date(v as number);
const ms = (d: Date): number => d.getTime();
const dialect: Dialect = { ts: ms, ilike: 'LIKE' };

function isUnique(e: unknown, column: string): boolean {
  const err = e as { code?: unknown; message?: unknown };
  return (
    typeof err.code === 'string' &&
    err.code.startsWith('SQLITE_CONSTRAINT') &&
    typeof err.message === 'string' &&
    err.message.includes(column)
  );
}

/** Applies missing migrations inside one BEGIN IMMEDIATE (a concurrent opener waits, then sees them). */
function migrate(db: Database.Database): void {
  db.exec('BEGIN IMMEDIATE');
  try {
    db.exec(MIGRATIONS_TABLE_SQL);
    const done = new Set(
      (db.prepare('SELECT version FROM schema_migrations').all() as Array<{ version: number }>).map(
        (r) => r.version,
      ),
    );
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      db.exec(m.sqlite);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
        m.version,
        m.name,
        new Date().toISOString(),
      );
    }
    db.exec('COMMIT');
  } catch (e) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw e;
  }
}

/** Opens (creating if needed) a SQLite store at `path` (or ':memory:'). */
export function openSqliteStore(path: string, opts: SqliteOptions = {}): SqliteStore {
  const onDisk = path !== ':memory:';
  if (onDisk) mkdirSync(dirname(path), { recursive: true });
  const isNew = onDisk && !existsSync(path);
  const db = new Database(path, { timeout: opts.busyTimeoutMs ?? 5000 });
  // The store holds CSRs and secret hashes: owner-only, like the CA key (WAL/SHM files inherit it).
  if (isNew) chmodSync(path, 0o600);
  let walSyncer: WalSyncer | undefined;
  try {
    const mode = onDisk ? String(db.pragma('journal_mode = WAL', { simple: true })).toLowerCase() : 'memory';
    // 'full' in WAL mode: SQLite commits without fsync and WalSyncer fsyncs the WAL off the
    // event loop before any write of the batch resolves (same durability as FULL, see
    // wal-sync.ts). Without WAL (a filesystem that refuses it) plain FULL is used.
    const offThread = mode === 'wal' && opts.synchronous !== 'normal' && opts.fsyncOffThread !== false;
    db.pragma(`synchronous = ${opts.synchronous === 'normal' || offThread ? 'NORMAL' : 'FULL'}`);
    db.pragma(`cache_size = ${-CACHE_KIB}`);
    migrate(db);
    if (offThread) walSyncer = new WalSyncer(`${path}-wal`);
  } catch (e) {
    db.close();
    throw e;
  }
  return new SqliteStore(db, opts.groupCommitWindowMs ?? 0, walSyncer);
}

const CERT_COLUMNS =
  'serial, issuer, subject, common_name, sans, not_before, not_after, key_hash, transaction_id, status, revoked_at, revocation_reason, created_at, der';

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  private readonly gc: GroupCommitter;
  private readonly cache = new Map<string, Database.Statement>();
  private closed = false;

  constructor(
    private readonly db: Database.Database,
    windowMs: number,
    private readonly walSyncer?: WalSyncer,
  ) {
    this.gc = new GroupCommitter(db, windowMs, undefined, walSyncer);
  }

  /** Prepared statement cache keyed by SQL text. */
  private st(sql: string): Database.Statement {
    let s = this.cache.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.cache.set(sql, s);
    }
    return s;
  }

  private write<T>(fn: () => T, durable: boolean | ((value: T) => boolean) = true): Promise<T> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    return this.gc.submit(fn, { durable });
  }

  /** Reads now; the result is released once every commit it may have seen is durable. */
  private read<T>(fn: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    return this.gc.durableRead(fn);
  }

  /** Inserts one prepared certificate and its SAN rows (inside a write job). */
  private insertCert(c: CertificateRecord): void {
    try {
      this.st(`INSERT INTO certificates (${CERT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`).run(
        c.serial,
        c.issuer,
        c.subject,
        c.commonName,
        JSON.stringify(c.sans),
        ms(c.notBefore),
        ms(c.notAfter),
        c.keyHash,
        c.transactionId,
        c.status,
        c.revokedAt ? ms(c.revokedAt) : null,
        c.revocationReason,
        ms(c.createdAt),
        c.der,
      );
    } catch (e) {
      if (isUnique(e, 'certificates.serial')) throw new SerialConflictError(c.serial);
      if (c.transactionId !== null && isUnique(e, 'certificates.transaction_id')) {
        const other = this.st('SELECT serial FROM certificates WHERE transaction_id = ?').get(
          c.transactionId,
        ) as { serial: string } | undefined;
        throw new AlreadyIssuedError(c.transactionId, other?.serial ?? '');
      }
      throw e;
    }
    const san = this.st('INSERT INTO certificate_sans (value, type, serial) VALUES (?, ?, ?)');
    for (const { type, value } of sanRows(c.sans)) san.run(value, type, c.serial);
  }

  getCertificate(serial: string): Promise<CertificateRecord | null> {
    return this.read(() => {
      const row = this.st(`SELECT ${CERT_COLUMNS} FROM certificates WHERE serial = ?`).get(
        normalizeSerial(serial),
      ) as CertificateRow | undefined;
      return row ? certificateFromRow(row, toDate) : null;
    });
  }

  searchCertificates(q: CertificateQuery): Promise<Page<CertificateRecord>> {
    return this.read(() => {
      const { sql, params } = certificateWhere(q, dialect);
      const { limit, offset } = pageBounds(q);
      const total = (
        this.st(`SELECT count(*) AS n FROM certificates WHERE ${sql}`).get(...params) as { n: number }
      ).n;
      const rows = this.st(
        `SELECT ${CERT_COLUMNS} FROM certificates WHERE ${sql} ORDER BY created_at DESC, serial LIMIT ? OFFSET ?`,
      ).all(...params, limit, offset) as CertificateRow[];
      return { items: rows.map((r) => certificateFromRow(r, toDate)), total };
    });
  }

  insertCertificate(cert: NewCertificate): Promise<void> {
    const c = prepareCertificate(cert, new Date());
    return this.write(() => this.insertCert(c));
  }

  bulkInsertCertificates(certs: readonly NewCertificate[]): Promise<number> {
    const now = new Date();
    const prepared = certs.map((c) => prepareCertificate(c, now));
    return this.write(() => {
      // A big page cache while bulk-loading keeps the random-key indexes (serial, key_hash)
      // in memory; the normal size is restored afterwards.
      const normal = this.db.pragma('cache_size', { simple: true }) as number;
      this.db.pragma(`cache_size = ${-BULK_CACHE_KIB}`);
      try {
        for (const c of prepared) this.insertCert(c);
      } finally {
        this.db.pragma(`cache_size = ${normal}`);
      }
      return prepared.length;
    });
  }

  revoke(serial: string, reason: RevocationReason, at: Date): Promise<boolean> {
    const s = normalizeSerial(serial);
    return this.write(
      () =>
        this.st(
          `UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ?
           WHERE serial = ? AND status = 'valid'`,
        ).run(ms(at), reason, s).changes === 1,
    );
  }

  listRevoked(issuer: string): Promise<RevokedEntry[]> {
    return this.read(() => {
      const rows = this.st(
        `SELECT serial, revoked_at, revocation_reason FROM certificates
         WHERE issuer = ? AND status = 'revoked' ORDER BY serial`,
      ).all(issuer.toLowerCase()) as Array<{
        serial: string;
        revoked_at: number;
        revocation_reason: number | null;
      }>;
      return rows.map((r) => ({
        serial: r.serial,
        revokedAt: toDate(r.revoked_at),
        reason: r.revocation_reason as RevocationReason | null,
      }));
    });
  }

  beginTransaction(rec: NewTransaction): Promise<BeginResult> {
    if ((rec.state as string) === 'issued')
      return Promise.reject(new TypeError('a transaction cannot begin issued'));
    const now = rec.createdAt ?? new Date();
    return this.write(
      (): BeginResult => {
        const changes = this.st(
          `INSERT INTO transactions (transaction_id, signer_key_hash, message_type, state, csr, subject, requester,
           created_at, updated_at, expires_at, cert_serial, fail_info, fail_text, meta)
         VALUES (?,?,?,?,?,?,?,?,?,?,NULL,?,?,?) ON CONFLICT (transaction_id) DO NOTHING`,
        ).run(
          rec.transactionId,
          rec.signerKeyHash.toLowerCase(),
          rec.messageType,
          rec.state,
          rec.csr ?? null,
          rec.subject ?? null,
          rec.requester ?? null,
          ms(now),
          ms(now),
          rec.expiresAt ? ms(rec.expiresAt) : null,
          rec.failInfo ?? null,
          rec.failText ?? null,
          rec.meta ? JSON.stringify(rec.meta) : null,
        ).changes;
        const record = this.txn(rec.transactionId) as TransactionRecord;
        return changes === 1 ? { created: true, record } : { created: false, existing: record };
        // A new auto-approved transaction is intermediate state: no reply depends on it until
        // recordIssued, whose sync covers it. Anything else (pending, an existing record) waits.
      },
      (r) => !(r.created && r.record.state === 'approved'),
    );
  }

  private txn(id: string): TransactionRecord | null {
    const row = this.st('SELECT * FROM transactions WHERE transaction_id = ?').get(id) as
      TransactionRow | undefined;
    return row ? transactionFromRow(row, toDate) : null;
  }

  getTransaction(transactionId: string): Promise<TransactionRecord | null> {
    return this.read(() => this.txn(transactionId));
  }

  listTransactions(q: TransactionQuery): Promise<Page<TransactionRecord>> {
    return this.read(() => {
      const { sql: where, params, order } = transactionWhere(q, dialect);
      const { limit, offset } = pageBounds(q);
      const total = (
        this.st(`SELECT count(*) AS n FROM transactions WHERE ${where}`).get(...params) as { n: number }
      ).n;
      const rows = this.st(
        `SELECT * FROM transactions WHERE ${where} ORDER BY ${order} LIMIT ? OFFSET ?`,
      ).all(...params, limit, offset) as TransactionRow[];
      return { items: rows.map((r) => transactionFromRow(r, toDate)), total };
    });
  }

  recordIssued(args: { transactionId: string; cert: NewCertificate }): Promise<void> {
    const id = args.transactionId;
    const c = prepareCertificate({ ...args.cert, transactionId: id }, new Date());
    return this.write(() => {
      const t = this.st('SELECT state, cert_serial FROM transactions WHERE transaction_id = ?').get(id) as
        { state: string; cert_serial: string | null } | undefined;
      if (!t) throw new TransactionStateError(id, null);
      if (t.state === 'issued') throw new AlreadyIssuedError(id, t.cert_serial ?? '');
      if (t.state !== 'pending' && t.state !== 'approved') throw new TransactionStateError(id, t.state);
      this.insertCert(c);
      this.st(
        `UPDATE transactions SET state = 'issued', cert_serial = ?, updated_at = ?
         WHERE transaction_id = ? AND state IN ('pending', 'approved')`,
      ).run(c.serial, ms(c.createdAt), id);
    });
  }

  decide(transactionId: string, decision: 'approved' | 'rejected', reason?: string): Promise<boolean> {
    const now = ms(new Date());
    return this.write(
      () =>
        this.st(
          `UPDATE transactions SET state = ?, fail_text = ?, updated_at = ?
           WHERE transaction_id = ? AND state = 'pending'`,
        ).run(decision, decision === 'rejected' ? (reason ?? null) : null, now, transactionId).changes === 1,
    );
  }

  fail(
    transactionId: string,
    state: 'rejected' | 'failed',
    failInfo: number | null,
    failText: string | null,
  ): Promise<boolean> {
    const now = ms(new Date());
    return this.write(
      () =>
        this.st(
          `UPDATE transactions SET state = ?, fail_info = ?, fail_text = ?, updated_at = ?
           WHERE transaction_id = ? AND state IN ('pending', 'approved')`,
        ).run(state, failInfo, failText, now, transactionId).changes === 1,
    );
  }

  expirePending(now: Date): Promise<number> {
    return this.write(
      () =>
        this.st(
          `UPDATE transactions SET state = 'expired', updated_at = ?
           WHERE state = 'pending' AND expires_at IS NOT NULL AND expires_at <= ?`,
        ).run(ms(now), ms(now)).changes,
    );
  }

  nextCrlNumber(issuer: string): Promise<bigint> {
    return this.write(() => {
      const row = this.st(
        `INSERT INTO crl_counters (issuer, value) VALUES (?, 1)
         ON CONFLICT (issuer) DO UPDATE SET value = value + 1 RETURNING value`,
      ).get(issuer.toLowerCase()) as { value: number };
      return BigInt(row.value);
    });
  }

  saveCrl(crl: CrlRecord): Promise<boolean> {
    return this.write(
      () =>
        this.st(
          `INSERT INTO crls (issuer, crl_number, this_update, next_update, der) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (issuer) DO UPDATE SET crl_number = excluded.crl_number, this_update = excluded.this_update,
             next_update = excluded.next_update, der = excluded.der
           WHERE excluded.crl_number > crls.crl_number`,
        ).run(crl.issuer.toLowerCase(), crl.crlNumber, ms(crl.thisUpdate), ms(crl.nextUpdate), crl.der)
          .changes === 1,
    );
  }

  latestCrl(issuer: string): Promise<CrlRecord | null> {
    return this.read(() => {
      const row = this.st('SELECT * FROM crls WHERE issuer = ?').get(issuer.toLowerCase()) as
        | { issuer: string; crl_number: number; this_update: number; next_update: number; der: Buffer }
        | undefined;
      return row
        ? {
            issuer: row.issuer,
            crlNumber: BigInt(row.crl_number),
            der: row.der,
            thisUpdate: toDate(row.this_update),
            nextUpdate: toDate(row.next_update),
          }
        : null;
    });
  }

  addSecret(hash: string, expiresAt: Date, meta?: JsonObject | null): Promise<void> {
    const now = ms(new Date());
    return this.write(() => {
      try {
        this.st(
          'INSERT INTO secrets (hash, expires_at, consumed_at, created_at, meta) VALUES (?, ?, NULL, ?, ?)',
        ).run(hash.toLowerCase(), ms(expiresAt), now, meta ? JSON.stringify(meta) : null);
      } catch (e) {
        if (isUnique(e, 'secrets.hash')) throw new DuplicateKeyError('secret');
        throw e;
      }
    });
  }

  consumeSecret(hash: string, now: Date): Promise<boolean> {
    return this.write(
      () =>
        this.st(
          'UPDATE secrets SET consumed_at = ? WHERE hash = ? AND consumed_at IS NULL AND expires_at > ?',
        ).run(ms(now), hash.toLowerCase(), ms(now)).changes === 1,
    );
  }

  pruneSecrets(before: Date): Promise<number> {
    return this.write(() => this.st('DELETE FROM secrets WHERE expires_at < ?').run(ms(before)).changes);
  }

  getSetting(key: string): Promise<string | null> {
    return this.read(() => {
      const row = this.st('SELECT value FROM settings WHERE key = ?').get(key) as
        { value: string } | undefined;
      return row ? row.value : null;
    });
  }

  setSetting(key: string, value: string): Promise<void> {
    const now = ms(new Date());
    return this.write(() => {
      this.st(
        `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      ).run(key, value, now);
    });
  }

  integrityCheck(): Promise<IntegrityReport> {
    return this.read(() => {
      const problems: string[] = [];
      const rows = this.db.prepare('PRAGMA integrity_check').all() as Array<{ integrity_check: string }>;
      for (const r of rows) if (r.integrity_check !== 'ok') problems.push(`sqlite: ${r.integrity_check}`);
      for (const name of REQUIRED_UNIQUE_INDEXES) {
        if (!this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?").get(name))
          problems.push(`missing index ${name}`);
      }
      for (const inv of INVARIANTS) {
        const ids = (this.db.prepare(inv.sql).all() as Array<{ id: string }>).map((r) => r.id);
        if (ids.length) problems.push(`${inv.what}: ${ids.join(', ')}`);
      }
      return { ok: problems.length === 0, problems };
    });
  }

  stats(): StoreStats {
    return { writes: this.gc.writes, commits: this.gc.commits };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.gc.flush();
    this.closed = true;
    await this.gc.whenSynced();
    this.db.close();
    this.walSyncer?.close();
  }
}
