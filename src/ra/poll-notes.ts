/**
 * The last poll of a pending request (`transactions.last_poll_at`, shown by the console and
 * `GET /admin/pending`), recorded off the reply path and coalesced per transaction.
 *
 * A last-poll time needs neither durability nor per-poll precision, so a poll does not wait
 * for it and does not write it every time: the first poll of a transaction in a window of
 * `intervalMs` is written at once (not awaited), later polls in that window only remember their
 * time, and the newest of them is written when the window ends (one timer for all
 * transactions). A transaction is thus written at most twice per window by each engine (the
 * HTTP thread and every worker thread has its own), whatever its device's pace, and a device
 * polling slower than the window gets its exact time. A failed write is logged (once per run
 * of failures), never the poll's failure; a remembered time not yet written when the process
 * stops is lost (the console then shows the previous poll).
 *
 * Memory: the transactions written in the current and the previous window (two maps rotated
 * as time passes, so nothing older lingers) and the remembered times — at most the pending
 * transactions polled within two windows.
 */
import type { Store } from '../store/index.js';
import type { ServiceLogger } from './types.js';

/** Default window: a transaction's last-poll time is written at most twice per 10 s. */
export const POLL_NOTE_INTERVAL_MS = 10_000;

/** A one-shot timer (injected in tests); `unref`'d so it never keeps the process alive. */
export type PollNoteTimer = (fn: () => void, ms: number) => void;

const nodeTimer: PollNoteTimer = (fn, ms) => {
  setTimeout(fn, ms).unref();
};

export interface PollNotesOptions {
  store: Pick<Store, 'notePoll'>;
  now: () => Date;
  intervalMs?: number;
  logger?: ServiceLogger;
  timer?: PollNoteTimer;
}

export class PollNotes {
  private readonly intervalMs: number;
  private readonly timer: PollNoteTimer;
  /** Transactions written in the current window (started at `windowStart`) and the one before. */
  private current = new Map<string, number>();
  private previous = new Map<string, number>();
  private windowStart = -Infinity;
  /** Polls inside a window after its first write: the newest time, written when the timer fires. */
  private later = new Map<string, Date>();
  private armed = false;
  /** The last write failed (its warning is logged; the next ones are not until one succeeds). */
  private failing = false;
  /** Writes started (tests, benchmarks). */
  writes = 0;

  constructor(private readonly o: PollNotesOptions) {
    this.intervalMs = o.intervalMs ?? POLL_NOTE_INTERVAL_MS;
    this.timer = o.timer ?? nodeTimer;
  }

  /** Records that the device polled `transactionId` now. Never throws, never waits. */
  note(transactionId: string): void {
    const at = this.o.now();
    const t = at.getTime();
    if (t - this.windowStart >= this.intervalMs) {
      // Rotate: what was written two windows ago can no longer suppress a write.
      this.previous = t - this.windowStart >= 2 * this.intervalMs ? new Map() : this.current;
      this.current = new Map();
      this.windowStart = t;
    }
    const last = this.current.get(transactionId) ?? this.previous.get(transactionId);
    if (last !== undefined && t - last < this.intervalMs) {
      this.later.set(transactionId, at);
      if (!this.armed) {
        this.armed = true;
        this.timer(() => this.flush(), this.intervalMs);
      }
      return;
    }
    this.later.delete(transactionId);
    this.write(transactionId, at);
  }

  /** Writes the remembered times now (the timer's job; also for a clean shutdown). */
  flush(): void {
    this.armed = false;
    const due = this.later;
    this.later = new Map();
    for (const [id, at] of due) this.write(id, at);
  }

  private write(transactionId: string, at: Date): void {
    this.current.set(transactionId, at.getTime());
    this.writes++;
    this.o.store.notePoll(transactionId, at).then(
      () => (this.failing = false),
      (e: unknown) => {
        // One line per run of failures (a closed or broken store fails every write).
        if (this.failing) return;
        this.failing = true;
        this.o.logger?.warn({ err: e, transactionId }, 'cannot record the last poll of a pending request');
      },
    );
  }
}
