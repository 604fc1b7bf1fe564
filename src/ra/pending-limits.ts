/**
 * Limits on the manual-approval queue (docs/server.md "Manual approval and polling"): without
 * them anyone could fill the queue with unauthenticated requests.
 *
 * - per address: at most `maxPerAddress` NEW pending requests per fixed window (default 100 per
 *   minute) from one client address (IPv6: its /64, as for challenge throttling); more get a
 *   FAILURE badRequest decision;
 * - global: at most `maxOpen` open pending requests in the store (default 10 000); over it a
 *   new request gets the `overloaded` marker, which the HTTP layer answers with 503 and
 *   `Retry-After` (the client may come back; an operator has work to do).
 *
 * Both are counted through the Store (`incrementCounter` for the rate, the pending count of
 * `listTransactions`), so every worker and instance on one store shares them. Only NEW
 * pending requests are to be checked: polls and resends of a known transaction never are.
 */
import { FailInfo } from '../scep/types.js';
import type { Store } from '../store/index.js';
import type { Decision } from './decision.js';
import { sourceKey, type ThrottleLogger } from './throttle.js';
import type { RequestContext } from './types.js';

export interface PendingLimitOptions {
  /** New pending requests per address and window (0: no per-address limit). Default 100. */
  maxPerAddress?: number;
  /** Window of the per-address rate, seconds. Default 60. */
  windowSeconds?: number;
  /** Open pending requests in the store at most (0: no cap). Default 10 000. */
  maxOpen?: number;
  /** Retry-After (seconds) suggested when the queue is full. Default 300. */
  retryAfterSeconds?: number;
  /**
   * The profile these limits belong to: the open-request cap counts this profile's pending
   * requests only, and the per-address rate is counted per profile. Absent: the whole store
   * (one-profile servers, and the counters of the default profile keep their old keys).
   */
  profile?: string;
  /** Clock, ms (tests). */
  now?: () => number;
}

export const DEFAULT_MAX_PENDING_PER_ADDRESS = 100;
export const DEFAULT_PENDING_WINDOW_SECONDS = 60;
export const DEFAULT_MAX_OPEN_PENDING = 10_000;

/** failInfoText for an address over its rate (no counts). */
export const PENDING_RATE_TEXT = 'too many certificate requests from this address; retry later';

/** HTTP 503 text when the queue of open pending requests is full. */
export const QUEUE_FULL_TEXT = 'the approval queue is full; retry later';

/** The queue is full: answer HTTP 503 with `Retry-After: retryAfterSeconds`. */
export interface PendingOverloaded {
  overloaded: true;
  retryAfterSeconds: number;
}

/** Counter scope prefix in the store. */
const SCOPE_PREFIX = 'pending-new:';

export class PendingLimits {
  readonly maxPerAddress: number;
  readonly windowMs: number;
  readonly maxOpen: number;
  readonly retryAfterSeconds: number;
  private readonly now: () => number;
  private fullLogged = false;
  private readonly profile: string | undefined;
  private readonly scope: string;

  constructor(
    private readonly store: Store,
    o: PendingLimitOptions = {},
    private readonly logger?: ThrottleLogger,
  ) {
    this.maxPerAddress = o.maxPerAddress ?? DEFAULT_MAX_PENDING_PER_ADDRESS;
    this.windowMs = (o.windowSeconds ?? DEFAULT_PENDING_WINDOW_SECONDS) * 1000;
    this.maxOpen = o.maxOpen ?? DEFAULT_MAX_OPEN_PENDING;
    this.retryAfterSeconds = o.retryAfterSeconds ?? 300;
    this.now = o.now ?? Date.now;
    this.profile = o.profile;
    this.scope =
      o.profile === undefined || o.profile === 'default' ? SCOPE_PREFIX : `${SCOPE_PREFIX}${o.profile}:`;
    for (const [name, v] of [
      ['maxPerAddress', this.maxPerAddress],
      ['maxOpen', this.maxOpen],
      ['retryAfterSeconds', this.retryAfterSeconds],
    ] as const)
      if (!Number.isInteger(v) || v < 0) throw new RangeError(`${name} must be a whole number ≥ 0`);
    if (!Number.isInteger(this.windowMs) || this.windowMs <= 0 || this.windowMs > 86_400_000)
      throw new RangeError('the pending window must be between 1 ms and one day');
  }

  /**
   * Call once for a request that is about to be queued as a NEW pending transaction (after the
   * transactionID was found unknown). Returns a FAILURE decision when its address is over its
   * rate, the overloaded marker when the queue is full, or undefined: go on and queue it.
   */
  async checkNewPending(ctx: RequestContext): Promise<Decision | PendingOverloaded | undefined> {
    const key = sourceKey(ctx.remoteAddress);
    if (this.maxPerAddress > 0) {
      const t = this.now();
      const n = await this.store.incrementCounter(this.scope + key, t - (t % this.windowMs));
      if (n > this.maxPerAddress) {
        if (n === this.maxPerAddress + 1)
          this.logger?.warn(
            { source: key },
            'pending requests: address over its rate, refused until the window ends',
          );
        return {
          status: 'FAILURE',
          failInfo: FailInfo.badRequest,
          text: PENDING_RATE_TEXT,
          limit: 'pending-rate',
        };
      }
    }
    if (this.maxOpen > 0) {
      const open = (
        await this.store.listTransactions({
          state: 'pending',
          limit: 0,
          ...(this.profile !== undefined ? { profile: this.profile } : {}),
        })
      ).total;
      if (open >= this.maxOpen) {
        if (!this.fullLogged)
          this.logger?.warn(
            { open, max: this.maxOpen, ...(this.profile !== undefined ? { profile: this.profile } : {}) },
            'pending requests: queue full, new requests answered 503',
          );
        this.fullLogged = true;
        return { overloaded: true, retryAfterSeconds: this.retryAfterSeconds };
      }
      this.fullLogged = false;
    }
    return undefined;
  }
}

/** Type guard for the overloaded marker. */
export function isPendingOverloaded(v: Decision | PendingOverloaded | undefined): v is PendingOverloaded {
  return v !== undefined && 'overloaded' in v;
}
