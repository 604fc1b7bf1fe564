/**
 * Group commit for better-sqlite3 (synchronous driver). Writes submitted close together (in
 * the same event-loop turn, or within `windowMs`) run in ONE `BEGIN IMMEDIATE … COMMIT`, each
 * inside its own SAVEPOINT so a failing item is rolled back alone. Every promise settles only
 * after the COMMIT returned, so with synchronous=FULL a resolved write is on disk; the fsync
 * cost (~2 ms here) is shared by the whole batch.
 *
 * With a `CommitSyncer` (sqlite.ts uses one for on-disk WAL databases) the COMMIT itself does
 * not fsync (synchronous=NORMAL) and the promises of a batch settle only after the syncer
 * made the WAL durable off the event loop (fsync on the libuv thread pool). One fsync covers
 * every batch committed before it started, so syncs coalesce under load, and the thread keeps
 * working (crypto, HTTP) instead of blocking ~2 ms per commit.
 */
import type Database from 'better-sqlite3';

/** Makes everything committed so far durable, asynchronously. */
export interface CommitSyncer {
  sync(done: (err: Error | null) => void): void;
}

interface Job {
  run: () => unknown;
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
  /** Settlers of committed batches waiting for the next sync. */
  private unsynced: Array<(err: Error | null) => void> = [];
  private syncing = false;
  private idleWaiters: Array<() => void> = [];
  writes = 0;
  commits = 0;
  syncs = 0;

  constructor(
    private readonly db: Database.Database,
    private readonly windowMs = 0,
    private readonly maxBatch = 2000,
    private readonly syncer?: CommitSyncer,
  ) {
    this.begin = db.prepare('BEGIN IMMEDIATE');
    this.commit = db.prepare('COMMIT');
    this.rollback = db.prepare('ROLLBACK');
    this.savepoint = db.prepare('SAVEPOINT item');
    this.release = db.prepare('RELEASE item');
    this.rollbackTo = db.prepare('ROLLBACK TO item');
  }

  /** Queues `fn` (synchronous, uses the shared connection); resolves with its result after COMMIT. */
  submit<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run: fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        if (this.windowMs > 0) setTimeout(() => this.flush(), this.windowMs);
        else setImmediate(() => this.flush());
      }
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

  private runBatch(batch: Job[]): void {
    const outcomes: Outcome[] = [];
    try {
      this.begin.run();
      for (const job of batch) {
        this.savepoint.run();
        try {
          const value = job.run();
          this.release.run();
          outcomes.push({ ok: true, value });
        } catch (error) {
          // Undo this item only; the others in the batch still commit.
          this.rollbackTo.run();
          this.release.run();
          outcomes.push({ ok: false, error });
        }
      }
      this.commit.run();
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
      for (const j of batch) j.reject(e);
      return;
    }
    this.commits++;
    this.writes += batch.length;
    const settle = (syncError: Error | null) =>
      batch.forEach((j, i) => {
        const o = outcomes[i] as Outcome;
        // Committed but not known to be durable: nobody may be told it succeeded.
        if (syncError) j.reject(syncError);
        else if (o.ok) j.resolve(o.value);
        else j.reject(o.error);
      });
    if (!this.syncer) {
      settle(null);
      return;
    }
    this.unsynced.push(settle);
    this.startSync();
  }

  /** Starts one sync for every batch committed so far, unless one is running. */
  private startSync(): void {
    if (this.syncing || !this.syncer) return;
    if (this.unsynced.length === 0) {
      for (const w of this.idleWaiters.splice(0)) w();
      return;
    }
    const group = this.unsynced;
    this.unsynced = [];
    this.syncing = true;
    this.syncer.sync((err) => {
      this.syncing = false;
      this.syncs++;
      for (const settle of group) settle(err);
      this.startSync();
    });
  }

  /** Resolves when every committed batch has been synced and settled. */
  whenSynced(): Promise<void> {
    if (!this.syncing && this.unsynced.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }
}
