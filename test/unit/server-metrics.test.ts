/**
 * Health and metrics (src/server/ops-routes.ts, src/server/metrics.ts): the exposition parses
 * (HELP/TYPE, sample syntax, cumulative histogram buckets with +Inf = count), counters move by
 * exactly the expected amounts for SUCCESS, a resend, FAILURE badRequest, a single-DES request
 * and a garbage POST — in-process and with `--workers 2` — no per-device value appears in the
 * output, /readyz turns 503 when the store is gone, the bearer token guards /metrics, and
 * health checks stay out of the info log.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FailInfo, PkiStatus } from '../../src/scep/index.js';
import { ServerMetrics } from '../../src/server/metrics.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { openStore } from '../../src/store/index.js';
import { logSink } from '../helpers/log-sink.js';
import {
  caCerts,
  device,
  openCertRep,
  pkcsReq,
  postPki,
  recipientOf,
  testServer,
  TEST_CHALLENGE,
} from '../helpers/scep-server.js';

// ---- a tiny exposition-format parser (text format 0.0.4) ----

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Exposition {
  types: Map<string, string>;
  samples: Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*)?\\})? (\\S+)$`);
const VALUE = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]Inf)$/;

function parseExposition(text: string): Exposition {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const samples: Sample[] = [];
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('# HELP ')) {
      const m = new RegExp(`^# HELP (${NAME}) .+$`).exec(line);
      assert.ok(m, `HELP line: ${line}`);
      assert.ok(!helps.has(m[1]!), `one HELP per family: ${m[1]}`);
      helps.add(m[1]!);
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      const m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line);
      assert.ok(m, `TYPE line: ${line}`);
      assert.ok(!types.has(m[1]!), `one TYPE per family: ${m[1]}`);
      types.set(m[1]!, m[2]!);
      continue;
    }
    assert.ok(!line.startsWith('#'), `only HELP and TYPE comments: ${line}`);
    const m = SAMPLE.exec(line);
    assert.ok(m, `sample line: ${JSON.stringify(line)}`);
    assert.match(m[3]!, VALUE, `sample value: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      assert.ok(!(l[1]! in labels), `label repeated: ${line}`);
      labels[l[1]!] = l[2]!;
    }
    const name = m[1]!;
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    assert.ok(types.has(family), `TYPE declared before the sample: ${name}`);
    if (family !== name) assert.equal(types.get(family), 'histogram', `${name} belongs to a histogram`);
    if (types.get(family) === 'counter' || name.endsWith('_total'))
      assert.ok(Number(m[3]) >= 0, `counter not negative: ${line}`);
    samples.push({ name, labels, value: Number(m[3]) });
  }
  // Histograms: per label set (without le) buckets in increasing le, cumulative, +Inf = _count.
  for (const [family, type] of types) {
    if (type !== 'histogram') continue;
    const series = new Map<string, Sample[]>();
    for (const s of samples.filter((x) => x.name === `${family}_bucket`)) {
      const { le, ...rest } = s.labels;
      assert.ok(le !== undefined, 'bucket has le');
      const k = JSON.stringify(rest);
      series.set(k, [...(series.get(k) ?? []), s]);
    }
    for (const [k, buckets] of series) {
      const les = buckets.map((b) => (b.labels.le === '+Inf' ? Infinity : Number(b.labels.le)));
      for (let i = 1; i < les.length; i++) assert.ok(les[i]! > les[i - 1]!, `le increasing in ${family}${k}`);
      for (let i = 1; i < buckets.length; i++)
        assert.ok(buckets[i]!.value >= buckets[i - 1]!.value, `buckets cumulative in ${family}${k}`);
      assert.equal(les.at(-1), Infinity, `${family}${k} ends with +Inf`);
      const count = samples.find((x) => x.name === `${family}_count` && JSON.stringify(x.labels) === k);
      const sum = samples.find((x) => x.name === `${family}_sum` && JSON.stringify(x.labels) === k);
      assert.ok(count && sum, `${family}${k} has _count and _sum`);
      assert.equal(buckets.at(-1)!.value, count.value, `+Inf bucket = _count in ${family}${k}`);
    }
  }
  return { types, samples };
}

/** Value of the sample with exactly these labels (0 when absent: counters start unexported). */
function value(e: Exposition, name: string, labels: Record<string, string> = {}): number {
  const want = JSON.stringify(Object.entries(labels).sort());
  const s = e.samples.find(
    (x) => x.name === name && JSON.stringify(Object.entries(x.labels).sort()) === want,
  );
  return s?.value ?? 0;
}

