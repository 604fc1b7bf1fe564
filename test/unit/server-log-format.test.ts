/**
 * `--log-format text` (src/server/log-format.ts): a pino JSON line becomes one readable line
 * (time, level, message, key=value), values with control or bidi characters are escaped and
 * quoted so one event can never print as two; a server started with `logFormat: 'text'` writes
 * its request lines in that form.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatLogLine } from '../../src/server/log-format.js';
import { logSink } from '../helpers/log-sink.js';
import { testServer } from '../helpers/scep-server.js';

test('formatLogLine: time, level, message, escaped and quoted values', () => {
  const line = formatLogLine(
    JSON.stringify({
      level: 40,
      time: Date.UTC(2026, 11, 6, 19, 0, 0),
      pid: 1,
      hostname: 'h',
      msg: 'request',
      transactionId: 'evil\u001b[2J\nINFO forged line\u202e',
      status: 200,
      replay: true,
      detail: 'two words',
      err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x' },
    }),
  );
  assert.equal(line.includes('\n'), false);
  assert.ok(!/[\u0000-\u001f\u007f\u202e]/.test(line), line);
  assert.equal(
    line,
    '2026-12-06T19:00:00.000Z WARN  request transactionId="evil\\\\x1b[2J\\\\x0aINFO forged line\\\\u202e" status=200 replay=true detail="two words" err="Error: boom"',
  );
  assert.equal(formatLogLine('not json \u001b'), 'not json \\x1b');
});

test('a server with logFormat text writes readable request lines', async (t) => {
  const log = logSink();
  const s = await testServer(t, { logLevel: 'info', logFormat: 'text', logStream: log.stream });
  const r = await fetch(`${s.origin}/scep?operation=GetCACaps`);
  assert.equal(r.status, 200);
  await r.text();
  await s.close();
  const lines = log
    .text()
    .split('\n')
    .filter((l) => l !== '');
  const req = lines.find((l) => / INFO  request /.test(l));
  assert.ok(req, log.text());
  assert.match(req, /^\d{4}-\d\d-\d\dT[\d:.]+Z INFO  request method=GET path=\/scep status=200 /);
  assert.match(req, / operation=GetCACaps /);
  assert.ok(!lines.some((l) => l.startsWith('{')), 'no JSON line');
});
