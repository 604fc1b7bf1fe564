/**
 * The store's SQL, written once for both dialects (`?` placeholders; the PostgreSQL adapter
 * renumbers them to `$1, $2, …`). Two parts:
 *
 * - `SQL`: statement texts both adapters use (also inside their own multi-step methods);
 * - `OPS`: every Store method that is "run these statements, map the rows" — its kind
 *   (read/write), statements with parameters, result mapping and unique-key errors. The
 *   adapters execute an op generically (`run`), so such a method exists once, here.
 *
 * What stays in the adapters is what really differs: sync (SQLite, group commit) vs async
 * (PostgreSQL pool), value conversions (`Dialect`), unique-violation detection, bulk insert,
 * `beginTransaction`/`recordIssued` (SQLite: check + insert in one batch; PostgreSQL: one
 * CTE statement), integrity checks, stats and close.
 *
 * Adding a Store method: declare it in types.ts and add its op here; the adapters and the
 * worker RPC (src/server/store-rpc.ts) pick it up (the compiler lists anything missing).
 */
import { DuplicateKeyError } from './errors.js';
import {
  certificateFromRow,
  certificateWhere,
  pageBounds,
  transactionWhere,
  transactionFromRow,
  type CertificateRow,
  type Dialect,
  type TransactionRow,
} from './common.js';
import { auditRecordOf } from './audit-chain.js';
import {
  DEFAULT_CA,
  DEFAULT_PROFILE,
  normalizeSerial,
  type AuditRow,
  type NewTransaction,
  type RevocationReason,
  type Store,
} from './types.js';

/** Unique keys whose violation a caller acts on (each adapter knows how its driver reports them). */
export type UniqueKey = 'certificates.serial' | 'certificates.transaction_id' | 'secrets.hash';

export const CERT_COLUMNS =
  'serial, issuer, subject, common_name, sans, not_before, not_after, key_hash, transaction_id, status, revoked_at, revocation_reason, created_at, der, ca, profile';

