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
 *       <member 1's statement> <member 2's statement> …        (one round trip each)
 *       pg_advisory_xact_lock(chain); read the head              (one round trip)
 *       INSERT every member's audit rows                         (one statement)
 *     COMMIT
 *
 * - A member's own error (unique violation, anything its statement raises) rejects only that
 *   member: the first attempt is rolled back and the batch runs again with each member in
 *   its own SAVEPOINT (`ROLLBACK TO` undoes the failing one alone), as the SQLite group
 *   commit does (src/store/group-commit.ts). Errors are rare (a lost race shows as "updated
 *   nothing", not as an error), so the common batch pays no savepoint round trips. A member
 *   whose statement reports nothing to record appends nothing.
 * - The lock is taken after every member's statement, so a lock holder never waits on a row
 *   lock; members run in the order of the row they lock (the transactionID), so two batches
 *   that touch the same rows lock them in the same order. Neither deadlocks.
 * - Every promise settles after COMMIT returned (synchronous_commit=on: flushed to the WAL).
 *   If BEGIN, a savepoint, the lock, the audit INSERT or COMMIT fails, the transaction rolls
 *   back and every member rejects with that error: a certificate never exists without its
 *   audit record, nor a record without its certificate.
 * - Up to `maxInFlight` batches per store (default 2), each on its own pooled connection, so
 *   one batch runs its members' statements while another holds the lock. A worker takes what
 *   is queued when it has its connection (members submitted in the same event-loop turn
 *   always go together), oldest first, at most `maxBatch` members (default 64: each member's
 *   writes take a subtransaction XID in the savepoint pass, and PostgreSQL caches 64 per
 *   backend before other sessions' snapshots get slower), and takes the next batch when it
 *   finishes while members wait. So a lone issuance is a batch of one, and under load the
 *   batches grow by themselves. No timers: nothing waits for more members to arrive.
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
  /** Members run in the order of this key (the row they lock), so batches never deadlock. */
  key: string;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

export class PgAuditBatcher {
  private queue: Job[] = [];
  /** Batch workers started or about to start (each runs one batch at a time on its own connection). */
  private workers = 0;
  /** A worker start is pending (the next event-loop turn). */
  private starting = false;
  private closed = false;
  private idle: Array<() => void> = [];
  /** Members settled by a COMMIT, and those COMMITs. */
  writes = 0;
  commits = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly query: ClientQuery,
    private readonly maxBatch = 64,
    private readonly maxInFlight = 2,
  ) {
    if (!(maxBatch >= 1)) throw new RangeError('maxBatch must be at least 1');
    if (!(maxInFlight >= 1)) throw new RangeError('maxInFlight must be at least 1');
  }

  /**
   * Queues a member: `run` executes inside the batch's transaction (it may run twice: the first
   * attempt is rolled back when another member fails); `audit(value)` names the entries to
   * append when it succeeded. `key` names the row `run` locks: members of a batch run in key
   * order, so two batches locking the same rows lock them in the same order. Resolves with
   * `run`'s value after COMMIT.
   */
  submit<T>(
    key: string,
    run: (c: pg.PoolClient) => Promise<T>,
    audit: (value: T) => readonly PreparedAuditEntry[],
  ): Promise<T> {
    return this.enqueue(key, run, audit as (value: unknown) => readonly PreparedAuditEntry[]) as Promise<T>;
  }

  /** Queues a plain append of prepared entries; resolves after COMMIT. */
  append(entries: readonly PreparedAuditEntry[]): Promise<void> {
    return this.enqueue('', undefined, () => entries) as Promise<void>;
  }

  /** Refuses new members and resolves once everything queued has settled. */
  close(): Promise<void> {
    this.closed = true;
    if (this.workers === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private enqueue(key: string, run: Job['run'], audit: Job['audit']): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ key, run, audit, resolve, reject });
      this.wake();
    });
  }

  /**
   * Starts a worker in the next event-loop turn (members submitted in this turn join its
   * batch) when members wait and fewer than `maxInFlight` workers run; at most one start is
   * pending at a time.
   */
  private wake(): void {
    if (this.starting || this.workers >= this.maxInFlight || this.queue.length === 0) return;
    this.starting = true;
    this.workers++;
    setImmediate(() => {
      this.starting = false;
      void this.work();
    });
  }

  /** Runs batches while members wait. */
  private async work(): Promise<void> {
    try {
      while (this.queue.length > 0) await this.runBatch();
    } finally {
      this.workers--;
      if (this.workers === 0 && this.queue.length === 0) for (const done of this.idle.splice(0)) done();
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
    // In key order (stable: equal keys keep their submission order).
    const batch = this.queue
      .splice(0, this.maxBatch)
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    if (batch.length === 0) {
      c.release(); // another worker took them
      return;
    }
    // More than one batch waits: another worker (if a slot is free) runs them meanwhile.
    this.wake();
    let outcomes: Outcome[] = [];
    try {
      await this.query(c, 'BEGIN');
      const optimistic = await this.runMembers(c, batch, false);
      if (optimistic) outcomes = optimistic;
      else {
        // A member failed: start over with each member in its own savepoint.
        await this.query(c, 'ROLLBACK; BEGIN');
        outcomes = (await this.runMembers(c, batch, true)) ?? [];
      }
      const entries: PreparedAuditEntry[] = [];
      batch.forEach((j, i) => {
        const o = outcomes[i] as Outcome;
        if (o.ok) entries.push(...j.audit(o.value));
      });
      if (entries.length > 0) {
        // The lock, then the head in a statement of its own (a simple query of two statements:
        // each gets its own READ COMMITTED snapshot), so it is the head the last holder committed.
        const [, headRows] = (await this.query(
          c,
          `${SQL.auditLockPostgres}; ${SQL.auditHead}`,
        )) as unknown as [pg.QueryResult, pg.QueryResult];
        const head = auditHeadOf(headRows.rows[0]);
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

  /**
   * Runs the members' statements in the open transaction. Optimistic (`savepoints` false): one
   * round trip per member, and null as soon as one fails (the transaction is then aborted; the
   * caller rolls back and runs them again with savepoints). With savepoints: each member in
   * its own, a failing one rolled back alone.
   */
  private async runMembers(
    c: pg.PoolClient,
    batch: readonly Job[],
    savepoints: boolean,
  ): Promise<Outcome[] | null> {
    const outcomes: Outcome[] = [];
    // 'none': no savepoint open; 'clean': open, nothing in it; 'dirty': holds a member's writes.
    let sp: 'none' | 'clean' | 'dirty' = 'none';
    for (const j of batch) {
      if (!j.run) {
        outcomes.push({ ok: true, value: undefined });
        continue;
      }
      if (!savepoints) {
        try {
          outcomes.push({ ok: true, value: await j.run(c) });
        } catch {
          return null;
        }
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
    return outcomes;
  }
}
