/**
 * PostgreSQL adapter (pg.Pool) for one or many scepter instances on one database. Each
 * operation is its own short transaction in READ COMMITTED; the guarantees come from row
 * locks taken by conditional UPDATEs (`… WHERE state IN ('pending','approved')`,
 * `… WHERE consumed_at IS NULL`, `ON CONFLICT … DO UPDATE … RETURNING`) and unique indexes.
 * synchronous_commit is forced on, so a resolved write is flushed to the WAL; PostgreSQL
 * batches WAL flushes of concurrent commits itself (group commit; commit_delay can widen it).
 * Audit appends (and `recordIssued` with its audit record) are batched by src/store/pg-batch.ts:
 * many issuances per transaction, so the chain's lock is taken once per batch, not per issuance.
 */
import pg from 'pg';
import {
  INVARIANTS,
  badOpen,
  REQUIRED_UNIQUE_INDEXES,
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
import { prepareAuditEntries } from './audit-chain.js';
import { PgAuditBatcher } from './pg-batch.js';
import { MIGRATIONS, MIGRATIONS_TABLE_SQL } from './schema.js';
import {
  CERT_COLUMNS,
  SQL,
  beginTransactionParams,
  opMethods,
  type Op,
  type OpMethod,
  type Outcome,
  type UniqueKey,
} from './statements.js';
import type {
  BeginResult,
  CertificateRecord,
  IntegrityReport,
  IssuedRecord,
  NewAuditEntry,
  NewCertificate,
  NewTransaction,
  Store,
  StoreStats,
} from './types.js';

export interface PostgresOptions {
  /** Schema to hold the tables (created if missing); default `?schema=` of the URL, else `public`. */
  schema?: string;
  /** Pool size (default 10). */
  poolSize?: number;
  /** Most audit appends / audited issuances in one transaction (default 64; src/store/pg-batch.ts). */
  auditBatchMax?: number;
}

type Queryable = pg.Pool | pg.PoolClient;

const toDate = (v: unknown): Date => v as Date;
const dialect: Dialect = { ts: (d) => d, date: toDate, big: (v) => v.toString(), ilike: 'ILIKE' };

/** Rewrites `?` placeholders to `$1, $2, …` (our SQL has no `?` inside literals). */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

function uniqueViolation(e: unknown): string | null {
  const err = e as { code?: unknown; constraint?: unknown };
  return err.code === '23505' ? String(err.constraint ?? '') : null;
}

/** The constraint behind each unique key the store maps to its own errors. */
const UNIQUE_CONSTRAINT: Record<UniqueKey, string> = {
  'certificates.serial': 'certificates_pkey',
  'certificates.transaction_id': 'certificates_transaction_id_key',
  'secrets.hash': 'secrets_pkey',
};

const isUnique = (e: unknown, key: UniqueKey): boolean => uniqueViolation(e) === UNIQUE_CONSTRAINT[key];

/** Opens a PostgreSQL store; applies migrations under an advisory lock (safe with concurrent opens). */
export async function openPostgresStore(url: string, opts: PostgresOptions = {}): Promise<PostgresStore> {
  // `?schema=NAME` in the URL selects the schema too (the option wins); pg must not see it.
  const u = new URL(url);
  const fromUrl = u.searchParams.get('schema');
  u.searchParams.delete('schema');
  const schema = opts.schema ?? fromUrl ?? 'public';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new TypeError(`bad schema name: ${schema}`);
  const pool = new pg.Pool({
    connectionString: u.toString(),
    max: opts.poolSize ?? 10,
    options: `-c search_path=${schema} -c synchronous_commit=on`,
  });
  // An idle client that loses its connection must not crash the process.
  pool.on('error', () => undefined);
  try {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`scepter-migrate:${schema}`]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await client.query(MIGRATIONS_TABLE_SQL);
      const done = new Set(
        (await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map(
          (r) => r.version,
        ),
      );
      for (const m of MIGRATIONS) {
        if (done.has(m.version)) continue;
        await client.query(m.postgres);
        await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
          m.version,
          m.name,
          new Date().toISOString(),
        ]);
      }
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  } catch (e) {
    await pool.end();
    throw e;
  }
  return new PostgresStore(pool, opts.auditBatchMax);
}