async function scrape(origin: string, token?: string): Promise<{ text: string; e: Exposition }> {
  const r = await fetch(`${origin}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const text = await r.text();
  return { text, e: parseExposition(text) };
}

// ---- counters after real enrollments ----

for (const workers of [1, 2]) {
  test(`metrics count enrollments exactly (workers: ${workers})`, async (t) => {
    const s = await testServer(t, { workers, enrollment: { allowSingleDes: true } });
    const certs = await caCerts(s.url); // one GetCACert, before the first scrape
    const ca = recipientOf(certs);
    const { e: before, text: first } = await scrape(s.origin);
    assert.equal(value(before, 'scepter_certificates_issued_total'), 0);
    assert.equal(value(before, 'scepter_requests_total', { operation: 'GetCACert', outcome: 'SUCCESS' }), 1);
    assert.equal(value(before, 'scepter_workers'), workers);
    assert.equal(value(before, 'scepter_ca_not_after_seconds'), Math.floor(ca.notAfter.getTime() / 1000));
    assert.equal(value(before, 'scepter_pending_requests'), 0);
    for (const name of [
      'process_resident_memory_bytes',
      'process_cpu_seconds_total',
      'nodejs_eventloop_lag_seconds',
    ])
      assert.ok(before.types.has(name), `${name} is exported`);
    assert.ok(value(before, 'process_resident_memory_bytes') > 10e6);
    assert.ok(!first.includes('metrics"') && !first.includes('health'), 'scrapes are not counted');

    const subjects: string[] = [];
    const txIds: string[] = [];
    const send = async (
      n: number,
      o: { challenge?: string; cipher?: 'des'; allowSingleDes?: boolean } = {},
    ) => {
      const subject = `CN=metrics-device-${workers}-${n},O=Metrics`;
      subjects.push(subject);
      const d = device(subject, { pool: n });
      const m = pkcsReq(d, ca, o);
      txIds.push(m.transactionId);
      const r = await postPki(s.url, m.der);
      assert.equal(r.status, 200);
      return { d, m, rep: openCertRep(r.body, m, d, certs, { allowSingleDes: true }) };
    };
    const ok1 = await send(0);
    assert.equal(ok1.rep.status, PkiStatus.SUCCESS);
    assert.equal((await send(1)).rep.status, PkiStatus.SUCCESS);
    // A resend of the first: SUCCESS again, nothing new issued.
    const again = await postPki(s.url, ok1.m.der);
    assert.equal(openCertRep(again.body, ok1.m, ok1.d, certs).status, PkiStatus.SUCCESS);
    const bad = await send(2, { challenge: 'wrong-challenge-value' });
    assert.equal(bad.rep.status, PkiStatus.FAILURE);
    assert.equal(bad.rep.failInfo, FailInfo.badRequest);
    assert.equal((await send(3, { cipher: 'des', allowSingleDes: true })).rep.status, PkiStatus.SUCCESS);
    const garbage = await postPki(s.url, Buffer.from('certainly not a pkiMessage'));
    assert.equal(garbage.status, 400);
    assert.equal((await fetch(`${s.url}?operation=GetCACaps`)).status, 200);
    assert.equal((await fetch(`${s.url}?operation=NoSuchOperation`)).status, 400);
    assert.equal((await fetch(`${s.origin}/healthz`)).status, 200);
    assert.equal((await fetch(`${s.origin}/readyz`)).status, 200);

    const { e: after, text } = await scrape(s.origin);
    const d = (name: string, labels: Record<string, string> = {}) =>
      value(after, name, labels) - value(before, name, labels);
    const req = (operation: string, outcome: string) => d('scepter_requests_total', { operation, outcome });
    assert.equal(req('PKIOperation', 'SUCCESS'), 4); // two enrollments, the resend, the DES one
    assert.equal(req('PKIOperation', 'FAILURE'), 1);
    assert.equal(req('PKIOperation', 'rejected'), 1);
    assert.equal(req('PKIOperation', 'error'), 0);
    assert.equal(req('GetCACaps', 'SUCCESS'), 1);
    assert.equal(req('other', 'rejected'), 1); // the unknown operation
    const total = after.samples
      .filter((x) => x.name === 'scepter_requests_total')
      .reduce((a, x) => a + x.value, 0);
    const totalBefore = before.samples
      .filter((x) => x.name === 'scepter_requests_total')
      .reduce((a, x) => a + x.value, 0);
    assert.equal(total - totalBefore, 8, 'health checks and scrapes are not counted');

    const pki = (status: string, failInfo: string) =>
      d('scepter_pki_messages_total', { message_type: 'PKCSReq', status, fail_info: failInfo });
    assert.equal(pki('SUCCESS', 'none'), 4);
    assert.equal(pki('FAILURE', 'badRequest'), 1);
    // The garbage never got a messageType: counted as a request, not as a pkiMessage.
    assert.equal(
      after.samples.filter((x) => x.name === 'scepter_pki_messages_total').reduce((a, x) => a + x.value, 0),
      5,
    );
    assert.equal(d('scepter_certificates_issued_total'), 3);
    assert.equal(d('scepter_single_des_accepted_total'), 1, 'counted in the worker, seen here');
    assert.equal(d('scepter_internal_errors_total'), 0);
    assert.equal(d('scepter_request_duration_seconds_count', { operation: 'PKIOperation' }), 6);
    assert.ok(value(after, 'scepter_request_duration_seconds_sum', { operation: 'PKIOperation' }) > 0);
    assert.ok(d('scepter_store_writes_total') > 0);

    for (const secret of [...subjects, ...txIds, TEST_CHALLENGE, 'metrics-device', 'wrong-challenge-value'])
      assert.ok(!text.includes(secret), `${secret} does not appear in the metrics`);
  });
}

// ---- health ----

test('/healthz and /readyz: 503 with a reason once the store is closed', async (t) => {
  const store = await openStore(':memory:');
  t.after(() => store.close());
  const s = await testServer(t, { store });
  const live = await fetch(`${s.origin}/healthz`);
  assert.equal(live.status, 200);
  assert.equal(await live.text(), 'ok\n');
  const ready = await fetch(`${s.origin}/readyz`);
  assert.equal(ready.status, 200);
  assert.match(await ready.text(), /^ready\nconfig: flags load 1\n$/);
  assert.equal((await fetch(`${s.origin}/readyz`, { method: 'HEAD' })).status, 200);

  await store.close();
  const notReady = await fetch(`${s.origin}/readyz`);
  assert.equal(notReady.status, 503);
  assert.equal(notReady.headers.get('content-type'), 'text/plain; charset=utf-8');
  const body = await notReady.text();
  assert.match(body, /^not ready: the store is not available\n$/);
  assert.equal((await fetch(`${s.origin}/healthz`)).status, 200, 'still alive');
  // Metrics still answer without the store (the store gauges keep their last value).
  const { e } = await scrape(s.origin);
  assert.equal(value(e, 'scepter_pending_requests'), 0);
});

test('/readyz: a store that hangs is not ready (time limit), and ready again once it answers', async (t) => {
  const store = await openStore(':memory:');
  t.after(() => store.close());
  const s = await testServer(t, { store });
  const original = store.getSetting.bind(store);
  store.getSetting = () => new Promise<string | null>(() => {}); // never answers
  // The store never answers: that /readyz answers at all proves the time limit.
  const r = await fetch(`${s.origin}/readyz`);
  assert.equal(r.status, 503);
  assert.match(await r.text(), /^not ready: the store did not answer within \d+ ms\n$/);
  store.getSetting = original;
  assert.equal((await fetch(`${s.origin}/readyz`)).status, 200, 'ready again');
});

test('health checks and scrapes are logged at debug only', async (t) => {
  const log = logSink();
  const s = await testServer(t, { logLevel: 'info', logStream: log.stream });
  await fetch(`${s.origin}/healthz`);
  await fetch(`${s.origin}/readyz`);
  await scrape(s.origin);
  await fetch(`${s.url}?operation=GetCACaps`);
  const requests = log.lines().filter((l) => l.msg === 'request');
  assert.deepEqual(
    requests.map((l) => l.path),
    ['/scep'],
    'only the SCEP request is logged at info',
  );
});

// ---- access ----

test('--metrics-token-file: /metrics needs the bearer token; health stays open', async (t) => {
  const token = 'metrics-token-0123456789abcdef';
  const s = await testServer(t, { metricsToken: token });
  const none = await fetch(`${s.origin}/metrics`);
  assert.equal(none.status, 401);
  assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="scepter metrics"');
  assert.ok(!(await none.text()).includes('scepter_'));
  const wrong = await fetch(`${s.origin}/metrics`, { headers: { authorization: `Bearer ${token}x` } });
  assert.equal(wrong.status, 401);
  const basic = await fetch(`${s.origin}/metrics`, { headers: { authorization: `Basic ${token}` } });
  assert.equal(basic.status, 401);
  const { e } = await scrape(s.origin, token);
  assert.ok(e.types.has('scepter_requests_total'));
  assert.equal((await fetch(`${s.origin}/healthz`)).status, 200);
  assert.equal((await fetch(`${s.origin}/readyz`)).status, 200);
});

test('metrics: false serves no /metrics (the path is then plain SCEP); health stays', async (t) => {
  const s = await testServer(t, { metrics: false });
  assert.equal(s.metrics, undefined);
  const r = await fetch(`${s.origin}/metrics`);
  assert.equal(r.status, 400);
  assert.equal(await r.text(), 'missing operation parameter\n');
  assert.equal((await fetch(`${s.origin}/healthz`)).status, 200);
  assert.equal((await fetch(`${s.origin}/readyz`)).status, 200);
});

// ---- ServerMetrics in isolation ----

test("ServerMetrics counts the HTTP thread's garbage collections and their pauses by kind", async (t) => {
  setFlagsFromString('--expose-gc');
  // gc() is a full collection; V8 11 reads only `type: 'minor'` from the options.
  const gc = runInNewContext('gc') as (o?: { type: 'minor' }) => void;
  const m = new ServerMetrics();
  t.after(() => m.close());
  const runs = async (kind: string) =>
    value(parseExposition(await m.render()), 'nodejs_gc_runs_total', { kind });
  // A collection of its own may come at any time: compare with what was counted before.
  const before = parseExposition(await m.render());
  const major0 = value(before, 'nodejs_gc_runs_total', { kind: 'major' });
  const minor0 = value(before, 'nodejs_gc_runs_total', { kind: 'minor' });
  const paused0 = value(before, 'nodejs_gc_duration_seconds_total', { kind: 'major' });
  gc();
  gc();
  gc({ type: 'minor' });
  // The observer hears of each collection after it, on a later turn of the event loop.
  for (let i = 0; i < 1000 && ((await runs('major')) < major0 + 2 || (await runs('minor')) < minor0 + 1); i++)
    await new Promise((r) => setImmediate(r));
  const e = parseExposition(await m.render());
  assert.ok(value(e, 'nodejs_gc_runs_total', { kind: 'major' }) >= major0 + 2);
  assert.ok(value(e, 'nodejs_gc_runs_total', { kind: 'minor' }) >= minor0 + 1);
  assert.ok(value(e, 'nodejs_gc_duration_seconds_total', { kind: 'major' }) > paused0);
  for (const kind of ['minor', 'major', 'incremental', 'weakcb'])
    assert.ok(
      e.types.get('nodejs_gc_runs_total') === 'counter' && value(e, 'nodejs_gc_runs_total', { kind }) >= 0,
    );
});

test('ServerMetrics: label values stay in fixed sets; store gauges are cached', async (t) => {
  let reads = 0;
  const m = new ServerMetrics({
    cacheSeconds: 60,
    sources: {
      pendingRequests: async () => {
        reads++;
        return 7;
      },
      crlNextUpdate: async () => new Date(1_900_000_000_000),
    },
  });
  t.after(() => m.close());
  m.observeRequest(
    {
      operation: 'PKIOperation',
      messageType: 'unknown',
      transactionId: 'tx-secret',
      outcome: 'FAILURE',
      failInfo: 'weird<"\n>',
      detail: 'CN=someone',
    },
    200,
    0.003,
  );
  m.observeRequest({ operation: 'Evil"op\n', outcome: 'SUCCESS' }, 200, 20);
  m.observeRequest(null, 500, 0.0001);
  m.observeRequest({ operation: 'health', outcome: 'SUCCESS' }, 200, 0.001);
  const [a, b] = await Promise.all([m.render(), m.render()]);
  const text = await m.render();
  assert.equal(reads, 1, 'one store read for concurrent and repeated scrapes');
  parseExposition(a);
  parseExposition(b);
  const e = parseExposition(text);
  assert.equal(
    value(e, 'scepter_pki_messages_total', { message_type: 'other', status: 'FAILURE', fail_info: 'other' }),
    1,
  );
  assert.equal(value(e, 'scepter_requests_total', { operation: 'other', outcome: 'SUCCESS' }), 1);
  assert.equal(value(e, 'scepter_requests_total', { operation: 'other', outcome: 'error' }), 1);
  assert.equal(value(e, 'scepter_internal_errors_total'), 1);
  assert.equal(value(e, 'scepter_requests_total', { operation: 'PKIOperation', outcome: 'FAILURE' }), 1);
  // 20 s lies above the largest bucket: only +Inf has it.
  assert.equal(value(e, 'scepter_request_duration_seconds_bucket', { operation: 'other', le: '10' }), 1);
  assert.equal(value(e, 'scepter_request_duration_seconds_bucket', { operation: 'other', le: '+Inf' }), 2);
  assert.equal(value(e, 'scepter_request_duration_seconds_count', { operation: 'other' }), 2);
  assert.equal(value(e, 'scepter_pending_requests'), 7);
  assert.equal(value(e, 'scepter_crl_next_update_seconds'), 1_900_000_000);
  for (const leak of ['tx-secret', 'someone', 'weird', 'Evil', 'health'])
    assert.ok(!text.includes(leak), leak);
});
