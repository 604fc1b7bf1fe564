/**
 * Throttling of challenge failures per source address (docs/conformance.md §5.1, case 31).
 *
 * `FailureThrottle` remembers, per key, the times of the last `maxFailures` failures: a key is
 * blocked while `maxFailures` of them lie within the last `windowSeconds` (sliding window), so a
 * source gets at most `maxFailures` challenge guesses per window. Memory is bounded: at most
 * `maxKeys` keys (least recently touched evicted first), `maxFailures` timestamps each.
 *
 * `ThrottledScepService` applies it in front of a ScepService — in the HTTP thread, so one
 * counter covers every enrollment worker of the process (`--workers N`). It only marks the
 * request (`ctx.challengeThrottled`); the RA answers a marked initial enrollment FAILURE
 * badRequest before looking at its challenge, and flags answers whose challenge failed
 * (`log.challengeFailure`), which are the only ones counted: renewals, polls, resends of a known
 * transaction and every other failure never are. Several instances throttle independently.
 */
import type { HttpAnswer, RequestContext, ScepAnswer, ScepService } from './types.js';

export interface ThrottleOptions {
  /** Failures within the window that block a source (0 disables throttling). Default 10. */
  maxFailures?: number;
  /** Window length in seconds. Default 900 (15 minutes). */
  windowSeconds?: number;
  /** Most sources remembered (least recently failed evicted first). Default 10 000. */
  maxKeys?: number;
  /** Clock (tests). */
  now?: () => number;
}

export class FailureThrottle {
  readonly maxFailures: number;
  readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;
  /** key → failure times (ms), oldest first; Map order = least recently failed first. */
  private readonly failures = new Map<string, number[]>();

  constructor(o: ThrottleOptions = {}) {
    this.maxFailures = o.maxFailures ?? 10;
    this.windowMs = (o.windowSeconds ?? 900) * 1000;
    this.maxKeys = o.maxKeys ?? 10_000;
    this.now = o.now ?? Date.now;
    if (!Number.isInteger(this.maxFailures) || this.maxFailures < 0)
      throw new RangeError('maxFailures must be a whole number ≥ 0');
    if (!Number.isFinite(this.windowMs) || this.windowMs <= 0)
      throw new RangeError('the throttling window must be positive');
    if (!Number.isInteger(this.maxKeys) || this.maxKeys < 1) throw new RangeError('maxKeys must be ≥ 1');
  }

  get enabled(): boolean {
    return this.maxFailures > 0;
  }

  /** Number of sources remembered. */
  get size(): number {
    return this.failures.size;
  }

  private recent(key: string, now: number): number[] | undefined {
    const list = this.failures.get(key);
    if (!list) return undefined;
    while (list.length > 0 && now - list[0]! >= this.windowMs) list.shift();
    if (list.length === 0) {
      this.failures.delete(key);
      return undefined;
    }
    return list;
  }

  /** True while `key` has `maxFailures` failures within the window. */
  blocked(key: string): boolean {
    if (!this.enabled) return false;
    const list = this.recent(key, this.now());
    return list !== undefined && list.length >= this.maxFailures;
  }

  /** Records one failure of `key`. */
  fail(key: string): void {
    if (!this.enabled) return;
    const now = this.now();
    const list = this.recent(key, now) ?? [];
    list.push(now);
    if (list.length > this.maxFailures) list.shift();
    this.failures.delete(key);
    this.failures.set(key, list);
    while (this.failures.size > this.maxKeys) {
      const oldest = this.failures.keys().next().value;
      if (oldest === undefined) break;
      this.failures.delete(oldest);
    }
  }
}

/** A ScepService that throttles challenge failures per source address (see above). */
export class ThrottledScepService implements ScepService {
  constructor(
    private readonly inner: ScepService,
    readonly throttle: FailureThrottle,
  ) {}

  capabilities(): readonly string[] {
    return this.inner.capabilities();
  }

  getCaCaps(): HttpAnswer {
    return this.inner.getCaCaps();
  }

  getCaCert(message?: string): HttpAnswer {
    return this.inner.getCaCert(message);
  }

  getNextCaCert(message?: string): HttpAnswer | undefined {
    return this.inner.getNextCaCert?.(message);
  }

  async pkiOperation(message: Buffer, ctx: RequestContext): Promise<ScepAnswer> {
    const source = ctx.remoteAddress ?? '';
    const marked = this.throttle.blocked(source) ? { ...ctx, challengeThrottled: true } : ctx;
    const answer = await this.inner.pkiOperation(message, marked);
    if (answer.log.challengeFailure) this.throttle.fail(source);
    return answer;
  }
}
