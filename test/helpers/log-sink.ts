/** A Writable that collects a server's JSON log lines (`logStream` of startServer / testServer). */
import { Writable } from 'node:stream';

export interface LogSink {
  stream: Writable;
  /** Every line parsed as JSON. */
  lines: () => Record<string, unknown>[];
  /** Everything written so far. */
  text: () => string;
}

export function logSink(): LogSink {
  let out = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out += chunk.toString();
      cb();
    },
  });
  return {
    stream,
    text: () => out,
    lines: () =>
      out
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