/** Statement texts shared by both adapters. */
export const SQL = {
  certificateBySerial: `SELECT ${CERT_COLUMNS} FROM certificates WHERE ca = ? AND serial = ?`,
  serialByTransaction: 'SELECT serial FROM certificates WHERE transaction_id = ?',
  transactionById: 'SELECT * FROM transactions WHERE transaction_id = ?',
  /**
   * Returns the new row, or nothing when the transactionID exists (`beginTransactionParams`;
   * also recordIssued's `open`, which inserts the transaction already issued).
   */
  beginTransaction: `INSERT INTO transactions (transaction_id, signer_key_hash, message_type, state, csr, subject,
    requester, created_at, updated_at, expires_at, cert_serial, fail_info, fail_text, meta, ca, profile)
  VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (transaction_id) DO NOTHING RETURNING *`,
  /** The audit chain's last row (read inside the serialized append). */
  auditHead: 'SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1',
  auditInsert: `INSERT INTO audit_log (seq, at, actor, action, target, details, prev_hash, hash)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  /**
   * PostgreSQL only: serializes audit appends of every connection and instance on this schema
   * until the transaction ends (SQLite: the group commit's write lock does it).
   */
  auditLockPostgres: "SELECT pg_advisory_xact_lock(hashtext('scepter-audit:' || current_schema()))",
  /** PostgreSQL only: several chained rows in one statement (`auditInsertManyParams`). */
  auditInsertManyPostgres: `INSERT INTO audit_log (seq, at, actor, action, target, details, prev_hash, hash)
  SELECT * FROM unnest(?::bigint[], ?::timestamptz[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[])`,
} as const;

/** Parameters of `SQL.auditInsert` for one chained row. */
export function auditInsertParams(r: AuditRow, d: Dialect): unknown[] {
  return [r.seq, d.ts(r.at), r.actor, r.action, r.target, r.details, r.prevHash, r.hash];
}

/** Parameters of `SQL.auditInsertManyPostgres`: one array per column. */
export function auditInsertManyParams(rows: readonly AuditRow[]): unknown[][] {
  return [
    rows.map((r) => r.seq),
    rows.map((r) => r.at),
    rows.map((r) => r.actor),
    rows.map((r) => r.action),
    rows.map((r) => r.target),
    rows.map((r) => r.details),
    rows.map((r) => r.prevHash),
    rows.map((r) => r.hash),
  ];
}

/** The head row of `SQL.auditHead` (null for an empty chain). */
export function auditHeadOf(row: Record<string, unknown> | undefined): { seq: number; hash: string } | null {
  return row ? { seq: Number(row.seq), hash: row.hash as string } : null;
}

/**
 * Parameters of `SQL.beginTransaction` (timestamps default to now). `issuedAs`: the transaction
 * is inserted already issued with that certificate serial (recordIssued's `open`).
 */
export function beginTransactionParams(rec: NewTransaction, d: Dialect, issuedAs?: string): unknown[] {
  const now = rec.createdAt ?? new Date();
  return [
    rec.transactionId,
    rec.signerKeyHash.toLowerCase(),
    rec.messageType,
    issuedAs === undefined ? rec.state : 'issued',
    rec.csr ?? null,
    rec.subject ?? null,
    rec.requester ?? null,
    d.ts(now),
    d.ts(now),
    rec.expiresAt ? d.ts(rec.expiresAt) : null,
    issuedAs ?? null,
    rec.failInfo ?? null,
    rec.failText ?? null,
    rec.meta ? JSON.stringify(rec.meta) : null,
    rec.ca ?? DEFAULT_CA,
    rec.profile ?? DEFAULT_PROFILE,
  ];
}

/** What one statement gave back, whatever the driver. */
export interface Outcome {
  rows: Array<Record<string, unknown>>;
  /** Rows changed (for a statement returning rows: how many it returned). */
  changes: number;
}

/** One statement and its parameters. */
export type Statement = readonly [sql: string, params: readonly unknown[]];

/**
 * A Store method as data. `statements` of a read are independent (PostgreSQL runs them in
 * parallel); a write has exactly one statement (its own transaction).
 */
export interface Op<A extends unknown[], R> {
  kind: 'read' | 'write';
  statements(d: Dialect, ...args: A): Statement[];
  /** Maps the statements' outcomes (in order) to the method's result. */
  result(out: Outcome[], d: Dialect, args: A): R;
  /**
   * No reply's correctness depends on this being durable (counters): SQLite then releases a
   * read without waiting for pending WAL syncs and settles a write at COMMIT (a later durable
   * write's sync covers it). PostgreSQL ignores it.
   */
  volatile?: boolean;
  /** A violation of this unique key is reported as `error()` instead of the driver's error. */
  unique?: { key: UniqueKey; error(): Error };
}

const first = (out: Outcome[]): Record<string, unknown> | undefined => out[0]?.rows[0];
const changedOne = (out: Outcome[]): boolean => out[0]?.changes === 1;
const changes = (out: Outcome[]): number => out[0]?.changes ?? 0;

/** A count(*) row (SQLite gives a number, PostgreSQL a string). */
const count = (o: Outcome | undefined): number => Number(o?.rows[0]?.n ?? 0);

type Args<K extends keyof Store> = Store[K] extends (...a: infer A) => unknown ? A : never;
type Res<K extends keyof Store> = Store[K] extends (...a: never[]) => Promise<infer R> ? R : never;

/** Store methods implemented by the table below; the rest each adapter implements itself. */
export type OpMethod =
  | 'getCertificate'
  | 'searchCertificates'
  | 'revoke'
  | 'listRevoked'
  | 'getTransaction'
  | 'transactionExists'
  | 'listTransactions'
  | 'decide'
  | 'fail'
  | 'expirePending'
  | 'notePoll'
  | 'nextCrlNumber'
  | 'saveCrl'
  | 'latestCrl'
  | 'addSecret'
  | 'consumeSecret'
  | 'pruneSecrets'
  | 'getSetting'
  | 'setSetting'
  | 'incrementCounter'
  | 'readCounters'
  | 'pruneCounters'
  | 'listAudit'
  | 'readAuditChain';

/** Store methods each adapter writes by hand (what really differs between the dialects). */
export type AdapterMethod = Exclude<keyof Store, OpMethod>;

export const OPS: { [K in OpMethod]: Op<Args<K>, Res<K>> } = {
  getCertificate: {
    kind: 'read',
    statements: (_d, serial: string, ca?: string) => [
      [SQL.certificateBySerial, [ca ?? DEFAULT_CA, normalizeSerial(serial)]],
    ],
    result: (out, d) => {
      const row = first(out);
      return row ? certificateFromRow(row as unknown as CertificateRow, d.date) : null;
    },
  },

  searchCertificates: {
    kind: 'read',
    statements: (d, q) => {
      const { sql, params } = certificateWhere(q, d);
      const { limit, offset } = pageBounds(q);
      return [
        [`SELECT count(*) AS n FROM certificates WHERE ${sql}`, params],
        [
          `SELECT ${CERT_COLUMNS} FROM certificates WHERE ${sql} ORDER BY created_at DESC, serial LIMIT ? OFFSET ?`,
          [...params, limit, offset],
        ],
      ];
    },
    result: (out, d) => ({
      items: (out[1]?.rows ?? []).map((r) => certificateFromRow(r as unknown as CertificateRow, d.date)),
      total: count(out[0]),
    }),
  },

  revoke: {
    kind: 'write',
    statements: (d, serial: string, reason: RevocationReason, at: Date, ca?: string) => [
      [
        `UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ?
         WHERE ca = ? AND serial = ? AND status = 'valid'`,
        [d.ts(at), reason, ca ?? DEFAULT_CA, normalizeSerial(serial)],
      ],
    ],
    result: changedOne,
  },

  listRevoked: {
    kind: 'read',
    statements: (_d, issuer: string) => [
      [
        `SELECT serial, revoked_at, revocation_reason FROM certificates
         WHERE issuer = ? AND status = 'revoked' ORDER BY serial`,
        [issuer.toLowerCase()],
      ],
    ],
    result: (out, d) =>
      (out[0]?.rows ?? []).map((r) => ({
        serial: r.serial as string,
        revokedAt: d.date(r.revoked_at),
        reason: r.revocation_reason as RevocationReason | null,
      })),
  },

  getTransaction: {
    kind: 'read',
    statements: (_d, transactionId: string) => [[SQL.transactionById, [transactionId]]],
    result: (out, d) => {
      const row = first(out);
      return row ? transactionFromRow(row as unknown as TransactionRow, d.date) : null;
    },
  },

  transactionExists: {
    kind: 'read',
    // A hint (see Store): not held back until pending commits are durable.
    volatile: true,
    statements: (_d, transactionId: string) => [
      ['SELECT 1 AS n FROM transactions WHERE transaction_id = ?', [transactionId]],
    ],
    result: (out) => (out[0]?.rows.length ?? 0) > 0,
  },

  listTransactions: {
    kind: 'read',
    statements: (d, q) => {
      const { sql: where, params, order } = transactionWhere(q, d);
      const { limit, offset } = pageBounds(q);
      return [
        [`SELECT count(*) AS n FROM transactions WHERE ${where}`, params],
        [
          `SELECT * FROM transactions WHERE ${where} ORDER BY ${order} LIMIT ? OFFSET ?`,
          [...params, limit, offset],
        ],
      ];
    },
    result: (out, d) => ({
      items: (out[1]?.rows ?? []).map((r) => transactionFromRow(r as unknown as TransactionRow, d.date)),
      total: count(out[0]),
    }),
  },

  decide: {
    kind: 'write',
    statements: (d, transactionId: string, decision: 'approved' | 'rejected', reason?: string) => [
      [
        `UPDATE transactions SET state = ?, fail_text = ?, updated_at = ?
         WHERE transaction_id = ? AND state = 'pending'`,
        [decision, decision === 'rejected' ? (reason ?? null) : null, d.ts(new Date()), transactionId],
      ],
    ],
    result: changedOne,
  },

  fail: {
    kind: 'write',
    statements: (d, transactionId, state, failInfo, failText) => [
      [
        `UPDATE transactions SET state = ?, fail_info = ?, fail_text = ?, updated_at = ?
         WHERE transaction_id = ? AND state IN ('pending', 'approved')`,
        [state, failInfo, failText, d.ts(new Date()), transactionId],
      ],
    ],
    result: changedOne,
  },

  notePoll: {
    kind: 'write',
    statements: (d, transactionId: string, at: Date) => [
      [
        `UPDATE transactions SET last_poll_at = ? WHERE transaction_id = ? AND state = 'pending'`,
        [d.ts(at), transactionId],
      ],
    ],
    result: changedOne,
    // A console hint (src/ra/poll-notes.ts): no reply waits for it.
    volatile: true,
  },

  expirePending: {
    kind: 'write',
    statements: (d, now: Date) => [
      [
        `UPDATE transactions SET state = 'expired', updated_at = ?
         WHERE state = 'pending' AND expires_at IS NOT NULL AND expires_at <= ?`,
        [d.ts(now), d.ts(now)],
      ],
    ],
    result: changes,
  },

  nextCrlNumber: {
    kind: 'write',
    statements: (_d, issuer: string) => [
      [
        `INSERT INTO crl_counters (issuer, value) VALUES (?, 1)
         ON CONFLICT (issuer) DO UPDATE SET value = crl_counters.value + 1 RETURNING value`,
        [issuer.toLowerCase()],
      ],
    ],
    result: (out) => BigInt(first(out)?.value as number | string),
  },

  saveCrl: {
    kind: 'write',
    statements: (d, crl) => [
      [
        `INSERT INTO crls (issuer, crl_number, this_update, next_update, der) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (issuer) DO UPDATE SET crl_number = excluded.crl_number, this_update = excluded.this_update,
           next_update = excluded.next_update, der = excluded.der
         WHERE excluded.crl_number > crls.crl_number`,
        [crl.issuer.toLowerCase(), d.big(crl.crlNumber), d.ts(crl.thisUpdate), d.ts(crl.nextUpdate), crl.der],
      ],
    ],
    result: changedOne,
  },

  latestCrl: {
    kind: 'read',
    statements: (_d, issuer: string) => [['SELECT * FROM crls WHERE issuer = ?', [issuer.toLowerCase()]]],
    result: (out, d) => {
      const row = first(out);
      return row
        ? {
            issuer: row.issuer as string,
            crlNumber: BigInt(row.crl_number as number | string),
            der: row.der as Buffer,
            thisUpdate: d.date(row.this_update),
            nextUpdate: d.date(row.next_update),
          }
        : null;
    },
  },

  addSecret: {
    kind: 'write',
    statements: (d, hash, expiresAt, meta) => [
      [
        'INSERT INTO secrets (hash, expires_at, consumed_at, created_at, meta) VALUES (?, ?, NULL, ?, ?)',
        [hash.toLowerCase(), d.ts(expiresAt), d.ts(new Date()), meta ? JSON.stringify(meta) : null],
      ],
    ],
    result: () => undefined,
    unique: { key: 'secrets.hash', error: () => new DuplicateKeyError('secret') },
  },

  consumeSecret: {
    kind: 'write',
    statements: (d, hash: string, now: Date) => [
      [
        'UPDATE secrets SET consumed_at = ? WHERE hash = ? AND consumed_at IS NULL AND expires_at > ?',
        [d.ts(now), hash.toLowerCase(), d.ts(now)],
      ],
    ],
    result: changedOne,
  },

  pruneSecrets: {
    kind: 'write',
    statements: (d, before: Date) => [['DELETE FROM secrets WHERE expires_at < ?', [d.ts(before)]]],
    result: changes,
  },

  getSetting: {
    kind: 'read',
    statements: (_d, key: string) => [['SELECT value FROM settings WHERE key = ?', [key]]],
    result: (out) => (first(out)?.value as string | undefined) ?? null,
  },

  setSetting: {
    kind: 'write',
    statements: (d, key: string, value: string) => [
      [
        `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
        [key, value, d.ts(new Date())],
      ],
    ],
    result: () => undefined,
  },

  incrementCounter: {
    volatile: true,
    kind: 'write',
    statements: (_d, scope: string, windowStart: number, by = 1) => [
      [
        `INSERT INTO rate_counters (scope, window_start, count) VALUES (?, ?, ?)
         ON CONFLICT (scope, window_start) DO UPDATE SET count = rate_counters.count + excluded.count
         RETURNING count`,
        [scope, Math.trunc(windowStart), Math.trunc(by)],
      ],
    ],
    result: (out) => Number(first(out)?.count ?? 0),
  },

  readCounters: {
    volatile: true,
    kind: 'read',
    statements: (_d, scopes: readonly string[], windowStart: number) => {
      const list = counterScopes(scopes);
      return [
        [
          `SELECT scope, count FROM rate_counters WHERE window_start = ? AND scope IN (${list.map(() => '?').join(', ')})`,
          [Math.trunc(windowStart), ...list],
        ],
      ];
    },
    result: (out, _d, [scopes]) => {
      const found = new Map((out[0]?.rows ?? []).map((r) => [r.scope as string, Number(r.count)]));
      return scopes.map((s) => found.get(s) ?? 0);
    },
  },

  pruneCounters: {
    volatile: true,
    kind: 'write',
    statements: (_d, before: number) => [
      ['DELETE FROM rate_counters WHERE window_start < ?', [Math.trunc(before)]],
    ],
    result: changes,
  },

  listAudit: {
    kind: 'read',
    statements: (d, q) => {
      const parts: string[] = [];
      const params: unknown[] = [];
      if (q.action !== undefined && q.action !== '') {
        if (q.action.endsWith('.')) {
          parts.push("action LIKE ? ESCAPE '\\'");
          params.push(`${q.action.replace(/[\\%_]/g, (c) => '\\' + c)}%`);
        } else {
          parts.push('action = ?');
          params.push(q.action);
        }
      }
      if (q.since !== undefined) {
        parts.push('at >= ?');
        params.push(d.ts(q.since));
      }
      if (q.beforeSeq !== undefined) {
        parts.push('seq < ?');
        params.push(Math.trunc(q.beforeSeq));
      }
      const { limit } = pageBounds(q);
      return [
        [
          `SELECT ${AUDIT_COLUMNS} FROM audit_log WHERE ${parts.length ? parts.join(' AND ') : '1=1'}
           ORDER BY seq DESC LIMIT ?`,
          [...params, limit],
        ],
      ];
    },
    result: (out, d) => (out[0]?.rows ?? []).map((r) => auditRecordOf(auditRowOf(r, d))),
  },

  readAuditChain: {
    kind: 'read',
    statements: (_d, afterSeq: number, limit: number) => [
      [
        `SELECT ${AUDIT_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?`,
        [Math.trunc(afterSeq), pageBounds({ limit }).limit],
      ],
    ],
    result: (out, d) => (out[0]?.rows ?? []).map((r) => auditRowOf(r, d)),
  },
};

