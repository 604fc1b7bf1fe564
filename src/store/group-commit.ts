/**
 * Group commit for better-sqlite3 (synchronous driver). Writes submitted close together (in
 * the same event-loop turn, or within `windowMs`) run in ONE `BEGIN IMMEDIATE … COMMIT`, and a
 * failing item is rolled back alone: the batch first runs without savepoints (the common case,
 * every item succeeds); if an item throws, the whole attempt is rolled back and the batch runs
 * again from the start with each item inside its own SAVEPOINT (a batch of one just reports its
 * failure). So a job may run twice and must act only through the connection. Every promise
 * settles only after the COMMIT returned, so with synchronous=FULL a resolved write is on disk;
 * the fsync cost (~2 ms here) is shared by the whole batch.
 *
 * With a `CommitSyncer` (sqlite.ts uses one for on-disk WAL databases) the COMMIT itself does
 * not fsync (synchronous=NORMAL): the syncer makes the WAL durable off the event loop (fsync on
 * the libuv thread pool) and a write settles only after a sync that started after its COMMIT.
 * One sync covers every commit before it, so syncs coalesce under load, and the thread keeps
 * working (crypto, HTTP) instead of blocking ~2 ms per commit.
 *
 * Committed-but-not-yet-synced rows are visible to reads on the connection, so reads go
 * through `durableRead`: a result that may depend on an unsynced commit is released only once
 * that commit is durable. Nothing is ever answered from state a power loss could take back.
 */
import type Database from 'better-sqlite3';

/** Makes everything committed so far durable, asynchronously. */
export interface CommitSyncer {
  sync(done: (err: Error | null) => void): void;
}

/** When a write may settle: always after its sync, or decided from its result. */
export type Durability = boolean | ((value: unknown) => boolean);

interface Job {
  run: () => unknown;
  durable: Durability;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

export class GroupCommitter {
  private queue: Job[] = [];
  private scheduled = false;
  private readonly begin: Database.Statement;
  private readonly commit: Database.Statement;
  private readonly rollback: Database.Statement;
  private readonly savepoint: Database.Statement;
  private readonly release: Database.Statement;
  private readonly rollbackTo: Database.Statement;
  /** Sequence number of the last COMMIT, and the last one known durable. */
  private committedSeq = 0;
  private syncedSeq = 0;
  private syncing = false;
  private waiters: Array<{ seq: number; done: (err: Error | null) => void }> = [];
  writes = 0;
  commits = 0;
  syncs = 0;

  constructor(
    private readonly db: Database.Database,
    private readonly windowMs = 0,
    private readonly maxBatch = 2000,
    private readonly syncer?: CommitSyncer,
    /** Called whenever work of a job is rolled back (a cache of what it wrote is stale). */
    private readonly onUndo?: () => void,
  ) {
    this.begin = db.prepare('BEGIN IMMEDIATE');
    this.commit = db.prepare('COMMIT');
    this.rollback = db.prepare('ROLLBACK');
    this.savepoint = db.prepare('SAVEPOINT item');
    this.release = db.prepare('RELEASE item');
    this.rollbackTo = db.prepare('ROLLBACK TO item');
  }

