/**
 * How far V8 lets the old generation grow before its next full collection, for `scepter serve`.
 *
 * V8 sizes the old generation from the heap that survived the last full collection (about
 * 22 MB for a running server), times a factor it chooses from its measured GC speed. For a heap
 * this small it allows a few megabytes of growth before it starts the next Mark-Compact, and the
 * enrollment path promotes about 1.8 MB a second at 500 enrollments a second: a full
 * collection every 1.2 s, each one stalling every request in flight by 10–35 ms. Those stalls
 * were nearly all of the worst 1% of enrollment times (docs/benchmarks.md "Issue #15, fifth
 * round"). A fixed factor (4 by default) spaces them out at the price of a larger heap.
 *
 * V8's flags belong to the process, so only the command that owns the process sets this; an
 * application embedding `startServer` keeps its own. The operator chooses otherwise with
 * SCEPTER_HEAP_GROWING_PERCENT (a whole number of percent; 0 leaves V8's own choice) or with
 * `--heap-growing-percent` on node's command line, which then stands. (Node refuses that flag
 * in NODE_OPTIONS.)
 */
import { setFlagsFromString } from 'node:v8';

/** V8's old-generation growth factor for the server, as a percentage above 100. */
export const SERVER_HEAP_GROWING_PERCENT = 300;

/** Largest percentage accepted from SCEPTER_HEAP_GROWING_PERCENT (a factor of 11). */
const MAX_PERCENT = 1000;

const FLAG = /^--heap[-_]growing[-_]percent\b/;

/** Whether node's command line already sets the growth factor. */
export function heapGrowthSetByOperator(execArgv: readonly string[] = process.execArgv): boolean {
  return execArgv.some((a) => FLAG.test(a));
}

/**
 * The percentage to set: SCEPTER_HEAP_GROWING_PERCENT when given (0: none), else ours. Throws
 * a RangeError naming the variable for anything but a whole number from 0 to 1000.
 */
export function serverHeapGrowingPercent(
  env: string | undefined = process.env.SCEPTER_HEAP_GROWING_PERCENT,
): number {
  if (env === undefined || env.trim() === '') return SERVER_HEAP_GROWING_PERCENT;
  const n = Number(env);
  if (!/^\s*\d+\s*$/.test(env) || n > MAX_PERCENT)
    throw new RangeError(`SCEPTER_HEAP_GROWING_PERCENT must be a whole number from 0 to ${MAX_PERCENT}`);
  return n;
}

/**
 * Sets V8's old-generation growth factor for the server, unless node's command line set one or
 * the operator asked for V8's own (0). V8 reads it each time it computes the next limit (after
 * every full collection), so setting it at start-up takes effect from the first collection on.
 * Returns the percentage set, or undefined when nothing was set.
 */
export function tuneServerHeapGrowth(): number | undefined {
  if (heapGrowthSetByOperator()) return undefined;
  const percent = serverHeapGrowingPercent();
  if (percent === 0) return undefined;
  setFlagsFromString(`--heap-growing-percent=${percent}`);
  return percent;
}
