/**
 * Closed-loop load: C concurrent clients over keep-alive HTTP each send the next pre-built
 * request as soon as their previous reply arrived. Replies are kept and checked afterwards,
 * so the client spends no crypto while the server is measured.
 */
import { Agent } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Certificate } from '../../src/pkix/certificate.js';
import {
  checkReply,
  postPkiMessage,
  type HttpReply,
  type PreparedEnrollment,
} from '../../test/helpers/enrollment.js';

/** What the load sends: one pkiMessage (or any POST body) per request. */
export type LoadItem = Pick<PreparedEnrollment, 'der'>;

export interface LoadResult {
  wallMs: number;
  /** Per-request latency in ms, in send order. */
  latencies: number[];
  /** When each request was sent (performance.now() of this process), in send order. */
  starts: number[];
  replies: Array<HttpReply | { error: string }>;
}

/**
 * Sends every enrollment with `concurrency` in flight; resolves when all have answered.
 * With several URLs (instances behind a load balancer) request i goes to url i mod n.
 */
export async function runLoad(
  url: string | readonly string[],
  enrollments: readonly LoadItem[],
  concurrency: number,
  onSend?: (i: number) => void,
): Promise<LoadResult> {
  const urls = typeof url === 'string' ? [url] : url;
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies = new Array<number>(enrollments.length).fill(0);
  const replies: LoadResult['replies'] = new Array(enrollments.length);
  const starts = new Array<number>(enrollments.length).fill(0);
  let next = 0;
  const client = async () => {
    for (;;) {
      const i = next++;
      if (i >= enrollments.length) return;
      onSend?.(i);
      const t0 = performance.now();
      starts[i] = t0;
      try {
        const target = urls[i % urls.length] as string;
        replies[i] = await postPkiMessage(target, (enrollments[i] as LoadItem).der, agent);
      } catch (e) {
        replies[i] = { error: e instanceof Error ? e.message : String(e) };
      }
      latencies[i] = performance.now() - t0;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, enrollments.length) }, client));
  const wallMs = performance.now() - t0;
  agent.destroy();
  return { wallMs, latencies, starts, replies };
}

/**
 * Warm-up and measurement as ONE closed loop: the clients go straight on from the last warm-up
 * request to the first measured one, on the same connections, so the measurement starts in
 * the steady state. (Two separate loops made the first C measured requests one burst on new
 * connections, all waiting for each other: at C=16 those were half of the worst 1% of a
 * 3,000-request run, docs/benchmarks.md "The tail at RSA-2048".) `atStart` runs just before
 * the first measured request is sent, while the last warm-up requests are still in flight;
 * the result covers the measured requests only, its wall time from that moment to the end.
 */
export async function runMeasured(
  url: string | readonly string[],
  warm: readonly LoadItem[],
  timed: readonly LoadItem[],
  concurrency: number,
  atStart: () => void,
): Promise<LoadResult> {
  if (timed.length === 0) throw new Error('runMeasured: nothing to measure');
  const w = warm.length;
  let t0 = 0;
  const r = await runLoad(url, [...warm, ...timed], concurrency, (i) => {
    if (i !== w) return;
    atStart();
    t0 = performance.now();
  });
  const end = performance.now();
  return {
    wallMs: end - t0,
    latencies: r.latencies.slice(w),
    starts: r.starts.slice(w),
    replies: r.replies.slice(w),
  };
}

export interface CheckedLoad {
  ok: number;
  failures: number;
  /** First few failure reasons with counts. */
  reasons: Map<string, number>;
  /** Serials of the successful replies, by request index. */
  serials: Array<string | undefined>;
  duplicateSerials: number;
}

/** Checks every reply (SUCCESS, signed by `trusted`, decrypts, key matches) and counts duplicates. */
export function checkLoad(
  r: LoadResult,
  enrollments: readonly PreparedEnrollment[],
  trusted: Certificate[],
  o: { allowSingleDes?: boolean } = {},
): CheckedLoad {
  const reasons = new Map<string, number>();
  const serials: Array<string | undefined> = [];
  let ok = 0;
  enrollments.forEach((e, i) => {
    const reply = r.replies[i];
    let reason: string | undefined;
    if (!reply) reason = 'no reply';
    else if ('error' in reply) reason = `transport: ${reply.error}`;
    else {
      const c = checkReply(reply.status, reply.body, e, trusted, o);
      if (c.ok) {
        ok++;
        serials[i] = c.serial;
      } else reason = c.reason.slice(0, 120);
    }
    if (reason !== undefined) reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  });
  const seen = new Set<string>();
  let duplicateSerials = 0;
  for (const s of serials) {
    if (s === undefined) continue;
    if (seen.has(s)) duplicateSerials++;
    seen.add(s);
  }
  return { ok, failures: enrollments.length - ok, reasons, serials, duplicateSerials };
}

/** The p-th percentile (0–100) of `xs` (nearest rank). */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[rank] as number;
}

/**
 * The server's own time per PKIOperation (fastify's elapsed time from the request's arrival in
 * the handler to the reply's end, the `ms` of its log lines), skipping the first `skip` (the
 * warm-up): what the client sees beyond it was spent before the server read the request (the
 * event loop busy with others) or on the way back.
 */
export function handlerLatencies(logText: string, skip: number): number[] {
  const out: number[] = [];
  for (const line of logText.split('\n')) {
    if (!line.includes('"PKIOperation"')) continue;
    try {
      const v = JSON.parse(line) as { ms?: unknown };
      if (typeof v.ms === 'number') out.push(v.ms);
    } catch {
      // not a JSON log line
    }
  }
  return out.slice(skip);
}
