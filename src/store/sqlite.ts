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
  badOpen,
  sanRows,
  prepareCertificate,
  transactionFromRow,
  type Dialect,
  type TransactionRow,
} from './common.js';
import {
  AlreadyIssuedError,
  SerialConflictError,
  TransactionExistsError,
  TransactionStateError,
} from './errors.js';
import { chainEntries } from './audit-chain.js';
import { GroupCommitter } from './group-commit.js';
import { WalSyncer } from './wal-sync.js';
import { MIGRATIONS, MIGRATIONS_TABLE_SQL } from './schema.js';
import {
  CERT_COLUMNS,
  SQL,
  auditHeadOf,
  auditInsertParams,
  beginTransactionParams,
  opMethods,
  type OpMethod,
  type Op,
  type Outcome,
  type UniqueKey,
} from './statements.js';
import type {
  AuditRow,
  BeginResult,
  CertificateRecord,
  IntegrityReport,
  IssuedRecord,
  NewAuditEntry,
  NewCertificate,
  NewTransaction,
  Store,
  StoreStats,
  TransactionRecord,
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
const dialect: Dialect = { ts: ms, date: toDate, big: (v) => v, ilike: 'LIKE' };

/** SQLite names the violated unique column(s) in the message: `UNIQUE constraint failed: t.c`. */
function isUnique(e: unknown, column: UniqueKey): boolean {
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
    // When the group commit reruns a batch with a SAVEPOINT per job (after a job failed), the
    // sub-journal that can roll one back would spill to a temporary file past 64 KiB (a batch
    // of enrollments is ~1 MiB: ~40 write system calls per enrollment, docs/benchmarks.md).
    // Kept in memory instead; temp tables and sorts of the (paginated) listings are small.
    db.pragma('temp_store = MEMORY');
    migrate(db);
    if (offThread) walSyncer = new WalSyncer(`${path}-wal`);
  } catch (e) {
    db.close();
    throw e;
  }
  return new SqliteStore(db, opts.groupCommitWindowMs ?? 0, walSyncer);
}