  /**
   * Queues `fn` (synchronous, uses the shared connection; it may run a second time after its
   * first run was rolled back, so it must act only through the connection); resolves with its
   * result after COMMIT and, with a syncer, once that COMMIT is durable. `durable` false (or a
   * predicate on the result returning false) settles at COMMIT: only for intermediate state
   * that no reply depends on — a later durable write's sync covers it, the WAL being sequential.
   */
  submit<T>(fn: () => T, o: { durable?: boolean | ((value: T) => boolean) } = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({
        run: fn,
        durable: (o.durable as Durability | undefined) ?? true,
        resolve: resolve as (v: unknown) => void,
        reject,
      });
      if (!this.scheduled) {
        this.scheduled = true;
        if (this.windowMs > 0) setTimeout(() => this.flush(), this.windowMs);
        else setImmediate(() => this.flush());
      }
    });
  }

  /**
   * Runs a read now and releases its result once everything committed so far is durable (at
   * once when nothing is waiting for a sync).
   */
  durableRead<T>(fn: () => T): Promise<T> {
    let value: T;
    try {
      value = fn();
    } catch (e) {
      return Promise.reject(e);
    }
    if (!this.syncer || this.syncedSeq >= this.committedSeq) return Promise.resolve(value);
    return new Promise<T>((resolve, reject) =>
      this.afterSync(this.committedSeq, (err) => (err ? reject(err) : resolve(value))),
    );
  }

  /** Resolves when everything committed so far is durable. */
  whenSynced(): Promise<void> {
    if (!this.syncer || this.syncedSeq >= this.committedSeq) return Promise.resolve();
    return new Promise((resolve) => this.afterSync(this.committedSeq, () => resolve()));
  }

  /** Calls `done` once commit `seq` is durable (or its sync failed). */
  private afterSync(seq: number, done: (err: Error | null) => void): void {
    if (seq <= this.syncedSeq) {
      done(null);
      return;
    }
    this.waiters.push({ seq, done });
    this.startSync();
  }

  /** Starts one sync covering every commit so far, unless one is running. */
  private startSync(): void {
    if (this.syncing || !this.syncer || this.waiters.length === 0) return;
    const target = this.committedSeq;
    this.syncing = true;
    this.syncer.sync((err) => {
      this.syncing = false;
      this.syncs++;
      if (!err) this.syncedSeq = Math.max(this.syncedSeq, target);
      const covered = this.waiters.filter((w) => w.seq <= target);
      this.waiters = this.waiters.filter((w) => w.seq > target);
      for (const w of covered) w.done(err);
      this.startSync();
    });
  }

  /** Runs everything queued now (also used by close()). */
  flush(): void {
    this.scheduled = false;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.runBatch(batch);
    }
  }

  /** Runs each job of a batch inside its own SAVEPOINT (inside the batch's transaction). */
  private runItems(batch: readonly Job[], outcomes: Outcome[]): void {
    for (const job of batch) {
      this.savepoint.run();
      try {
        const value = job.run();
        this.release.run();
        outcomes.push({ ok: true, value });
      } catch (error) {
        // Undo this item only; the others in the batch still commit.
        this.rollbackTo.run();
        this.onUndo?.();
        this.release.run();
        outcomes.push({ ok: false, error });
      }
    }
  }

  private runBatch(batch: Job[]): void {
    const outcomes: Outcome[] = [];
    try {
      this.begin.run();
      // Optimistic: every job straight inside the transaction, no savepoints (each would cost
      // two statements and a copy of every page it changes, spilled to a temporary file past
      // 64 KiB). Almost always every job succeeds.
      let failed = false;
      for (const job of batch) {
        try {
          outcomes.push({ ok: true, value: job.run() });
        } catch (error) {
          outcomes.push({ ok: false, error });
          failed = true;
          break;
        }
      }
      if (!failed) this.commit.run();
      else {
        // A job threw: undo the whole attempt. Alone in its batch, its failure is the outcome;
        // otherwise run the batch again from the start, each job inside its own SAVEPOINT, so
        // the failing one is rolled back alone and the others commit.
        if (this.db.inTransaction) this.rollback.run();
        this.onUndo?.();
        if (batch.length > 1) {
          outcomes.length = 0;
          this.begin.run();
          this.runItems(batch, outcomes);
          this.commit.run();
        }
      }
    } catch (e) {
      // BEGIN, a savepoint or COMMIT itself failed (busy past the timeout, disk full, I/O
      // error): nothing of this batch is committed, so every caller gets the error.
      if (this.db.inTransaction) {
        try {
          this.rollback.run();
        } catch {
          // the connection already rolled back
        }
      }
      this.onUndo?.();
      for (const j of batch) j.reject(e);
      return;
    }
    this.commits++;
    this.writes += batch.length;
    const seq = ++this.committedSeq;
    const durableOnes: number[] = [];
    batch.forEach((j, i) => {
      const o = outcomes[i] as Outcome;
      const durable =
        this.syncer !== undefined &&
        (typeof j.durable === 'function' ? !o.ok || j.durable(o.value) : j.durable);
      if (durable) durableOnes.push(i);
      else if (o.ok) j.resolve(o.value);
      else j.reject(o.error);
    });
    if (durableOnes.length === 0) return;
    this.afterSync(seq, (err) =>
      durableOnes.forEach((i) => {
        const j = batch[i] as Job;
        const o = outcomes[i] as Outcome;
        // Committed but not known to be durable: nobody may be told it succeeded.
        if (err) j.reject(err);
        else if (o.ok) j.resolve(o.value);
        else j.reject(o.error);
      }),
    );
  }
}
