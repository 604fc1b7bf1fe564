/**
 * `npm run bench -- --gc-timeline`: where the slowest requests of a run came from. The server
 * runs with `--trace-gc` and bench/lib/time-origin.mjs preloaded, so its log holds every V8
 * collection with its time; the load generator knows when each request was sent and how long
 * it took. Both go on one (epoch) time axis; the requests at or above 95% of the run's p99 are
 * grouped into clusters (requests less than 80 ms apart), and each cluster is printed with the
 * collections that started inside it. A Mark-Compact shows as `M 14.1` (pause ms), a scavenge
 * as `S 6.8`. Also printed: how many of the measured requests a Mark-Compact overlapped.
 */
import type { LoadResult } from './load.js';

export interface GcEvent {
  /** Epoch ms when the collection ended (V8 prints its time at the end). */
  at: number;
  kind: 'S' | 'M';
  pauseMs: number;
}

/** The collections in a server log written with --trace-gc and time-origin.mjs. */
export function gcEvents(log: string): GcEvent[] {
  let origin: number | undefined;
  const out: GcEvent[] = [];
  for (const line of log.split('\n')) {
    if (line.startsWith('TIMEORIGIN ')) {
      origin = Number(line.slice('TIMEORIGIN '.length));
      continue;
    }
    const m = / (\d+) ms: (Scavenge|Mark-Compact)[^,]*, ([0-9.]+) \/ [0-9.]+ ms/.exec(line);
    if (m && origin !== undefined)
      out.push({ at: origin + Number(m[1]), kind: m[2] === 'Scavenge' ? 'S' : 'M', pauseMs: Number(m[3]) });
  }
  return out;
}

/** Text lines: the slow-request clusters of `r` and the collections inside each. */
export function gcTimeline(r: LoadResult, clientOrigin: number, events: readonly GcEvent[]): string[] {
  const reqs = r.starts
    .map((s, i) => ({ start: clientOrigin + s, ms: r.latencies[i] as number }))
    .sort((a, b) => a.start - b.start);
  if (reqs.length === 0) return ['gc timeline: no requests'];
  const t0 = (reqs[0] as { start: number }).start;
  const end = Math.max(...reqs.map((q) => q.start + q.ms));
  const sorted = reqs.map((q) => q.ms).sort((a, b) => a - b);
  const p50 = sorted[Math.floor(sorted.length / 2)] as number;
  const p99 = sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)] as number;
  const clusters: Array<Array<{ start: number; ms: number }>> = [];
  for (const q of reqs.filter((x) => x.ms >= 0.95 * p99)) {
    const last = clusters[clusters.length - 1];
    const prev = last?.[last.length - 1];
    if (last && prev && q.start - prev.start < 80) last.push(q);
    else clusters.push([q]);
  }
  const inRun = events.filter((e) => e.at >= t0 && e.at <= end);
  const marks = inRun.filter((e) => e.kind === 'M');
  // A request overlaps a Mark-Compact when the collection ended while it was in flight.
  const hit = reqs.filter((q) => marks.some((e) => e.at >= q.start && e.at <= q.start + q.ms)).length;
  const lines = [
    `gc timeline: client p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms; ${clusters.length} cluster(s) of requests ≥ 95% of p99;` +
      ` ${marks.length} Mark-Compact and ${inRun.length - marks.length} scavenges in the run;` +
      ` ${hit} of ${reqs.length} requests were in flight when a Mark-Compact ended`,
  ];
  for (const c of clusters) {
    const a = (c[0] as { start: number }).start;
    const b = Math.max(...c.map((q) => q.start + q.ms));
    const gcs = events
      .filter((e) => e.at >= a - 10 && e.at <= b)
      .map((e) => `${e.kind} ${e.pauseMs.toFixed(1)} at +${Math.round(e.at - t0)}`);
    lines.push(
      `  +${Math.round(a - t0)}..+${Math.round(b - t0)} ms: ${c.length} request(s), up to ${Math.max(...c.map((q) => q.ms)).toFixed(0)} ms; collections: ${gcs.length ? gcs.join(', ') : 'none'}`,
    );
  }
  return lines;
}