/** Prepares the statements of the issuance path (beginTransaction, recordIssued, audit appends). */
function prepareHot(db: Database.Database) {
  return {
    insertCert: db.prepare(
      `INSERT INTO certificates (${CERT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
    ),
    insertSan: db.prepare('INSERT INTO certificate_sans (value, type, ca, serial) VALUES (?, ?, ?, ?)'),
    serialByTransaction: db.prepare(SQL.serialByTransaction),
    beginTransaction: db.prepare(SQL.beginTransaction),
    transactionById: db.prepare(SQL.transactionById),
    issuingTransaction: db.prepare(
      'SELECT state, cert_serial, ca, profile FROM transactions WHERE transaction_id = ?',
    ),
    markIssued: db.prepare(
      `UPDATE transactions SET state = 'issued', cert_serial = ?, updated_at = ?
       WHERE transaction_id = ? AND state IN ('pending', 'approved')`,
    ),
    auditHead: db.prepare(SQL.auditHead),
    auditInsert: db.prepare(SQL.auditInsert),
    /** Changes when another connection commits (not on this connection's own commits). */
    dataVersion: db.prepare('PRAGMA data_version').pluck(),
  };
}

// The statement-table methods (statements.ts) are assigned in the constructor (`opMethods`).
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface SqliteStore extends Pick<Store, OpMethod> {}

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  private readonly gc: GroupCommitter;
  private readonly cache = new Map<string, Database.Statement>();
  /** The issuance path's statements, prepared once (the rest go through `st`). */
  private readonly hot: ReturnType<typeof prepareHot>;
  /**
   * The audit chain's head as this connection's last append left it, and the
   * `PRAGMA data_version` seen then. Valid while data_version is unchanged — no other
   * connection (the operator CLI, another store) committed since; this connection's own
   * commits do not change it — and none of our work was rolled back since (the group
   * committer's onUndo clears it). Otherwise the head is read from the table. The `seq`
   * primary key would refuse a stale head anyway.
   */
  private chainHead: { seq: number; hash: string; version: number } | undefined;
  private closed = false;

  constructor(
    private readonly db: Database.Database,
    windowMs: number,
    private readonly walSyncer?: WalSyncer,
  ) {
    this.gc = new GroupCommitter(db, windowMs, undefined, walSyncer, () => {
      this.chainHead = undefined;
    });
    this.hot = prepareHot(db);
    Object.assign(
      this,
      opMethods((o, args) => this.run(o, args)),
    );
  }

  /** Runs one statement now, on the connection. */
  private exec(sql: string, params: readonly unknown[]): Outcome {
    const s = this.st(sql);
    if (s.reader) {
      const rows = s.all(...params) as Array<Record<string, unknown>>;
      return { rows, changes: rows.length };
    }
    return { rows: [], changes: s.run(...params).changes };
  }

  /** Runs a statement-table op: a read now (released once durable), a write in a group commit. */
  private run<A extends unknown[], R>(o: Op<A, R>, args: A): Promise<R> {
    let stmts;
    try {
      stmts = o.statements(dialect, ...args);
    } catch (e) {
      return Promise.reject(e);
    }
    const job = (): R => {
      try {
        return o.result(
          stmts.map(([sql, params]) => this.exec(sql, params)),
          dialect,
          args,
        );
      } catch (e) {
        if (o.unique && isUnique(e, o.unique.key)) throw o.unique.error();
        throw e;
      }
    };
    if (o.kind === 'write') return this.write(job, o.volatile !== true);
    if (!o.volatile) return this.read(job);
    if (this.closed) return Promise.reject(new Error('store is closed'));
    try {
      return Promise.resolve(job());
    } catch (e) {
      return Promise.reject(e);
    }
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
      this.hot.insertCert.run(
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
        c.ca,
        c.profile,
      );
    } catch (e) {
      if (isUnique(e, 'certificates.serial')) throw new SerialConflictError(c.serial);
      if (c.transactionId !== null && isUnique(e, 'certificates.transaction_id')) {
        const other = this.hot.serialByTransaction.get(c.transactionId) as { serial: string } | undefined;
        throw new AlreadyIssuedError(c.transactionId, other?.serial ?? '');
      }
      throw e;
    }
    const san = this.hot.insertSan;
    for (const { type, value } of sanRows(c.sans)) san.run(value, type, c.ca, c.serial);
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

  beginTransaction(rec: NewTransaction): Promise<BeginResult> {
    if ((rec.state as string) === 'issued')
      return Promise.reject(new TypeError('a transaction cannot begin issued'));
    return this.write(
      (): BeginResult => {
        const row = this.hot.beginTransaction.get(...beginTransactionParams(rec, dialect)) as
          TransactionRow | undefined;
        if (row) return { created: true, record: transactionFromRow(row, toDate) };
        return { created: false, existing: this.txn(rec.transactionId) as TransactionRecord };
        // A new auto-approved transaction is intermediate state: no reply depends on it until
        // recordIssued, whose sync covers it. Anything else (pending, an existing record) waits.
      },
      (r) => !(r.created && r.record.state === 'approved'),
    );
  }

  private txn(id: string): TransactionRecord | null {
    const row = this.hot.transactionById.get(id) as TransactionRow | undefined;
    return row ? transactionFromRow(row, toDate) : null;
  }

  /** Appends chained audit rows after the current head (inside a write job: the write lock serializes). */
  private appendAuditRows(entries: readonly NewAuditEntry[]): void {
    if (entries.length === 0) return;
    const version = this.hot.dataVersion.get() as number;
    const cached = this.chainHead;
    const head =
      cached !== undefined && cached.version === version
        ? cached
        : auditHeadOf(this.hot.auditHead.get() as Record<string, unknown> | undefined);
    const rows = chainEntries(head, entries, new Date());
    const insert = this.hot.auditInsert;
    for (const r of rows) insert.run(...auditInsertParams(r, dialect));
    const last = rows[rows.length - 1] as AuditRow;
    this.chainHead = { seq: last.seq, hash: last.hash, version };
  }

  appendAudit(entries: readonly NewAuditEntry[]): Promise<void> {
    return this.write(() => this.appendAuditRows(entries));
  }

  recordIssued(args: IssuedRecord): Promise<void> {
    const id = args.transactionId;
    const open = args.open;
    const bad = badOpen(args);
    if (bad) return Promise.reject(bad);
    const cert = prepareCertificate(Object.assign({}, args.cert, { transactionId: id }), new Date());
    // With `open`, the transaction is inserted already issued (nothing when its id exists).
    const opened = open ? beginTransactionParams(open, dialect, cert.serial) : undefined;
    return this.write(() => {
      let t: { ca: string; profile: string };
      if (opened) {
        const row = this.hot.beginTransaction.get(...opened) as TransactionRow | undefined;
        if (!row) throw new TransactionExistsError(id);
        t = row;
      } else {
        const row = this.hot.issuingTransaction.get(id) as
          { state: string; cert_serial: string | null; ca: string; profile: string } | undefined;
        if (!row) throw new TransactionStateError(id, null);
        if (row.state === 'issued') throw new AlreadyIssuedError(id, row.cert_serial ?? '');
        if (row.state !== 'pending' && row.state !== 'approved')
          throw new TransactionStateError(id, row.state);
        this.hot.markIssued.run(cert.serial, ms(cert.createdAt), id);
        t = row;
      }
      // `cert` is this call's own copy (prepareCertificate): filed under the transaction's CA.
      cert.ca = t.ca;
      cert.profile = t.profile;
      this.insertCert(cert);
      if (args.audit) this.appendAuditRows([args.audit]);
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
