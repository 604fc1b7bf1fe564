/**
 * Prometheus metrics (text exposition format 0.0.4), written by hand: a handful of counters,
 * one histogram and some gauges do not need a client library.
 *
 * Request counters are fed on the HTTP thread from the same data as the one-line request log
 * (`observeRequest`, called by app.ts's onResponse hook), so they are exact with `--workers N`
 * without any cross-thread aggregation. Every label value comes from a fixed set (anything
 * else is `other`): no transactionID, subject, serial or other per-device value ever becomes a
 * label. The per-request cost is a few array increments: no allocation, no store query.
 *
 * Gauges that need the store (pending requests, CRL nextUpdate) are read at scrape time and
 * cached for `cacheSeconds` (default 15), so scraping never scans the store more often than that.
 */
import {
  constants as perfConstants,
  monitorEventLoopDelay,
  PerformanceObserver,
  type IntervalHistogram,
} from 'node:perf_hooks';
import type { ServiceStats } from '../ra/service.js';
import type { StoreStats } from '../store/index.js';
import type { ScepRequestLog } from './scep-routes.js';

/**
 * `operation` label values (`CRL` is `/crl`, `OCSP` is `/ocsp`, `other` anything else, e.g. an
 * unknown route).
 */
export const OPERATION_LABELS = [
  'GetCACaps',
  'GetCACert',
  'GetNextCACert',
  'PKIOperation',
  'CRL',
  'OCSP',
  'other',
] as const;
/**
 * `outcome` / `status` label values: the CertRep pkiStatus, `rejected` (HTTP 4xx), `overloaded`
 * (HTTP 503 because a server-wide limit is reached), `error` (any other HTTP 5xx).
 */
export const OUTCOME_LABELS = ['SUCCESS', 'FAILURE', 'PENDING', 'rejected', 'overloaded', 'error'] as const;
/** `limit` label values of `scepter_limit_refusals_total` (src/ra/decision.ts LimitName). */
export const LIMIT_LABELS = ['pending-rate', 'pending-queue', 'challenge-throttle'] as const;
/** `message_type` label values. */
export const MESSAGE_TYPE_LABELS = [
  'PKCSReq',
  'RenewalReq',
  'CertPoll',
  'GetCert',
  'GetCRL',
  'other',
] as const;
/** `fail_info` label values (`none` unless the status is FAILURE). */
export const FAIL_INFO_LABELS = [
  'none',
  'badAlg',
  'badMessageCheck',
  'badRequest',
  'badTime',
  'badCertId',
  'other',
] as const;
/** Upper bounds (seconds) of the request duration histogram buckets; `+Inf` is implied. */
export const DURATION_BUCKETS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
/** Operations of the health and metrics routes: logged at debug, never counted. */
export const OPS_OPERATIONS: ReadonlySet<string> = new Set(['health', 'metrics']);

/** Content-Type of the exposition. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const SKIP = -1;
/** The kinds of V8 collection node reports (perf_hooks `gc` entries), as metric labels. */
const GC_KINDS: readonly { flag: number; label: string }[] = [
  { flag: perfConstants.NODE_PERFORMANCE_GC_MINOR, label: 'minor' },
  { flag: perfConstants.NODE_PERFORMANCE_GC_MAJOR, label: 'major' },
  { flag: perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL, label: 'incremental' },
  { flag: perfConstants.NODE_PERFORMANCE_GC_WEAKCB, label: 'weakcb' },
];

const indexOf = (labels: readonly string[]): ReadonlyMap<string, number> =>
  new Map(labels.map((l, i) => [l, i]));
const OPERATION = new Map<string, number>([
  ...indexOf(OPERATION_LABELS),
  ['health', SKIP],
  ['metrics', SKIP],
]);
const OUTCOME = indexOf(OUTCOME_LABELS);
const MESSAGE_TYPE = indexOf(MESSAGE_TYPE_LABELS);
const FAIL_INFO = indexOf(FAIL_INFO_LABELS);

