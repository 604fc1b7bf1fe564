/**
 * Group commit of audit appends for the PostgreSQL adapter (src/store/postgres.ts).
 *
 * Appending to the audit chain takes a transaction-scoped advisory lock (the chain must not
 * fork across connections, instances and CLI processes), held until COMMIT. One append per
 * transaction would make every issuance with an audit record commit after the previous one,
 * each paying its own WAL flush under the lock. Here the members queued in one store — a
 * `recordIssued` with its record, or a plain `appendAudit` — share ONE transaction on ONE
 * pooled connection:
 *
 *     BEGIN
 *       SAVEPOINT member; <member 1's statements>           (its own error: ROLLBACK TO member)
 *       RELEASE member; SAVEPOINT member; <member 2's …>    (one round trip for both)
 *       …
 *       pg_advisory_xact_lock(chain); read the head; INSERT every member's audit rows
 *     COMMIT
 *
 * - A member's own error (unique violation, anything its statements raise) rolls back to its
 *   savepoint and rejects only that member; the others go on. A member whose statements
 *   succeed but report nothing to record (a lost race for the transaction) appends nothing.
 * - The lock is taken after every member's statements, so a lock holder never waits on a row
 *   lock: no deadlock with other instances' batches, whose members may hold row locks while
 *   they wait for the chain. The lock is held for the head read, one INSERT and COMMIT.
 * - Every promise settles after COMMIT returned (synchronous_commit=on: flushed to the WAL).
 *   If BEGIN, a savepoint, the lock, the audit INSERT or COMMIT fails, the transaction rolls
 *   back and every member rejects with that error: a certificate never exists without its
 *   audit record, nor a record without its certificate.
 * - One batch at a time per store: what is queued when the previous batch finishes (or in the
 *   same event-loop turn as the first submit) forms the next one, oldest first, at most
 *   `maxBatch` members (default 64: each member's writes take a subtransaction XID, and
 *   PostgreSQL caches 64 per backend before other sessions' snapshots get slower).
 */
import type pg from 'pg';
import { chainPrepared, type PreparedAuditEntry } from './audit-chain.js';
import { SQL, auditHeadOf, auditInsertManyParams } from './statements.js';

/** Runs SQL with `?` placeholders on a client (the adapter numbers them). */
export type ClientQuery = (
  c: pg.PoolClient,
  sql: string,
  params?: unknown[],
) => Promise<pg.QueryResult<pg.QueryResultRow>>;

interface Job {
  /** The member's statements (none for a plain append). */
  run: ((c: pg.PoolClient) => Promise<unknown>) | undefined;
  /** Its audit entries, given the value `run` returned. */
  audit: (value: unknown) => readonly PreparedAuditEntry[];
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

export class PgAuditBatcher {
  private queue: Job[] = [];
  private scheduled = false;
  private running = false;
  private closed = false;
  private idle: Array<() => void> = [];
  /** Members settled by a COMMIT, and those COMMITs. */
  writes = 0;
  commits = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly query: ClientQuery,
    private readonly maxBatch = 64,
  ) {
    if (!(maxBatch >= 1)) throw new RangeError('maxBatch must be at least 1');
  }

  /**
   * Queues a member: `run` executes inside the batch's transaction, in its own savepoint;
   * `audit(value)` names the entries to append when it succeeded. Resolves with `run`'s value
   * after COMMIT.
   */
  submit<T>(
    run: (c: pg.PoolClient) => Promise<T>,
    audit: (value: T) => readonly PreparedAuditEntry[],
  ): Promise<T> {
    return this.enqueue(run, audit as (value: unknown) => readonly PreparedAuditEntry[]) as Promise<T>;
  }

  /** Queues a plain append of prepared entries; resolves after COMMIT. */
  append(entries: readonly PreparedAuditEntry[]): Promise<void> {
    return this.enqueue(undefined, () => entries) as Promise<void>;
  }

  /** Refuses new members and resolves once everything queued has settled. */
  close(): Promise<void> {
    this.closed = true;
    if (!this.running && !this.scheduled && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private enqueue(run: Job['run'], audit: Job['audit']): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ run, audit, resolve, reject });
      if (!this.running && !this.scheduled) {
        // Members submitted in this event-loop turn join the first batch.
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          void this.drain();
        });
      }
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) await this.runBatch();
    } finally {
      this.running = false;
      for (const done of this.idle.splice(0)) done();
    }
  }

  private async runBatch(): Promise<void> {
    let c: pg.PoolClient;
    try {
      c = await this.pool.connect();
    } catch (e) {
      for (const j of this.queue.splice(0, this.maxBatch)) j.reject(e);
      return;
    }
    // Taken once the connection is ours: what queued meanwhile joins this batch.
    const batch = this.queue.splice(0, this.maxBatch);
    const outcomes: Outcome[] = [];
    try {
      await this.query(c, 'BEGIN');
      // 'none': no savepoint open; 'clean': open, nothing in it; 'dirty': holds a member's writes.
      let sp: 'none' | 'clean' | 'dirty' = 'none';
      for (const j of batch) {
        if (!j.run) {
          outcomes.push({ ok: true, value: undefined });
          continue;
        }
        if (sp === 'none') await this.query(c, 'SAVEPOINT member');
        else if (sp === 'dirty') await this.query(c, 'RELEASE SAVEPOINT member; SAVEPOINT member');
        let outcome: Outcome;
        try {
          outcome = { ok: true, value: await j.run(c) };
        } catch (error) {
          outcome = { ok: false, error };
        }
        outcomes.push(outcome);
        if (outcome.ok) sp = 'dirty';
        else {
          // Undo this member only (the savepoint stays open, clean, for the next one).
          await this.query(c, 'ROLLBACK TO SAVEPOINT member');
          sp = 'clean';
        }
      }
      const entries: PreparedAuditEntry[] = [];
      batch.forEach((j, i) => {
        const o = outcomes[i] as Outcome;
        if (o.ok) entries.push(...j.audit(o.value));
      });
      if (entries.length > 0) {
        // A separate statement after the lock: READ COMMITTED reads the head the last holder committed.
        await this.query(c, SQL.auditLockPostgres);
        const head = auditHeadOf((await this.query(c, SQL.auditHead)).rows[0]);
        await this.query(
          c,
          SQL.auditInsertManyPostgres,
          auditInsertManyParams(chainPrepared(head, entries, new Date())),
        );
      }
      await this.query(c, 'COMMIT');
    } catch (e) {
      // Nothing of this batch is committed: every member gets the error.
      let broken: Error | undefined;
      await this.query(c, 'ROLLBACK').catch((err: unknown) => {
        broken = err instanceof Error ? err : new Error(String(err));
      });
      c.release(broken);
      for (const j of batch) j.reject(e);
      return;
    }
    c.release();
    this.commits++;
    this.writes += batch.length;
    batch.forEach((j, i) => {
      const o = outcomes[i] as Outcome;
      if (o.ok) j.resolve(o.value);
      else j.reject(o.error);
    });
  }
}