const AUDIT_COLUMNS = 'seq, at, actor, action, target, details, prev_hash, hash';

function auditRowOf(r: Record<string, unknown>, d: Dialect): AuditRow {
  return {
    seq: Number(r.seq),
    at: d.date(r.at),
    actor: r.actor as string,
    action: r.action as string,
    target: (r.target as string | null) ?? null,
    details: (r.details as string | null) ?? null,
    prevHash: r.prev_hash as string,
    hash: r.hash as string,
  };
}

/** Most scopes one readCounters call may ask for. */
export const MAX_COUNTER_SCOPES = 16;

function counterScopes(scopes: readonly string[]): readonly string[] {
  if (scopes.length === 0 || scopes.length > MAX_COUNTER_SCOPES)
    throw new RangeError(`readCounters takes 1 to ${MAX_COUNTER_SCOPES} scopes`);
  return scopes;
}

/** Runs one op on an adapter's connection(s). */
export type OpRunner = <A extends unknown[], R>(o: Op<A, R>, args: A) => Promise<R>;

/** The OPS methods as functions bound to one adapter's runner (assigned onto the adapter). */
export function opMethods(run: OpRunner): Pick<Store, OpMethod> {
  const out: Record<string, (...args: unknown[]) => Promise<unknown>> = {};
  for (const name of Object.keys(OPS) as OpMethod[]) {
    const o = OPS[name] as unknown as Op<unknown[], unknown>;
    out[name] = (...args: unknown[]) => run(o, args);
  }
  return out as unknown as Pick<Store, OpMethod>;
}