const N_OUT = OUTCOME_LABELS.length;
const N_FI = FAIL_INFO_LABELS.length;
const N_BUCKETS = DURATION_BUCKETS.length + 1; // + the +Inf bucket
const OP_OTHER = OPERATION_LABELS.indexOf('other');
const OP_PKI = OPERATION_LABELS.indexOf('PKIOperation');
const OUT_SUCCESS = OUTCOME_LABELS.indexOf('SUCCESS');
const OUT_FAILURE = OUTCOME_LABELS.indexOf('FAILURE');
const OUT_REJECTED = OUTCOME_LABELS.indexOf('rejected');
const OUT_ERROR = OUTCOME_LABELS.indexOf('error');
const OUT_OVERLOADED = OUTCOME_LABELS.indexOf('overloaded');
const LIMIT = indexOf(LIMIT_LABELS);
const MT_OTHER = MESSAGE_TYPE_LABELS.indexOf('other');
const FI_NONE = FAIL_INFO_LABELS.indexOf('none');
const FI_OTHER = FAIL_INFO_LABELS.indexOf('other');
/** Message types whose non-replayed SUCCESS is a new certificate (GetCert/GetCRL only fetch). */
const ISSUING = new Set(['PKCSReq', 'RenewalReq', 'CertPoll'].map((t) => MESSAGE_TYPE.get(t) as number));

/** Where the scrape-time values come from; every source is optional. */
export interface MetricsSources {
  /** Service counters (single DES); with `--workers` the pool already adds the workers' deltas. */
  serviceStats?: () => ServiceStats | undefined;
  /** Store write/commit counters. */
  storeStats?: () => StoreStats;
  /** Number of threads doing enrollment work (`--workers`; 1 = the HTTP thread itself). */
  workers?: () => number;
  /** notAfter of the current CA certificate. */
  caNotAfter?: () => Date | undefined;
  /** Pending (manual-approval) requests: a store query, cached. */
  pendingRequests?: () => Promise<number>;
  /** nextUpdate of the current CA's latest CRL (undefined: none yet): a store query, cached. */
  crlNextUpdate?: () => Promise<Date | undefined>;
  /** The configured profile names: the `profile` label's values (any other → `other`). */
  profileNames?: () => ReadonlySet<string>;
  /** The loaded configuration: its id, successful loads and failed reloads. */
  config?: () => { id: string; loads: number; failedReloads: number };
}

export interface ServerMetricsOptions {
  sources?: MetricsSources;
  /** How long store-derived gauges are reused, seconds (default 15). */
  cacheSeconds?: number;
  /** Longest wait for a store-derived gauge during a scrape, ms (default 2000; the last value is used then). */
  refreshTimeoutMs?: number;
}

/** A gauge read from the store at most once per cache period; concurrent scrapes share one read. */
class CachedValue {
  private value: number | undefined;
  private at = -Infinity;
  private running: Promise<void> | undefined;

  constructor(
    private readonly read: () => Promise<number | undefined>,
    private readonly ttlMs: number,
    private readonly timeoutMs: number,
  ) {}

  async get(): Promise<number | undefined> {
    if (performance.now() - this.at >= this.ttlMs) {
      this.running ??= this.read().then(
        (v) => {
          this.value = v;
          this.at = performance.now();
          this.running = undefined;
        },
        () => {
          // Keep the last value; retry at the next scrape. Readiness reports the store's health.
          this.running = undefined;
        },
      );
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.running,
        new Promise<void>((resolve) => (timer = setTimeout(resolve, this.timeoutMs))),
      ]);
      clearTimeout(timer);
    }
    return this.value;
  }
}

/** Formats a sample value (Prometheus accepts Go float syntax: NaN, +Inf, -Inf). */
function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

class Exposition {
  private readonly lines: string[] = [];

  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): this {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    return this;
  }

  sample(name: string, value: number, labels?: Record<string, string>): this {
    let l = '';
    if (labels) {
      const parts = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
      l = `{${parts.join(',')}}`;
    }
    this.lines.push(`${name}${l} ${num(value)}`);
    return this;
  }

  text(): string {
    return this.lines.join('\n') + '\n';
  }
}

/** The metrics of one server (one per `buildApp`). */
export class ServerMetrics {
  private readonly requests = new Float64Array(OPERATION_LABELS.length * N_OUT);
  private readonly pki = new Float64Array(MESSAGE_TYPE_LABELS.length * N_OUT * N_FI);
  private readonly buckets = new Float64Array(OPERATION_LABELS.length * N_BUCKETS);
  private readonly durationSum = new Float64Array(OPERATION_LABELS.length);
  private issued = 0;
  private internalErrors = 0;
  private readonly limitRefusals = new Float64Array(LIMIT_LABELS.length);
  private readonly sources: MetricsSources;
  private readonly pending: CachedValue | undefined;
  private readonly crlNextUpdate: CachedValue | undefined;
  private readonly loopDelay: IntervalHistogram;
  private static readonly LOOP_RESOLUTION_MS = 10;
  /** Garbage collections of the HTTP thread's heap, and their pause seconds, by GC_KINDS index. */
  private readonly gcCount = new Float64Array(GC_KINDS.length);
  private readonly gcSeconds = new Float64Array(GC_KINDS.length);
  private readonly gcObserver: PerformanceObserver;