// The statement-table methods (statements.ts) are assigned in the constructor (`opMethods`).
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface PostgresStore extends Pick<Store, OpMethod> {}

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  private writes = 0;
  private closed = false;
  private readonly audits: PgAuditBatcher;

  constructor(
    private readonly pool: pg.Pool,
    auditBatchMax?: number,
  ) {
    this.audits = new PgAuditBatcher(
      pool,
      (c, sql, params = []) => c.query(numbered(sql), params),
      auditBatchMax,
    );
    Object.assign(
      this,
      opMethods((o, args) => this.run(o, args)),
    );
  }

  /**
   * Runs a statement-table op: a write is one autocommit statement; the statements of a read
   * are independent and run in parallel on the pool.
   */
  private async run<A extends unknown[], R>(o: Op<A, R>, args: A): Promise<R> {
    const stmts = o.statements(dialect, ...args);
    try {
      const out = await Promise.all(
        stmts.map(async ([sql, params]): Promise<Outcome> => {
          const r = await (o.kind === 'write'
            ? this.w(sql, [...params])
            : this.q(this.pool, sql, [...params]));
          return { rows: r.rows, changes: r.rowCount ?? 0 };
        }),
      );
      return o.result(out, dialect, args);
    } catch (e) {
      if (o.unique && isUnique(e, o.unique.key)) throw o.unique.error();
      throw e;
    }
  }

  private async q<R extends pg.QueryResultRow>(db: Queryable, sql: string, params: unknown[] = []) {
    if (this.closed) throw new Error('store is closed');
    return db.query<R>(numbered(sql), params);
  }

  /** One write in autocommit mode (a single statement is its own transaction). */
  private async w<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) {
    const r = await this.q<R>(this.pool, sql, params);
    this.writes++;
    return r;
  }

  /** Runs `fn` in BEGIN … COMMIT on one pooled connection. */
  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.closed) throw new Error('store is closed');
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      const v = await fn(c);
      await c.query('COMMIT');
      this.writes++;
      return v;
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      c.release();
    }
  }

  private async insertCerts(c: Queryable, certs: readonly CertificateRecord[]): Promise<void> {
    if (certs.length === 0) return;
    const cols: unknown[][] = Array.from({ length: 16 }, () => []);
    const sCa: string[] = [];
    const sSerial: string[] = [];
    const sType: string[] = [];
    const sValue: string[] = [];
    for (const r of certs) {
      const v = [
        r.serial,
        r.issuer,
        r.subject,
        r.commonName,
        JSON.stringify(r.sans),
        r.notBefore,
        r.notAfter,
        r.keyHash,
        r.transactionId,
        r.status,
        r.revokedAt,
        r.revocationReason,
        r.createdAt,
        r.der,
        r.ca,
        r.profile,
      ];
      v.forEach((x, i) => (cols[i] as unknown[]).push(x));
      for (const s of sanRows(r.sans)) {
        sCa.push(r.ca);
        sSerial.push(r.serial);
        sType.push(s.type);
        sValue.push(s.value);
      }
    }
    try {
      await this.q(
        c,
        `INSERT INTO certificates (${CERT_COLUMNS})
         SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::timestamptz[],
           ?::timestamptz[], ?::text[], ?::text[], ?::text[], ?::timestamptz[], ?::int[], ?::timestamptz[], ?::bytea[],
           ?::text[], ?::text[])`,
        cols,
      );
    } catch (e) {
      const constraint = uniqueViolation(e);
      if (constraint === 'certificates_pkey') {
        const first =
          certs.length === 1 ? (certs[0] as CertificateRecord).serial : await this.findDupSerial(certs);
        throw new SerialConflictError(first);
      }
      if (constraint === 'certificates_transaction_id_key' && certs.length === 1) {
        const id = (certs[0] as CertificateRecord).transactionId ?? '';
        const other = await this.q<{ serial: string }>(this.pool, SQL.serialByTransaction, [id]);
        throw new AlreadyIssuedError(id, other.rows[0]?.serial ?? '');
      }
      throw e;
    }
    if (sSerial.length) {
      await this.q(
        c,
        `INSERT INTO certificate_sans (ca, serial, type, value)
         SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[])`,
        [sCa, sSerial, sType, sValue],
      );
    }
  }

  private async findDupSerial(certs: readonly CertificateRecord[]): Promise<string> {
    const seen = new Set<string>();
    for (const c of certs) {
      const key = `${c.ca}\0${c.serial}`;
      if (seen.has(key)) return c.serial;
      seen.add(key);
    }
    const r = await this.q<{ serial: string }>(
      this.pool,
      'SELECT serial FROM certificates WHERE (ca, serial) IN (SELECT * FROM unnest(?::text[], ?::text[])) LIMIT 1',
      [certs.map((c) => c.ca), certs.map((c) => c.serial)],
    );
    return r.rows[0]?.serial ?? '';
  }

  async insertCertificate(cert: NewCertificate): Promise<void> {
    const c = prepareCertificate(cert, new Date());
    await this.tx((client) => this.insertCerts(client, [c]));
  }

  async bulkInsertCertificates(certs: readonly NewCertificate[]): Promise<number> {
    const now = new Date();
    const prepared = certs.map((c) => prepareCertificate(c, now));
    await this.tx(async (client) => {
      for (let i = 0; i < prepared.length; i += 5000)
        await this.insertCerts(client, prepared.slice(i, i + 5000));
    });
    return prepared.length;
  }

  async beginTransaction(rec: NewTransaction): Promise<BeginResult> {
    if ((rec.state as string) === 'issued') throw new TypeError('a transaction cannot begin issued');
    const ins = await this.w<TransactionRow>(SQL.beginTransaction, beginTransactionParams(rec, dialect));
    const row = ins.rows[0];
    if (row) return { created: true, record: transactionFromRow(row, toDate) };
    // ON CONFLICT waited for a concurrent inserter to commit, so the row is visible now.
    const existing = await this.getTransaction(rec.transactionId);
    if (!existing) throw new Error(`transaction ${rec.transactionId} vanished`);
    return { created: false, existing };
  }

  /**
   * Appends chained audit rows in a batch transaction (src/store/pg-batch.ts): the advisory
   * lock there (held until COMMIT) serializes appenders of every instance. Entries that cannot
   * be stored are refused here, before anything is queued.
   */
  async appendAudit(entries: readonly NewAuditEntry[]): Promise<void> {
    if (entries.length === 0) return;
    if (this.closed) throw new Error('store is closed');
    await this.audits.append(prepareAuditEntries(entries));
  }

  async recordIssued(args: IssuedRecord): Promise<void> {
    const id = args.transactionId;
    const bad = badOpen(args);
    if (bad) throw bad;
    const c = prepareCertificate(Object.assign({}, args.cert, { transactionId: id }), new Date());
    const sans = sanRows(c.sans);
    // Checked before anything is written (a bad record refuses the issuance).
    const audit = args.audit ? prepareAuditEntries([args.audit]) : undefined;
    // One statement = one atomic transaction and one round trip. The UPDATE locks the
    // transaction row; a concurrent issuer waits on it, re-checks the state (READ COMMITTED)
    // and updates nothing, so its certificate INSERT (fed by the UPDATE's rows) inserts nothing.
    // With an audit record: the same statement as one member of an audit batch (pg-batch.ts),
    // whose transaction also appends the record — only if the statement issued.
    // With `open`, the first step INSERTs the transaction (already issued) instead of updating
    // it: ON CONFLICT waits for a concurrent inserter's commit and then inserts nothing, and so
    // neither does the certificate INSERT.
    const head: [string, unknown[]] = args.open
      ? [SQL.beginTransaction, beginTransactionParams(args.open, dialect, c.serial)]
      : [
          `UPDATE transactions SET state = 'issued', cert_serial = ?, updated_at = ?
           WHERE transaction_id = ? AND state IN ('pending', 'approved') RETURNING transaction_id, ca, profile`,
          [c.serial, c.createdAt, id],
        ];
    const run = async <R extends pg.QueryResultRow>(sql: string, params: unknown[]) => {
      if (!audit) return this.w<R>(sql, params);
      if (this.closed) throw new Error('store is closed');
      return this.audits.submit(
        id,
        (client) => client.query<R>(numbered(sql), params),
        (r) => ((r.rows[0] as { updated?: number } | undefined)?.updated === 1 ? audit : []),
      );
    };
    let updated: number;
    try {
      const r = await run<{ updated: number }>(
        `WITH upd AS (${head[0]}), ins AS (
           INSERT INTO certificates (${CERT_COLUMNS})
           SELECT ?, ?, ?, ?, ?, ?::timestamptz, ?::timestamptz, ?, upd.transaction_id, ?, ?::timestamptz, ?::int,
             ?::timestamptz, ?::bytea, upd.ca, upd.profile FROM upd
           RETURNING ca, serial
         ), sans AS (
           INSERT INTO certificate_sans (ca, serial, type, value)
           SELECT ins.ca, ins.serial, u.t, u.v FROM ins, unnest(?::text[], ?::text[]) AS u(t, v)
         )
         SELECT count(*)::int AS updated FROM upd`,
        [
          ...head[1],
          c.serial,
          c.issuer,
          c.subject,
          c.commonName,
          JSON.stringify(c.sans),
          c.notBefore,
          c.notAfter,
          c.keyHash,
          c.status,
          c.revokedAt,
          c.revocationReason,
          c.createdAt,
          c.der,
          sans.map((x) => x.type),
          sans.map((x) => x.value),
        ],
      );
      updated = r.rows[0]?.updated ?? 0;
    } catch (e) {
      const constraint = uniqueViolation(e);
      if (constraint === 'certificates_pkey') throw new SerialConflictError(c.serial);
      if (constraint === 'certificates_transaction_id_key') {
        const other = await this.q<{ serial: string }>(this.pool, SQL.serialByTransaction, [id]);
        throw new AlreadyIssuedError(id, other.rows[0]?.serial ?? '');
      }
      throw e;
    }
    if (updated === 1) return;
    if (args.open) throw new TransactionExistsError(id);
    const t = await this.getTransaction(id);
    if (!t) throw new TransactionStateError(id, null);
    if (t.state === 'issued') throw new AlreadyIssuedError(id, t.certSerial ?? '');
    throw new TransactionStateError(id, t.state);
  }

  async integrityCheck(): Promise<IntegrityReport> {
    const problems: string[] = [];
    const schema = await this.q<{ s: string }>(this.pool, 'SELECT current_schema() AS s');
    const s = schema.rows[0]?.s;
    if (!s) problems.push('postgres: no current schema');
    for (const name of ['certificates_pkey', ...REQUIRED_UNIQUE_INDEXES]) {
      const r = await this.q(this.pool, 'SELECT 1 FROM pg_indexes WHERE schemaname = ? AND indexname = ?', [
        s,
        name,
      ]);
      if (r.rowCount !== 1) problems.push(`missing index ${name}`);
    }
    const invalid = await this.q<{ name: string }>(
      this.pool,
      `SELECT c.relname AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ? AND NOT i.indisvalid`,
      [s],
    );
    for (const r of invalid.rows) problems.push(`postgres: invalid index ${r.name}`);
    for (const inv of INVARIANTS) {
      const r = await this.q<{ id: string }>(this.pool, inv.sql);
      if (r.rows.length) problems.push(`${inv.what}: ${r.rows.map((x) => x.id).join(', ')}`);
    }
    return { ok: problems.length === 0, problems };
  }

  stats(): StoreStats {
    return { writes: this.writes + this.audits.writes, commits: this.writes + this.audits.commits };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Queued audit batches still commit (and settle their callers) before the pool ends.
    await this.audits.close();
    await this.pool.end();
  }
}
