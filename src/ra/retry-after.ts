/**
 * The Retry-After hint of a PENDING answer, adapted to the approval queue (docs/server.md
 * "Manual approval"): devices poll a pending request until an operator decides, and every poll
 * costs the server a signature, so a large queue nobody works on should be polled rarely,
 * and a small or busy one at the configured pace.
 *
 *   open < LARGE_QUEUE (100)          → base (`--retry-after`, default 60 s)
 *   otherwise                         → min(max, max(base × 2^⌊idle / IDLE_PERIOD⌋, ⌈open / POLL_BUDGET⌉))
 *
 * `idle` is the time since the last operator decision (`scepter pending approve|reject` or the
 * admin API record it in the store, setting LAST_DECISION_SETTING; before any, since this
 * service started), IDLE_PERIOD 15 minutes; POLL_BUDGET 20 polls per second is what the whole
 * queue may cost when polled at the hint (100,000 pending → 5,000 s, i.e. the max); `max` is
 * `--max-retry-after` (default 3600 s; equal to base: never adapts). A decision brings the
 * hint back to base within one refresh.
 *
 * The inputs (open pending count, last decision) are read from the store at most once per
 * REFRESH_MS (and by the lifecycle maintenance), never on the poll's path: `current()` is a
 * field read.
 */
import type { Store } from '../store/index.js';

/** Store setting holding the time (ISO 8601) of the last operator decision on a pending request. */
export const LAST_DECISION_SETTING = 'scepter.last-decision';

/** Open pending requests from which the hint grows. */
export const LARGE_QUEUE = 100;
/** Without a decision for each IDLE_PERIOD_SECONDS the hint doubles (large queue only). */
export const IDLE_PERIOD_SECONDS = 900;
/** Polls per second the whole queue may cost at the hint. */
export const POLL_BUDGET = 20;
/** Default longest hint, seconds. */
export const DEFAULT_MAX_RETRY_AFTER = 3600;
/** How often the inputs are read from the store. */
export const REFRESH_MS = 30_000;

export interface RetryAfterInputs {
  /** Open pending requests. */
  open: number;
  /** Seconds since the last decision (or since the service started). */
  idleSeconds: number;
}

/** The hint for `inputs`, between `base` and `max` seconds (see the module comment). */
export function adaptiveRetryAfter(base: number, max: number, i: RetryAfterInputs): number {
  if (i.open < LARGE_QUEUE || max <= base) return base;
  const doublings = Math.min(30, Math.floor(Math.max(0, i.idleSeconds) / IDLE_PERIOD_SECONDS));
  const backoff = base * 2 ** doublings;
  const spread = Math.ceil(i.open / POLL_BUDGET);
  return Math.min(max, Math.max(base, backoff, spread));
}

/** Records an operator decision (called by src/ra/operator.ts). */
export async function recordDecision(store: Store, at: Date): Promise<void> {
  await store.setSetting(LAST_DECISION_SETTING, at.toISOString());
}

/** The current hint of one enrollment service, refreshed from the store in the background. */
export class RetryAfterHint {
  private value: number;
  private readAt = -Infinity;
  private refreshing: Promise<void> | undefined;
  private readonly startedAt: number;

  constructor(
    private readonly store: Store,
    readonly baseSeconds: number,
    readonly maxSeconds: number,
    private readonly now: () => Date,
  ) {
    this.value = baseSeconds;
    this.startedAt = now().getTime();
  }

  /** The hint now (no I/O); starts a background refresh when the inputs are older than REFRESH_MS. */
  current(): number {
    if (this.maxSeconds > this.baseSeconds && this.now().getTime() - this.readAt >= REFRESH_MS)
      void this.refresh().catch(() => undefined);
    return this.value;
  }

  /** Reads the open count and the last decision from the store and recomputes the hint. */
  refresh(): Promise<void> {
    this.refreshing ??= this.read().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async read(): Promise<void> {
    const t = this.now().getTime();
    this.readAt = t;
    const [page, last] = await Promise.all([
      this.store.listTransactions({ state: 'pending', limit: 0 }),
      this.store.getSetting(LAST_DECISION_SETTING),
    ]);
    const decided = last === null ? NaN : Date.parse(last);
    const since = Number.isFinite(decided) ? decided : this.startedAt;
    this.value = adaptiveRetryAfter(this.baseSeconds, this.maxSeconds, {
      open: page.total,
      idleSeconds: (t - since) / 1000,
    });
  }
}