  /** Requests per profile label (configured names and `other`: bounded) and outcome. */
  private readonly profileRequests = new Map<string, Float64Array>();

  constructor(o: ServerMetricsOptions = {}) {
    this.sources = o.sources ?? {};
    const ttl = (o.cacheSeconds ?? 15) * 1000;
    const timeout = o.refreshTimeoutMs ?? 2000;
    const { pendingRequests, crlNextUpdate } = this.sources;
    if (pendingRequests) this.pending = new CachedValue(pendingRequests, ttl, timeout);
    if (crlNextUpdate)
      this.crlNextUpdate = new CachedValue(async () => (await crlNextUpdate())?.getTime(), ttl, timeout);
    this.loopDelay = monitorEventLoopDelay({ resolution: ServerMetrics.LOOP_RESOLUTION_MS });
    this.loopDelay.enable();
    // One entry per collection, delivered after it: a few a second under load.
    this.gcObserver = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        const kind = (entry as { detail?: { kind?: number } | null }).detail?.kind;
        const i = GC_KINDS.findIndex((k) => k.flag === kind);
        if (i < 0) continue;
        this.gcCount[i]!++;
        this.gcSeconds[i]! += entry.duration / 1000;
      }
    });
    this.gcObserver.observe({ entryTypes: ['gc'] });
  }

  /** Adds or replaces scrape-time sources (startServer learns some after building the app). */
  setSources(s: MetricsSources): void {
    Object.assign(this.sources, s);
  }

  /**
   * Counts one answered request (app.ts onResponse). `log` is the request's SCEP log data,
   * `status` the HTTP status, `seconds` its duration. Health and metrics requests are ignored.
   */
  observeRequest(log: ScepRequestLog | null, status: number, seconds: number): void {
    const opName = log?.operation;
    const op = opName === undefined ? OP_OTHER : (OPERATION.get(opName) ?? OP_OTHER);
    if (op === SKIP) return;
    let out: number;
    if (status === 503 && log?.outcome === 'overloaded') out = OUT_OVERLOADED;
    else if (status >= 500) {
      out = OUT_ERROR;
      this.internalErrors++;
    } else if (status >= 400) out = OUT_REJECTED;
    else out = (log?.outcome !== undefined ? OUTCOME.get(log.outcome) : undefined) ?? OUT_SUCCESS;
    this.requests[op * N_OUT + out]!++;
    if (log?.profile !== undefined) {
      const label = this.sources.profileNames?.().has(log.profile) ? log.profile : 'other';
      let row = this.profileRequests.get(label);
      if (!row) this.profileRequests.set(label, (row = new Float64Array(N_OUT)));
      row[out]!++;
    }
    if (log?.limit !== undefined) {
      const l = LIMIT.get(log.limit);
      if (l !== undefined) this.limitRefusals[l]!++;
    }

    let b = 0;
    while (b < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[b]!) b++;
    this.buckets[op * N_BUCKETS + b]!++;
    this.durationSum[op]! += seconds;

    if (op === OP_PKI && log?.messageType !== undefined) {
      const mt = MESSAGE_TYPE.get(log.messageType) ?? MT_OTHER;
      const fi =
        out === OUT_FAILURE
          ? log.failInfo !== undefined
            ? (FAIL_INFO.get(log.failInfo) ?? FI_OTHER)
            : FI_OTHER
          : FI_NONE;
      this.pki[(mt * N_OUT + out) * N_FI + fi]!++;
      if (out === OUT_SUCCESS && log.serial !== undefined && log.replay !== true && ISSUING.has(mt))
        this.issued++;
    }
  }

  /** The exposition text. Store-derived gauges may wait for one (cached, time-limited) read. */
  async render(): Promise<string> {
    const [pending, crlNext] = await Promise.all([this.pending?.get(), this.crlNextUpdate?.get()]);
    const e = new Exposition();

    e.family('scepter_requests_total', 'counter', 'HTTP requests by SCEP operation and outcome.');
    for (let op = 0; op < OPERATION_LABELS.length; op++)
      for (let out = 0; out < N_OUT; out++) {
        const v = this.requests[op * N_OUT + out]!;
        if (v > 0)
          e.sample('scepter_requests_total', v, {
            operation: OPERATION_LABELS[op]!,
            outcome: OUTCOME_LABELS[out]!,
          });
      }

    e.family(
      'scepter_pki_messages_total',
      'counter',
      'PKIOperation messages by request messageType, reply status and failInfo.',
    );
    for (let mt = 0; mt < MESSAGE_TYPE_LABELS.length; mt++)
      for (let out = 0; out < N_OUT; out++)
        for (let fi = 0; fi < N_FI; fi++) {
          const v = this.pki[(mt * N_OUT + out) * N_FI + fi]!;
          if (v > 0)
            e.sample('scepter_pki_messages_total', v, {
              message_type: MESSAGE_TYPE_LABELS[mt]!,
              status: OUTCOME_LABELS[out]!,
              fail_info: FAIL_INFO_LABELS[fi]!,
            });
        }

    if (this.profileRequests.size > 0) {
      e.family(
        'scepter_profile_requests_total',
        'counter',
        'SCEP requests by configuration profile and outcome.',
      );
      for (const [profile, row] of this.profileRequests)
        for (let out = 0; out < N_OUT; out++)
          if (row[out]! > 0)
            e.sample('scepter_profile_requests_total', row[out]!, { profile, outcome: OUTCOME_LABELS[out]! });
    }
    const config = this.sources.config?.();
    if (config) {
      e.family('scepter_config_info', 'gauge', 'The loaded configuration (its version in the label).').sample(
        'scepter_config_info',
        1,
        { version: config.id },
      );
      e.family(
        'scepter_config_loads_total',
        'counter',
        'Configurations loaded (start and successful reloads).',
      ).sample('scepter_config_loads_total', config.loads);
      e.family(
        'scepter_config_reload_failures_total',
        'counter',
        'Reloads refused (the old configuration kept serving).',
      ).sample('scepter_config_reload_failures_total', config.failedReloads);
    }

    e.family(
      'scepter_certificates_issued_total',
      'counter',
      'Certificates issued (resends answered with an earlier certificate not counted).',
    ).sample('scepter_certificates_issued_total', this.issued);
    const stats = this.sources.serviceStats?.();
    e.family(
      'scepter_single_des_accepted_total',
      'counter',
      'Requests accepted although encrypted with single DES (--allow-single-des).',
    ).sample('scepter_single_des_accepted_total', stats?.singleDesAccepted ?? 0);
    e.family(
      'scepter_internal_errors_total',
      'counter',
      'Requests answered with an HTTP 5xx (internal faults; the detail is in the log).',
    ).sample('scepter_internal_errors_total', this.internalErrors);
    e.family(
      'scepter_limit_refusals_total',
      'counter',
      'Requests refused by a limit: new pending requests over the per-address rate, the full approval queue (HTTP 503), a throttled challenge source.',
    );
    for (let l = 0; l < LIMIT_LABELS.length; l++)
      e.sample('scepter_limit_refusals_total', this.limitRefusals[l]!, { limit: LIMIT_LABELS[l]! });

    e.family(
      'scepter_request_duration_seconds',
      'histogram',
      'Time from request received to response sent, by SCEP operation.',
    );
    for (let op = 0; op < OPERATION_LABELS.length; op++) {
      let cumulative = 0;
      for (let b = 0; b < N_BUCKETS; b++) cumulative += this.buckets[op * N_BUCKETS + b]!;
      if (cumulative === 0) continue;
      const operation = OPERATION_LABELS[op]!;
      cumulative = 0;
      for (let b = 0; b < N_BUCKETS; b++) {
        cumulative += this.buckets[op * N_BUCKETS + b]!;
        const le = b < DURATION_BUCKETS.length ? num(DURATION_BUCKETS[b]!) : '+Inf';
        e.sample('scepter_request_duration_seconds_bucket', cumulative, { operation, le });
      }
      e.sample('scepter_request_duration_seconds_sum', this.durationSum[op]!, { operation });
      e.sample('scepter_request_duration_seconds_count', cumulative, { operation });
    }

    const store = this.sources.storeStats?.();
    if (store) {
      e.family('scepter_store_writes_total', 'counter', 'Store write operations.').sample(
        'scepter_store_writes_total',
        store.writes,
      );
      e.family(
        'scepter_store_commits_total',
        'counter',
        'Store commits (group commit: several writes share one).',
      ).sample('scepter_store_commits_total', store.commits);
    }
    if (pending !== undefined)
      e.family(
        'scepter_pending_requests',
        'gauge',
        'Requests waiting for an operator decision (refreshed at most every cache period).',
      ).sample('scepter_pending_requests', pending);
    const workers = this.sources.workers?.();
    if (workers !== undefined)
      e.family(
        'scepter_workers',
        'gauge',
        'Threads doing enrollment work (--workers; 1 = the HTTP thread itself).',
      ).sample('scepter_workers', workers);
    const caNotAfter = this.sources.caNotAfter?.();
    if (caNotAfter)
      e.family(
        'scepter_ca_not_after_seconds',
        'gauge',
        'notAfter of the current CA certificate, Unix time in seconds.',
      ).sample('scepter_ca_not_after_seconds', Math.floor(caNotAfter.getTime() / 1000));
    if (crlNext !== undefined)
      e.family(
        'scepter_crl_next_update_seconds',
        'gauge',
        "nextUpdate of the current CA's latest CRL, Unix time in seconds.",
      ).sample('scepter_crl_next_update_seconds', Math.floor(crlNext / 1000));

    this.processMetrics(e);
    return e.text();
  }

  private processMetrics(e: Exposition): void {
    const cpu = process.cpuUsage();
    e.family(
      'process_cpu_seconds_total',
      'counter',
      'Total user and system CPU time spent in seconds (all threads).',
    ).sample('process_cpu_seconds_total', (cpu.user + cpu.system) / 1e6);
    e.family('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.').sample(
      'process_resident_memory_bytes',
      process.memoryUsage.rss(),
    );
    e.family(
      'process_start_time_seconds',
      'gauge',
      'Start time of the process, Unix time in seconds.',
    ).sample('process_start_time_seconds', Math.round((Date.now() - process.uptime() * 1000) / 1000));
    const heap = process.memoryUsage();
    e.family('nodejs_heap_size_used_bytes', 'gauge', 'V8 heap used in bytes (HTTP thread).').sample(
      'nodejs_heap_size_used_bytes',
      heap.heapUsed,
    );
    // monitorEventLoopDelay measures the whole timer interval: subtract its resolution.
    const h = this.loopDelay;
    const lag = (ns: number) =>
      Number.isFinite(ns) ? Math.max(0, ns / 1e6 - ServerMetrics.LOOP_RESOLUTION_MS) / 1000 : 0;
    const seen = h.count > 0;
    e.family(
      'nodejs_eventloop_lag_seconds',
      'gauge',
      'Mean event loop delay of the HTTP thread since the previous scrape.',
    ).sample('nodejs_eventloop_lag_seconds', seen ? lag(h.mean) : 0);
    e.family(
      'nodejs_eventloop_lag_p99_seconds',
      'gauge',
      '99th percentile of the event loop delay since the previous scrape.',
    ).sample('nodejs_eventloop_lag_p99_seconds', seen ? lag(h.percentile(99)) : 0);
    e.family(
      'nodejs_eventloop_lag_max_seconds',
      'gauge',
      'Largest event loop delay since the previous scrape.',
    ).sample('nodejs_eventloop_lag_max_seconds', seen ? lag(h.max) : 0);
    h.reset();
    e.family(
      'nodejs_gc_runs_total',
      'counter',
      "Garbage collections of the HTTP thread's V8 heap, by kind (major: Mark-Compact).",
    );
    GC_KINDS.forEach((k, i) => e.sample('nodejs_gc_runs_total', this.gcCount[i]!, { kind: k.label }));
    e.family(
      'nodejs_gc_duration_seconds_total',
      'counter',
      'Time the HTTP thread spent paused in those collections, by kind.',
    );
    GC_KINDS.forEach((k, i) =>
      e.sample('nodejs_gc_duration_seconds_total', this.gcSeconds[i]!, { kind: k.label }),
    );
  }

  /** Stops the event-loop delay monitor and the collection observer. */
  close(): void {
    this.loopDelay.disable();
    this.gcObserver.disconnect();
  }
}
