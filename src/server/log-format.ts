/**
 * The server log's two formats (`scepter serve --log-format json|text`): JSON lines as pino
 * writes them (default; for log shippers and journald), or one human-readable line per event:
 *
 *   2026-12-06T19:00:00.000Z INFO  request method=POST path=/scep status=200 outcome=SUCCESS …
 *
 * The text form is made from the JSON line, so both carry the same fields. Every value is
 * escaped with `escapeText` (client-supplied values such as transactionIDs, reasons or paths
 * can hold control and bidi characters) and quoted when it has spaces, so one event is always
 * one line that cannot forge another.
 */
import { Writable } from 'node:stream';
import { escapeText } from '../pkix/text.js';

export type LogFormat = 'json' | 'text';
export const LOG_FORMATS: readonly LogFormat[] = ['json', 'text'];

const LEVELS: Readonly<Record<number, string>> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/** Fields every line has (shown up front or dropped), not repeated as key=value. */
const SKIP = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'reqId']);

function value(v: unknown): string {
  let s: string;
  if (typeof v === 'string') s = v;
  else if (v !== null && typeof v === 'object' && 'message' in v) {
    const e = v as { type?: unknown; message?: unknown };
    s = `${typeof e.type === 'string' ? `${e.type}: ` : ''}${String(e.message)}`;
  } else s = JSON.stringify(v) ?? String(v);
  s = escapeText(s);
  return s === '' || /[\s"=]/.test(s) ? JSON.stringify(s) : s;
}

/** One pino JSON line as a text line (a line that is not JSON is escaped and passed on). */
export function formatLogLine(line: string): string {
  let o: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return escapeText(line);
    o = parsed as Record<string, unknown>;
  } catch {
    return escapeText(line);
  }
  const time = typeof o.time === 'number' ? new Date(o.time).toISOString() : new Date().toISOString();
  const level = (typeof o.level === 'number' ? LEVELS[o.level] : undefined) ?? String(o.level ?? 'INFO');
  const parts = [time, level.padEnd(5)];
  if (typeof o.msg === 'string') parts.push(escapeText(o.msg));
  for (const [k, v] of Object.entries(o)) {
    if (SKIP.has(k) || v === undefined) continue;
    parts.push(`${escapeText(k)}=${value(v)}`);
  }
  return parts.join(' ');
}

/** A stream for pino: takes its JSON lines, writes text lines to `out`. */
export function textLogStream(out: Writable | NodeJS.WritableStream = process.stdout): Writable {
  let rest = '';
  return new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      const text = rest + chunk.toString();
      const lines = text.split('\n');
      rest = lines.pop() ?? '';
      const formatted = lines.filter((l) => l.trim() !== '').map((l) => `${formatLogLine(l)}\n`);
      if (formatted.length === 0) return cb();
      out.write(formatted.join(''), () => cb());
    },
    final(cb) {
      if (rest.trim() !== '') out.write(`${formatLogLine(rest)}\n`, () => cb());
      else cb();
    },
  });
}
