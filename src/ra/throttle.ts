/**
 * Throttling of challenge failures (docs/server.md "Throttling challenge failures").
 *
 * Two budgets per fixed window (default 15 minutes; windows start at multiples of the length
 * since the epoch, so every process agrees on them):
 *
 * - per source: `maxFailures` (default 10) failed challenges from one client address — an IPv4
 *   address, or the /64 of an IPv6 address (one host usually holds a whole /64) — lock that
 *   source until the window ends;
 * - global: `maxGlobalFailures` (default 200) failed challenges from all sources together lock
 *   every source until the window ends (many addresses guessing together), logged once per
 *   window and process.
 *
 * While locked, an initial enrollment is answered FAILURE badRequest ("too many failed
 * attempts") WITHOUT its challenge being checked, so a locked source learns nothing from a
 * guess; those refusals are not counted, and the lock ends with the window whatever arrives
 * meanwhile (a trickle of guesses cannot extend it). So a correct challenge from a locked
 * address (a device behind the same NAT as an attacker) is refused for the rest of the window
 * at most, never longer; each window allows at most `maxFailures` guesses per source and
 * `maxGlobalFailures` overall. Renewals, polls and resends of a known transaction carry no
 * challenge and are never throttled. Behind a reverse proxy, `--trusted-proxy` makes the
 * client address the one the proxy reports (src/server/client-address.ts); otherwise every
 * client would share the proxy's budget.
 *
 * The counters live in the Store (`incrementCounter`/`readCounters`), so all workers and all
 * instances on one store share one budget; without a store (tests, a bare service) an in-memory
 * counter with at most `maxKeys` sources is used.
 *
 * Where it applies: the RA asks `blocked` (as its `ChallengeLock`, src/ra/types.ts) only where
 * a challenge would be checked — an initial enrollment that passed its other policies — and
 * answers a locked source with the throttled FAILURE before looking at its challenge; polls,
 * renewals, resends and GetCert never read the counters. The RA flags answers whose challenge
 * failed (`log.challengeFailure`); `ThrottledScepService`, in front of the service on the HTTP
 * thread, counts those (the only ones counted).
 */
import { isIP } from 'node:net';
import type { Store } from '../store/index.js';
import type { HttpAnswer, RequestContext, ScepAnswer, ScepService } from './types.js';

export interface ThrottleOptions {
  /** Failures per source within a window that lock it (0 disables throttling). Default 10. */
  maxFailures?: number;
  /** Failures from all sources within a window that lock everyone (0: no global budget). Default 200. */
  maxGlobalFailures?: number;
  /** Window length in seconds. Default 900 (15 minutes). */
  windowSeconds?: number;
  /** In-memory counting only: most sources remembered per window. Default 10 000. */
  maxKeys?: number;
  /** Clock, ms (tests). */
  now?: () => number;
}

export const DEFAULT_MAX_FAILURES = 10;
export const DEFAULT_MAX_GLOBAL_FAILURES = 200;
export const DEFAULT_WINDOW_SECONDS = 900;

/** Counter scopes in the store. */
const SCOPE_PREFIX = 'challenge-failure:';
const GLOBAL_SCOPE = `${SCOPE_PREFIX}*`;

/** Where the lock events are logged (a pino logger fits). */
export interface ThrottleLogger {
  warn(obj: object, msg: string): void;
}

/** Counters younger than this are never pruned (the longest window any limiter uses). */
export const COUNTER_RETENTION_MS = 86_400_000;

/** Why a source is locked. */
export type ThrottleState = 'source' | 'global';

/** Where the failure counts are kept. */
export interface FailureCounter {
  /** Adds one to `scope` in the window starting at `windowStart`; returns the new count. */
  increment(scope: string, windowStart: number): Promise<number>;
  /** Counts of `scopes` in that window, in order (0 when absent). */
  read(scopes: readonly string[], windowStart: number): Promise<number[]>;
  /** Forgets windows that started before `before`. */
  prune(before: number): Promise<void>;
}

/** Counts in the Store: shared by every worker and instance on it. */
export function storeCounter(store: Store): FailureCounter {
  return {
    increment: (scope, windowStart) => store.incrementCounter(scope, windowStart),
    read: (scopes, windowStart) => store.readCounters(scopes, windowStart),
    prune: async (before) => void (await store.pruneCounters(before)),
  };
}

/** Counts in this process only (no store): at most `maxKeys` scopes per window. */
export function memoryCounter(maxKeys = 10_000): FailureCounter {
  let window = -1;
  const counts = new Map<string, number>();
  const at = (windowStart: number): Map<string, number> => {
    if (windowStart !== window) {
      window = windowStart;
      counts.clear();
    }
    return counts;
  };
  return {
    increment: async (scope, windowStart) => {
      const m = at(windowStart);
      const n = (m.get(scope) ?? 0) + 1;
      // The global scope is always kept; a full map drops the oldest source.
      if (!m.has(scope) && m.size >= maxKeys) {
        for (const k of m.keys()) {
          if (k === GLOBAL_SCOPE) continue;
          m.delete(k);
          break;
        }
      }
      m.set(scope, n);
      return n;
    },
    read: async (scopes, windowStart) => {
      const m = windowStart === window ? counts : new Map<string, number>();
      return scopes.map((s) => m.get(s) ?? 0);
    },
    prune: async () => undefined,
  };
}

