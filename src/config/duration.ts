/** Durations in a configuration file: `30s`, `15m`, `12h`, `90d` (the schema's pattern). */

const UNIT: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** Seconds of a duration the schema accepted; throws RangeError otherwise. */
export function durationSeconds(text: string): number {
  const m = /^(\d{1,10})([smhd])$/.exec(text);
  if (!m) throw new RangeError(`'${text}' is not a duration (e.g. 30s, 10m, 12h, 90d)`);
  return Number(m[1]) * UNIT[m[2]!]!;
}

/** The shortest exact spelling of a number of seconds (`90d`, `12h`, `10m`, `45s`). */
export function durationText(seconds: number): string {
  for (const [u, n] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
  ] as const)
    if (seconds >= n && seconds % n === 0) return `${seconds / n}${u}`;
  return `${seconds}s`;
}