/**
 * The throttling key of a client address: IPv4 as is (IPv4-mapped IPv6 too), IPv6 by its /64,
 * anything else (no address) as one shared key.
 */
export function sourceKey(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  let a = address.trim().toLowerCase();
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(a);
  if (mapped) return mapped[1]!;
  const family = isIP(a);
  if (family === 4) return a;
  if (family !== 6) return 'unknown';
  // Expand `::` and keep the first four groups (the /64).
  const [head = '', tail] = a.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  // A trailing dotted IPv4 counts as two groups.
  const groups = (list: string[]): number => list.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
  const full = tail === undefined ? h : [...h, ...Array<string>(8 - groups(h) - groups(t)).fill('0'), ...t];
  return (
    full
      .slice(0, 4)
      .map((g) => (g.includes('.') ? '0' : g.replace(/^0+(?=.)/, '')))
      .join(':') + '::/64'
  );
}

export class FailureThrottle {
  readonly maxFailures: number;
  readonly maxGlobalFailures: number;
  readonly windowMs: number;
  private readonly now: () => number;
  private readonly counter: FailureCounter;
  private prunedBefore = 0;
  private globalLogged = -1;

  constructor(
    o: ThrottleOptions = {},
    counter?: FailureCounter,
    private readonly logger?: ThrottleLogger,
  ) {
    this.maxFailures = o.maxFailures ?? DEFAULT_MAX_FAILURES;
    this.maxGlobalFailures = o.maxGlobalFailures ?? DEFAULT_MAX_GLOBAL_FAILURES;
    this.windowMs = (o.windowSeconds ?? DEFAULT_WINDOW_SECONDS) * 1000;
    this.now = o.now ?? Date.now;
    const maxKeys = o.maxKeys ?? 10_000;
    if (!Number.isInteger(this.maxFailures) || this.maxFailures < 0)
      throw new RangeError('maxFailures must be a whole number ≥ 0');
    if (!Number.isInteger(this.maxGlobalFailures) || this.maxGlobalFailures < 0)
      throw new RangeError('maxGlobalFailures must be a whole number ≥ 0');
    if (!Number.isInteger(this.windowMs) || this.windowMs <= 0)
      throw new RangeError('the throttling window must be a positive number of milliseconds');
    if (!Number.isInteger(maxKeys) || maxKeys < 1) throw new RangeError('maxKeys must be ≥ 1');
    this.counter = counter ?? memoryCounter(maxKeys);
  }

  get enabled(): boolean {
    return this.maxFailures > 0;
  }

  /** Start (ms) of the window `t` falls in. */
  windowStart(t = this.now()): number {
    return t - (t % this.windowMs);
  }

  /** Whether `address` is locked in the current window, and why (undefined: not locked). */
  async state(address: string | undefined): Promise<ThrottleState | undefined> {
    if (!this.enabled) return undefined;
    const w = this.windowStart();
    const [source = 0, global = 0] = await this.counter.read(
      [SCOPE_PREFIX + sourceKey(address), GLOBAL_SCOPE],
      w,
    );
    if (source >= this.maxFailures) return 'source';
    if (this.maxGlobalFailures > 0 && global >= this.maxGlobalFailures) return 'global';
    return undefined;
  }

  /** True while `address` is locked (per source or globally). */
  async blocked(address: string | undefined): Promise<boolean> {
    return (await this.state(address)) !== undefined;
  }

  /** Records one failed challenge from `address`. */
  async fail(address: string | undefined): Promise<void> {
    if (!this.enabled) return;
    const w = this.windowStart();
    const key = sourceKey(address);
    const [source, global = 0] = await Promise.all([
      this.counter.increment(SCOPE_PREFIX + key, w),
      ...(this.maxGlobalFailures > 0 ? [this.counter.increment(GLOBAL_SCOPE, w)] : []),
    ]);
    const until = new Date(w + this.windowMs).toISOString();
    if (source === this.maxFailures)
      this.logger?.warn({ source: key, until }, 'challenge failures: source locked until the window ends');
    if (this.maxGlobalFailures > 0 && global >= this.maxGlobalFailures && this.globalLogged !== w) {
      this.globalLogged = w;
      this.logger?.warn(
        { failures: global, until },
        'challenge failures: global budget exhausted, every initial enrollment is throttled until the window ends',
      );
    }
    // Once per window and process: drop counters of windows that ended long ago. The table is
    // shared with other limiters (windows up to a day), so only what is older than that goes.
    if (this.prunedBefore < w) {
      this.prunedBefore = w;
      await this.counter.prune(w - Math.max(this.windowMs, COUNTER_RETENTION_MS)).catch(() => undefined);
    }
  }
}

/** A ScepService that counts the challenge failures of the service behind it (see above). */
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
    const answer = await this.inner.pkiOperation(message, ctx);
    if (answer.log.challengeFailure) await this.throttle.fail(ctx.remoteAddress);
    return answer;
  }
}
