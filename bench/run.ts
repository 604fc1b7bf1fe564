/**
 * `npm run bench`: SCEP enrollment throughput of scepter, side by side with micromdm
 * `scepserver` and the RSA bound measured by `openssl speed` — all in the same run.
 *
 *   npm run bench -- [-n 2000] [-c 16] [--workers 1,2] [--db sqlite|postgres] [--ca-key-size 2048]
 *                    [--prefill M] [--keys 64] [--no-micromdm] [--profile DIR] [--json FILE]
 *                    [--from-source] [--keep-dir] [--ra] [--server-cpus 0] [--hsm] [--node-flags "…"]
 *                    [--latencies FILE] [--ra --ra-key-size 2048] [--server-wrap "strace -f -c -o F"]
 *                    [--gc-timeline]   (the slowest requests next to V8's collections: bench/lib/gc-timeline.ts)
 *                    [--floor]   (the same load against a bare node:http server doing only the
 *                                 unavoidable crypto, with and without a store: bench/lib/floor.ts)
 *   npm run bench -- --ec-ca [-n 600] [--rounds 12]   (bench/ec-ca.ts: EC CA behind an RSA RA)
 *   npm run bench -- --ocsp [--ocsp-seconds 3] [--ocsp-prefill 10000]   (bench/ocsp.ts)
 *   npm run bench -- --poll [-n 3000] [--pending 256]   (polls of PENDING requests; bench/lib/poll.ts)
 *
 * The server runs as built JavaScript (src/ compiled to .tmp/bench-dist first, as `npm start`
 * runs dist/); --from-source runs the TypeScript through tsx instead (more memory per thread).
 *
 * Untimed: CA creation, client keys (a pool of --keys keys kept in .tmp/bench-keys, used
 * round-robin and larger than the server's key cache, so every request's key is new to the
 * server; each request has its own CSR, subject and transactionID), every pkiMessage
 * (AES-128 + SHA-256). Timed: N requests,
 * C in flight, over keep-alive HTTP to a server child process. Afterwards every reply is
 * checked (SUCCESS, signed by the CA, decrypts, certificate carries the requested key), serials
 * are checked for duplicates and, for scepter, looked up in the store (durable before reply).
 *
 * RSA bound: an enrollment costs 3 RSA private-key operations with the CA key (CEK decrypt,
 * certificate signature, CertRep signature), so one core can do at most `openssl speed`
 * sign/s ÷ 3 enrollments per second; W workers on ≥W cores at most W times that.
 *
 * --hsm: the same runs again with the CA key on a SoftHSM2 token (PKCS#11, src/crypto/pkcs11-key.ts)
 * instead of a key file, in the same run; the report gives the ratio to software keys.
 */
import { createPublicKey, KeyObject, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { initCa, loadCa, readPrivateKey, type CaKeySize } from '../src/ca/keystore.js';
import { parseCertificate, fromPem, type Certificate } from '../src/pkix/certificate.js';
import { openStore, type NewCertificate } from '../src/store/index.js';
import {
  checkReply,
  makeEnrollment,
  postPkiMessage,
  type PreparedEnrollment,
} from '../test/helpers/enrollment.js';
import { benchKeys } from './lib/keys.js';
import { gcEvents, gcTimeline } from './lib/gc-timeline.js';
import {
  checkLoad,
  handlerLatencies,
  percentile,
  runMeasured,
  type CheckedLoad,
  type LoadItem,
  type LoadResult,
} from './lib/load.js';
import { pollBench } from './lib/poll.js';
import { checkFloor, floorRequests, floorUrl, startFloor, type FloorKind } from './lib/floor.js';
import {
  buildForBench,
  cpuSeconds,
  hasCommand,
  initMicromdmDepot,
  loadAverage,
  opensslRsaSignPerSecond,
  sampleRss,
  startMicromdm,
  threadReport,
  threadTimes,
  startScepter,
  type ServerProcess,
} from './lib/processes.js';

// `npm run bench -- --ec-ca …`: server CPU per enrollment, EC CA behind an RSA RA (bench/ec-ca.ts).
if (process.argv.includes('--ec-ca')) {
  await import('./ec-ca.js');
  process.exit(process.exitCode ?? 0);
}
// `npm run bench -- --ocsp`: the OCSP responder benchmark (bench/ocsp.ts) instead.
if (process.argv.includes('--ocsp')) {
  await import('./ocsp.js');
  process.exit(0);
}

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', short: 'n', default: '2000' },
    c: { type: 'string', short: 'c', default: '16' },
    workers: { type: 'string', default: '1,2' },
    db: { type: 'string', default: 'sqlite' },
    'pg-url': { type: 'string' },
    'ca-key-size': { type: 'string', default: '2048' },
    /** With --ra: the RA's own RSA key size (default: the CA's). */
    'ra-key-size': { type: 'string' },
    prefill: { type: 'string', default: '0' },
    instances: { type: 'string', default: '1' },
    keys: { type: 'string', default: '512' },
    warmup: { type: 'string', default: '1000' },
    'speed-seconds': { type: 'string', default: '3' },
    'no-micromdm': { type: 'boolean', default: false },
    profile: { type: 'string' },
    json: { type: 'string' },
    'keep-dir': { type: 'boolean', default: false },
    'from-source': { type: 'boolean', default: false },
    hsm: { type: 'boolean', default: false },
    ra: { type: 'boolean', default: false },
    'server-cpus': { type: 'string' },
    poll: { type: 'boolean', default: false },
    /** A compiled CLI entry to run instead of compiling src/ (A/B comparisons with another tree). */
    entry: { type: 'string' },
    pending: { type: 'string', default: '256' },
    /** Writes each scepter run's per-request send times and latencies to FILE.TAG.json. */
    latencies: { type: 'string' },
    /** A command to run each scepter server under, space-separated (e.g. "strace -f -c -o F"). */
    'server-wrap': { type: 'string', default: '' },
    /** Extra node flags for the server, space-separated (e.g. "--trace-gc"). */
    'node-flags': { type: 'string', default: '' },
    /** Server with --trace-gc; prints the slowest requests' clusters next to V8's collections. */
    'gc-timeline': { type: 'boolean', default: false },
    /**
     * Also runs the same load against the floor server (bench/lib/floor.ts: node:http and the
     * unavoidable crypto, with and without a store), pinned like scepter, in the same run.
     */
    floor: { type: 'boolean', default: false },
  },
});
const EXTRA_NODE_FLAGS = [
  ...String(args['node-flags'])
    .split(' ')
    .filter((f) => f !== ''),
  ...(args['gc-timeline']
    ? ['--trace-gc', `--import=${fileURLToPath(new URL('./lib/time-origin.mjs', import.meta.url))}`]
    : []),
];

const N = Number(args.n);
const C = Number(args.c);
const WORKERS = String(args.workers)
  .split(',')
  .map((w) => Number(w.trim()));
const KEY_SIZE = Number(args['ca-key-size']) as CaKeySize;
const RA_KEY_SIZE = Number(args['ra-key-size'] ?? KEY_SIZE) as CaKeySize;
if (args['ra-key-size'] !== undefined && !args.ra) throw new Error('--ra-key-size needs --ra');
/** The RSA work of one enrollment at `openssl speed` rates, ms (set once measured). */
let rsaMsPerEnrollment = NaN;
const PREFILL = Number(args.prefill);
const INSTANCES = Number(args.instances);
const CHALLENGE = `bench-${randomBytes(8).toString('hex')}`;
const PG_BASE = args['pg-url'] ?? process.env.SCEPTER_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';
if (![2048, 3072, 4096].includes(KEY_SIZE)) throw new Error('--ca-key-size must be 2048, 3072 or 4096');
if (args.db !== 'sqlite' && args.db !== 'postgres') throw new Error('--db must be sqlite or postgres');
if (WORKERS.some((w) => !Number.isInteger(w) || w < 1)) throw new Error('--workers: a list such as 1,2');
if (!Number.isInteger(INSTANCES) || INSTANCES < 1) throw new Error('--instances must be ≥ 1');
if (INSTANCES > 1 && args.db !== 'postgres') throw new Error('--instances > 1 needs --db postgres');
if (args.floor && (args.hsm || args['ra-key-size'] !== undefined)) {
  throw new Error('--floor signs with one software key: not with --hsm or --ra-key-size');
}

const log = (s: string) => process.stderr.write(s + '\n');

/** One measured configuration. */
interface Row {
  name: string;
  /** The floor server (--floor), not scepter; with its store or not. */
  floor?: boolean;
  floorStore?: boolean;
  /** The CA key was on a SoftHSM2 token (--hsm). */
  hsm?: boolean;
  workers: number | null;
  prefill: number;
  instances: number;
  /** Requests resent to another instance that did not get the byte-identical certificate. */
  resendMismatches: number | null;
  n: number;
  ok: number;
  failures: number;
  duplicateSerials: number;
  missingInStore: number | null;
  perSecond: number;
  p50: number;
  p99: number;
  /** The server's own time per request (log lines, src/server/app.ts), scepter only. */
  handlerP50: number | null;
  handlerP99: number | null;
  peakRssMiB: number;
  /** Server CPU time (all threads) per successful enrollment, ms. */
  cpuMsPerEnrollment: number;
  /** Cores the server used on average while measured (CPU time / wall time). */
  serverCores: number;
  /** Cores the load generator (this process) used meanwhile. */
  clientCores: number;
  load: number;
  reasons: Record<string, number>;
}

function summarize(
  name: string,
  r: LoadResult,
  c: CheckedLoad,
  peakKiB: number,
  extra: Partial<Row>,
  load: number,
  cpuS: number,
  clientCpuS: number,
): Row {
  return {
    name,
    workers: null,
    prefill: 0,
    instances: 1,
    resendMismatches: null,
    n: r.replies.length,
    ok: c.ok,
    failures: c.failures,
    duplicateSerials: c.duplicateSerials,
    missingInStore: null,
    perSecond: (c.ok / r.wallMs) * 1000,
    p50: percentile(r.latencies, 50),
    p99: percentile(r.latencies, 99),
    handlerP50: null,
    handlerP99: null,
    peakRssMiB: peakKiB / 1024,
    cpuMsPerEnrollment: (cpuS * 1000) / c.ok,
    serverCores: cpuS / (r.wallMs / 1000),
    clientCores: clientCpuS / (r.wallMs / 1000),
    load,
    reasons: Object.fromEntries(c.reasons),
    ...extra,
  };
}

/** A fresh store URL for one run (SQLite file or a new PostgreSQL database) and its cleanup. */
async function freshStore(dir: string, tag: string): Promise<{ url: string; drop(): Promise<void> }> {
  if (args.db === 'sqlite') return { url: `sqlite:${join(dir, `${tag}.db`)}`, drop: async () => undefined };
  const base = new URL(PG_BASE);
  const name = `scepter_bench_${process.pid}_${tag.replace(/\W/g, '_')}`;
  const admin = new pg.Client({ connectionString: base.toString() });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name}`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(base.toString());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const a = new pg.Client({ connectionString: base.toString() });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
    },
  };
}

/** Bulk pre-fill: M synthetic certificates of this issuer, through the store's bulk insert. */
async function prefill(url: string, m: number, issuer: string): Promise<number> {
  const t0 = Date.now();
  const store = await openStore(url);
  const der = randomBytes(1100);
  const now = Date.now();
  const chunk = 20_000;
  try {
    for (let done = 0; done < m; done += chunk) {
      const batch: NewCertificate[] = [];
      for (let i = done; i < Math.min(m, done + chunk); i++) {
        batch.push({
          serial: '7e' + randomBytes(15).toString('hex'),
          issuer,
          subject: `CN=prefill-${i},O=Scepter Load`,
          commonName: `prefill-${i}`,
          sans: [`dns:prefill-${i}.load.test`],
          der,
          notBefore: new Date(now),
          notAfter: new Date(now + 365 * 86_400_000),
          keyHash: randomBytes(32).toString('hex'),
          transactionId: randomBytes(16).toString('hex'),
        });
      }
      await store.bulkInsertCertificates(batch);
      if ((done / chunk) % 10 === 0) log(`  prefill ${done + batch.length}/${m}`);
    }
  } finally {
    await store.close();
  }
  return (Date.now() - t0) / 1000;
}

/** Looks every successful serial up in the store after the server stopped. */
async function missingInStore(
  url: string,
  serials: Array<string | undefined>,
  txIds: string[],
): Promise<number> {
  const store = await openStore(url);
  let missing = 0;
  try {
    for (let i = 0; i < serials.length; i++) {
      const s = serials[i];
      if (s === undefined) continue;
      const rec = await store.getCertificate(s);
      if (!rec || rec.transactionId !== txIds[i]) missing++;
    }
    const report = await store.integrityCheck();
    if (!report.ok) log(`  store integrity problems: ${report.problems.join('; ')}`);
  } finally {
    await store.close();
  }
  return missing;
}

/**
 * Warms up, then measures; with several instances RSS is the largest peak, CPU the sum.
 * `scepter`: the servers are scepter's, whose /metrics give the store commits per request.
 */
async function measure(
  servers: ServerProcess[],
  warm: readonly LoadItem[],
  reqs: readonly LoadItem[],
  scepter = true,
): Promise<{ r: LoadResult; peakKiB: number; load: number; cpuS: number; clientCpuS: number }> {
  const urls = servers.map((s) => s.url);
  const cpu = () => servers.reduce((a, s) => a + cpuSeconds(s.pid), 0);
  const commits = async (): Promise<number[]> =>
    !scepter
      ? servers.map(() => NaN)
      : Promise.all(
          servers.map(async (s) => {
            try {
              const text = await (await fetch(s.url.replace(/\/scep$/, '/metrics'))).text();
              return Number(/^scepter_store_commits_total (\d+)/m.exec(text)?.[1] ?? NaN);
            } catch {
              return NaN;
            }
          }),
        );
  // Once before the load: the first fetch() loads undici (tens of ms of this thread), which
  // would otherwise stall the load generator inside the measured window.
  await commits();
  // Taken when the first measured request leaves (warm-up requests still in flight).
  let start:
    | {
        load: number;
        rss: Array<{ stop(): number }>;
        commits: Promise<number[]>;
        threads: ReturnType<typeof threadTimes>[];
        cpu: number;
        client: NodeJS.CpuUsage;
      }
    | undefined;
  const r = await runMeasured(urls, warm, reqs, C, () => {
    start = {
      load: loadAverage(),
      rss: servers.map((s) => sampleRss(s.pid)),
      commits: commits(),
      threads: servers.map((s) => threadTimes(s.pid)),
      cpu: cpu(),
      client: process.cpuUsage(),
    };
  });
  if (!start) throw new Error('the measured phase never started');
  const { load, rss } = start;
  const commits0 = await start.commits;
  const threads0 = start.threads;
  const client0 = start.client;
  const cpuS = cpu() - start.cpu;
  // Per thread, per request (ms of CPU, context switches): where a second engine's cost goes.
  const threads1 = servers.map((s) => threadTimes(s.pid));
  const commits1 = await commits();
  servers.forEach((s, k) =>
    log(
      `  per request: ${threadReport(s.pid, threads0[k]!, threads1[k]!, reqs.length)}` +
        (scepter ? `; store commits ${((commits1[k]! - commits0[k]!) / reqs.length).toFixed(3)}` : ''),
    ),
  );
  const client = process.cpuUsage(client0);
  const peakKiB = Math.max(...rss.map((x) => x.stop()));
  return { r, peakKiB, load, cpuS, clientCpuS: (client.user + client.system) / 1e6 };
}

/**
 * Resends up to `count` successful requests to the NEXT instance; counts replies that are not
 * a SUCCESS with the byte-identical certificate.
 */
async function resendElsewhere(
  servers: ServerProcess[],
  reqs: PreparedEnrollment[],
  r: LoadResult,
  checked: CheckedLoad,
  trusted: Certificate[],
  count: number,
): Promise<number> {
  let mismatches = 0;
  let done = 0;
  for (let i = 0; i < reqs.length && done < count; i++) {
    if (checked.serials[i] === undefined) continue;
    const e = reqs[i] as PreparedEnrollment;
    const before = r.replies[i] as { status: number; body: Buffer };
    const first = checkReply(before.status, before.body, e, trusted);
    const other = servers[(i + 1) % servers.length] as ServerProcess;
    const again = await postPkiMessage(other.url, e.der);
    const c = checkReply(again.status, again.body, e, trusted);
    if (!first.ok || !c.ok || !c.certDer.equals(first.certDer)) mismatches++;
    done++;
  }
  return mismatches;
}

/** `count` requests to `recipient`; request i uses key (first + i) mod pool, round-robin. */
function build(
  recipient: Certificate,
  keys: PreparedEnrollment['key'][],
  count: number,
  prefix: string,
  first = 0,
) {
  return Array.from({ length: count }, (_, i) =>
    makeEnrollment({
      key: keys[(first + i) % keys.length]!,
      recipient,
      challenge: CHALLENGE,
      cn: `${prefix}-${i}`,
    }),
  );
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'scepter-bench-'));
  const rows: Row[] = [];
  try {
    log(
      `machine: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}, load ${loadAverage()}`,
    );
    log(`openssl speed -seconds ${args['speed-seconds']} rsa${KEY_SIZE} …`);
    const signPerSec = opensslRsaSignPerSecond(KEY_SIZE, Number(args['speed-seconds']));
    // An RA key of another size (--ra-key-size): the RA decrypts and signs the CertRep, the CA
    // signs the certificate.
    const raSignPerSec =
      RA_KEY_SIZE === KEY_SIZE
        ? signPerSec
        : opensslRsaSignPerSecond(RA_KEY_SIZE, Number(args['speed-seconds']));
    rsaMsPerEnrollment = 1000 * (1 / signPerSec + 2 / raSignPerSec);
    const bound1 = 1000 / rsaMsPerEnrollment;
    log(
      `  ${signPerSec.toFixed(0)} sign/s${RA_KEY_SIZE === KEY_SIZE ? '' : `, RA RSA-${RA_KEY_SIZE} ${raSignPerSec.toFixed(0)} sign/s`} → RSA bound ${bound1.toFixed(0)} enrollments/s per core`,
    );

    let builtEntry: string | undefined;
    if (args.entry) {
      builtEntry = args.entry;
    } else if (!args['from-source']) {
      log('compiling src/ (tsconfig.build.json) to .tmp/bench-dist …');
      builtEntry = buildForBench(process.cwd(), join(process.cwd(), '.tmp/bench-dist'));
    }
    const dataDir = join(dir, 'scepter');
    const ca = await initCa(dataDir, {
      keySize: KEY_SIZE,
      ...(args.ra ? { ra: true } : {}),
      ...(args['ra-key-size'] !== undefined ? { raKeySize: RA_KEY_SIZE } : {}),
    });
    const caCert = ca.caCert;
    // Envelopes go to the RA when there is one (as GetCACert tells clients).
    const recipient = ca.raCert ?? caCert;
    const trusted = ca.raCert ? [ca.raCert, caCert] : [caCert];
    const serverCpus = args['server-cpus'] ? { cpus: args['server-cpus'] } : {};
    log(`generating ${args.keys} client keys and ${N} + ${args.warmup} requests (untimed) …`);
    const keys = await benchKeys(join(process.cwd(), '.tmp/bench-keys'), Number(args.keys));
    if (args.poll) {
      const signer = { key: softwareSignerKey(dataDir) };
      const store = await freshStore(dir, 'poll');
      try {
        const res = await pollBench({
          serve: {
            dataDir,
            challenge: CHALLENGE,
            db: store.url,
            workers: Number(WORKERS[0]),
            ...(builtEntry ? { builtEntry } : {}),
            logFile: join(dir, 'scepter-poll.log'),
            ...serverCpus,
            nodeFlags: [
              ...EXTRA_NODE_FLAGS,
              ...(args.profile ? ['--cpu-prof', '--cpu-prof-dir', join(args.profile, 'poll')] : []),
            ],
          },
          recipient,
          ca: caCert,
          trusted,
          signerKey: signer.key,
          keys,
          pending: Number(args.pending),
          n: N,
          c: C,
          warmup: Number(args.warmup),
        });
        const floors = [];
        if (args.floor) {
          const load = floorLoad(dir, 'poll', signer.key, keys);
          for (const withStore of [false, true]) {
            const { m, checked } = await floorRun(dir, load, withStore);
            floors.push({
              name: `floor (node:http, key import, verify${withStore ? ', store read' : ''}, sign)`,
              cpuMsPerPoll: (m.cpuS * 1000) / checked.ok,
              failures: checked.failures,
            });
          }
        }
        reportPoll(res, signPerSec, floors);
        if (args.json)
          writeFileSync(
            args.json,
            JSON.stringify(
              { date: new Date().toISOString(), keySize: KEY_SIZE, signPerSec, ...res },
              null,
              2,
            ),
          );
      } finally {
        await store.drop();
      }
      return;
    }
    const warm = build(recipient, keys, Number(args.warmup), 'warm');
    const reqs = build(recipient, keys, N, 'dev', Number(args.warmup));
    const txIds = reqs.map((e) => e.transactionId);

    const software = { dataDir, caCert, warm, reqs, txIds };
    const hsmSet = args.hsm ? await softHsmCa(dir, keys) : undefined;

    const scenarios: Array<{ workers: number; prefill: number; instances: number; hsm?: boolean }> =
      WORKERS.map((w) => ({
        workers: w,
        prefill: 0,
        instances: 1,
      }));
    if (PREFILL > 0) scenarios.push({ workers: WORKERS[0] as number, prefill: PREFILL, instances: 1 });
    if (INSTANCES > 1) scenarios.push({ workers: WORKERS[0] as number, prefill: 0, instances: INSTANCES });
    if (hsmSet) for (const w of WORKERS) scenarios.push({ workers: w, prefill: 0, instances: 1, hsm: true });

    for (const sc of scenarios) {
      const { dataDir, caCert, warm, reqs, txIds } = sc.hsm && hsmSet ? hsmSet : software;
      const tag = `w${sc.workers}-p${sc.prefill}-i${sc.instances}${sc.hsm ? '-hsm' : ''}`;
      const store = await freshStore(dir, tag);
      try {
        if (sc.prefill > 0) {
          log(`pre-filling ${sc.prefill} certificates …`);
          const s = await prefill(store.url, sc.prefill, caCert.fingerprint);
          log(`  done in ${s.toFixed(1)} s`);
        }
        const profDir = args.profile ? join(args.profile, tag) : undefined;
        const servers: ServerProcess[] = [];
        for (let k = 0; k < sc.instances; k++) {
          servers.push(
            await startScepter({
              dataDir,
              challenge: CHALLENGE,
              db: store.url,
              workers: sc.workers,
              ...(builtEntry ? { builtEntry } : {}),
              logFile: join(dir, `scepter-${tag}-${k}.log`),
              ...serverCpus,
              nodeFlags: [...EXTRA_NODE_FLAGS, ...(profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [])],
              wrap: String(args['server-wrap'])
                .split(' ')
                .filter((w) => w !== ''),
            }),
          );
        }
        log(
          `scepter (${sc.instances > 1 ? `${sc.instances} instances × ` : ''}${sc.workers} worker${sc.workers > 1 ? 's' : ''}, ${args.db}, prefill ${sc.prefill}${sc.hsm ? ', CA key on SoftHSM2' : ''}): n=${N} c=${C} …`,
        );
        let m;
        let checked: CheckedLoad;
        let resendMismatches: number | null = null;
        try {
          m = await measure(servers, warm, reqs);
          checked = checkLoad(m.r, reqs, trusted);
          if (sc.instances > 1)
            resendMismatches = await resendElsewhere(servers, reqs, m.r, checked, trusted, 200);
        } finally {
          for (const s of servers) await s.stop();
        }
        const handler = servers.flatMap((_, k) =>
          handlerLatencies(readFileSync(join(dir, `scepter-${tag}-${k}.log`), 'utf8'), warm.length),
        );
        if (args['gc-timeline'])
          for (const line of gcTimeline(
            m.r,
            performance.timeOrigin,
            servers.flatMap((_, k) => gcEvents(readFileSync(join(dir, `scepter-${tag}-${k}.log`), 'utf8'))),
          ))
            log(line);
        if (args.latencies)
          writeFileSync(
            `${args.latencies}.${tag}.json`,
            JSON.stringify({
              timeOrigin: performance.timeOrigin,
              starts: m.r.starts,
              latencies: m.r.latencies,
              handler,
            }),
          );
        const missing = await missingInStore(store.url, checked.serials, txIds);
        const row = summarize(
          `scepter ${sc.instances > 1 ? `${sc.instances}×` : ''}${sc.workers}w${sc.prefill ? ` +${sc.prefill} stored` : ''}${sc.hsm ? ' SoftHSM' : ''}`,
          m.r,
          checked,
          m.peakKiB,
          {
            workers: sc.workers,
            prefill: sc.prefill,
            instances: sc.instances,
            resendMismatches,
            missingInStore: missing,
            handlerP50: percentile(handler, 50),
            handlerP99: percentile(handler, 99),
            ...(sc.hsm ? { hsm: true } : {}),
          },
          m.load,
          m.cpuS,
          m.clientCpuS,
        );
        rows.push(row);
        log(
          `  ${row.perSecond.toFixed(0)}/s p50 ${row.p50.toFixed(1)} ms p99 ${row.p99.toFixed(1)} ms, RSS ${row.peakRssMiB.toFixed(0)} MiB, failures ${row.failures}, missing ${missing}`,
        );
      } finally {
        await store.drop();
      }
    }

    if (args.floor) {
      const load = floorLoad(dir, 'enroll', softwareSignerKey(dataDir), keys);
      // Without and with the store; and, when scepter ran with two, two engines without it.
      const floors = [
        { withStore: false, engines: 1 },
        { withStore: true, engines: 1 },
        ...(WORKERS.includes(2) ? [{ withStore: false, engines: 2 }] : []),
      ];
      for (const f of floors) {
        const { m, checked } = await floorRun(dir, load, f.withStore, f.engines);
        const name = `floor${f.engines > 1 ? ` ${f.engines} engines` : ''}: node:http + crypto${f.withStore ? ' + SQLite store' : ''}`;
        rows.push(
          summarize(
            name,
            m.r,
            checked,
            m.peakKiB,
            { workers: f.engines, floor: true, floorStore: f.withStore },
            m.load,
            m.cpuS,
            m.clientCpuS,
          ),
        );
      }
    }

    if (!args['no-micromdm'] && hasCommand('scepserver')) {
      const depot = join(dir, 'depot');
      initMicromdmDepot(depot, KEY_SIZE);
      const mmCa = parseCertificate(fromPem(readFileSync(join(depot, 'ca.pem'), 'utf8'))[0]!);
      const mmWarm = build(mmCa, keys, Math.min(50, Number(args.warmup)), 'mm-warm');
      const mmReqs = build(mmCa, keys, N, 'mm-dev', Math.min(50, Number(args.warmup)));
      const server = await startMicromdm(depot, CHALLENGE, join(dir, 'micromdm.log'));
      log(`micromdm scepserver: n=${N} c=${C} …`);
      let m;
      try {
        m = await measure([server], mmWarm, mmReqs, false);
      } finally {
        await server.stop();
      }
      const checked = checkLoad(m.r, mmReqs, [mmCa], { allowSingleDes: true });
      const row = summarize('micromdm scepserver', m.r, checked, m.peakKiB, {}, m.load, m.cpuS, m.clientCpuS);
      rows.push(row);
      log(
        `  ${row.perSecond.toFixed(0)}/s, failures ${row.failures}, duplicate serials ${row.duplicateSerials}`,
      );
    } else {
      log('micromdm scepserver: skipped (not installed or --no-micromdm)');
    }

    report(rows, signPerSec, bound1);
    if (args.json) {
      writeFileSync(
        args.json,
        JSON.stringify(
          {
            date: new Date().toISOString(),
            cores: availableParallelism(),
            n: N,
            c: C,
            keySize: KEY_SIZE,
            db: args.db,
            signPerSec,
            rows,
          },
          null,
          2,
        ),
      );
    }
  } finally {
    if (args['keep-dir']) log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

/** The poll figures: CPU per PENDING answer against its RSA floor (one signature), same run. */
function reportPoll(
  r: Awaited<ReturnType<typeof pollBench>>,
  signPerSec: number,
  floors: ReadonlyArray<{ name: string; cpuMsPerPoll: number; failures: number }> = [],
): void {
  const opensslMs = 1000 / signPerSec;
  const out = [
    '',
    `PENDING polls (CertPoll of a pending request), RSA-${KEY_SIZE}${args.ra ? ' RA' : ''}, n=${r.polls} c=${C} workers=${WORKERS[0]}`,
    '',
    '| polls/s | p50 ms | p99 ms | not PENDING | server CPU ms/poll | 1 RSA sign ms (openssl) | 1 RSA sign ms (node, same key) | CPU beyond 1 sign ms (node) | polls per RSA sign/s (openssl) |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    `| ${r.perSecond.toFixed(0)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.notPending} | ${r.cpuMsPerPoll.toFixed(3)} | ${opensslMs.toFixed(3)} | ${r.nodeSignMs.toFixed(3)} | ${(r.cpuMsPerPoll - r.nodeSignMs).toFixed(3)} | ${(opensslMs / r.cpuMsPerPoll).toFixed(2)} |`,
    '',
    `devices polling every 60 s per core: ${(60_000 / r.cpuMsPerPoll).toFixed(0)}; 10,000 devices: ${(((10_000 / 60) * r.cpuMsPerPoll) / 1000).toFixed(3)} cores; 1,000,000 devices: ${(((1_000_000 / 60) * r.cpuMsPerPoll) / 1000).toFixed(2)} cores`,
  ];
  for (const f of floors)
    out.push(
      `${f.name}: ${f.cpuMsPerPoll.toFixed(3)} ms CPU per poll, ${(f.cpuMsPerPoll - r.nodeSignMs).toFixed(3)} beyond 1 sign (node), ${f.failures} failures; scepter spends ${(r.cpuMsPerPoll - f.cpuMsPerPoll).toFixed(3)} ms more`,
    );
  process.stdout.write(out.join('\n') + '\n');
}

/** The key that decrypts and signs CertReps: the RA's, or the CA's (read from its file). */
function softwareSignerKey(dataDir: string): KeyObject {
  const loaded = loadCa(dataDir);
  const key = loaded.ra?.key ?? readPrivateKey(loaded.paths.key, undefined, 'the CA key');
  loaded.close();
  // The poll bench and the floor time node:crypto with this key: a software key (this data dir's).
  if (!(key instanceof KeyObject)) throw new Error('the poll bench and --floor need a software CA/RA key');
  return key;
}

/** What every floor run of one kind shares: the signing key's file and the requests (untimed). */
interface FloorLoad {
  kind: FloorKind;
  caKeyFile: string;
  warm: LoadItem[];
  reqs: LoadItem[];
}

function floorLoad(dir: string, kind: FloorKind, key: KeyObject, keys: KeyObject[]): FloorLoad {
  const caKeyFile = join(dir, 'floor-key.pem');
  writeFileSync(caKeyFile, key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const pub = createPublicKey(key);
  return {
    kind,
    caKeyFile,
    warm: floorRequests(kind, keys, pub, Number(args.warmup)),
    reqs: floorRequests(kind, keys, pub, N, Number(args.warmup)),
  };
}

/** `--floor`: the same load, pinning and warm-up against the floor server (bench/lib/floor.ts). */
async function floorRun(
  dir: string,
  { kind, caKeyFile, warm, reqs }: FloorLoad,
  withStore: boolean,
  engines = 1,
): Promise<{ m: Awaited<ReturnType<typeof measure>>; checked: CheckedLoad }> {
  const storeDir = join(dir, `floor-${kind}-${withStore ? 'store' : 'none'}-${engines}`);
  mkdirSync(storeDir, { recursive: true });
  const server = await startFloor({
    caKeyFile,
    ...(withStore ? { storeDir } : {}),
    ...(engines > 1 ? { engines } : {}),
    logFile: join(storeDir, 'server.log'),
    ...(args['server-cpus'] ? { cpus: args['server-cpus'] } : {}),
    nodeFlags: EXTRA_NODE_FLAGS,
  });
  log(
    `floor (${kind}${withStore ? ', store' : ''}${engines > 1 ? `, ${engines} engines` : ''}): n=${N} c=${C} …`,
  );
  try {
    const m = await measure([Object.assign({}, server, { url: floorUrl(server, kind) })], warm, reqs, false);
    return { m, checked: checkFloor(m.r) };
  } finally {
    await server.stop();
  }
}

function report(rows: Row[], signPerSec: number, bound1: number): void {
  const mm = rows.find((r) => r.workers === null);
  const one = rows.find((r) => r.workers === 1 && r.prefill === 0 && r.instances === 1 && !r.hsm && !r.floor);
  const cores = availableParallelism();
  const out: string[] = [];
  out.push('');
  out.push(
    `RSA-${KEY_SIZE}${RA_KEY_SIZE === KEY_SIZE ? '' : ` CA + RSA-${RA_KEY_SIZE} RA`}: openssl ${signPerSec.toFixed(0)} sign/s per core (CA key size) → bound ${bound1.toFixed(0)} enrollments/s per core`,
  );
  out.push(`n=${N} c=${C} db=${args.db} cores=${cores}`);
  out.push('');
  out.push(
    '| server | enrollments/s | p50 ms | p99 ms | p99/p50 | server-side p50 / p99 ms | peak RSS MiB | failures | dup serials | not in store | ×micromdm | of RSA bound | CPU ms/enr | RSA share of CPU | server cores | client cores | load avg |',
  );
  out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  // Load-independent efficiency: the RSA work (3 private ops at openssl speed) over the
  // server CPU time actually spent per enrollment.
  const rsaMs = rsaMsPerEnrollment;
  for (const r of rows) {
    const bound = r.workers === null ? NaN : bound1 * Math.min(r.workers * r.instances, cores);
    const xmm = mm && r !== mm ? (r.perSecond / mm.perSecond).toFixed(1) + '×' : '';
    const ofBound = Number.isNaN(bound) ? '' : `${((r.perSecond / bound) * 100).toFixed(0)}%`;
    out.push(
      `| ${r.name} | ${r.perSecond.toFixed(0)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${(r.p99 / r.p50).toFixed(2)} | ${r.handlerP50 === null ? '' : `${r.handlerP50.toFixed(1)} / ${(r.handlerP99 ?? NaN).toFixed(1)}`} | ${r.peakRssMiB.toFixed(0)} | ${r.failures} | ${r.duplicateSerials} | ${r.missingInStore ?? ''} | ${xmm} | ${ofBound} | ${r.cpuMsPerEnrollment.toFixed(2)} | ${r.workers === null ? '' : `${((rsaMs / r.cpuMsPerEnrollment) * 100).toFixed(0)}%`} | ${r.serverCores.toFixed(2)} | ${r.clientCores.toFixed(2)} | ${r.load.toFixed(2)} |`,
    );
  }
  const two = rows.find((r) => r.workers === 2 && r.prefill === 0 && r.instances === 1 && !r.hsm && !r.floor);
  for (const h of rows.filter((r) => r.hsm)) {
    const base = rows.find((r) => !r.hsm && r.workers === h.workers && r.prefill === 0 && r.instances === 1);
    if (base)
      out.push(
        `CA key on SoftHSM2 / software key, ${h.workers}w: ${(h.perSecond / base.perSecond).toFixed(2)}× enrollments/s, ` +
          `${(h.cpuMsPerEnrollment / base.cpuMsPerEnrollment).toFixed(2)}× server CPU per enrollment`,
      );
  }
  const filled = rows.find((r) => r.prefill > 0);
  for (const r of rows.filter((x) => x.instances > 1)) {
    out.push(
      `${r.name} on one PostgreSQL: ${r.failures} failures, ${r.duplicateSerials} duplicate serials, ` +
        `${r.resendMismatches} of 200 resends to the other instance without the identical certificate`,
    );
  }
  out.push('');
  if (one && two) out.push(`2 workers / 1 worker: ${(two.perSecond / one.perSecond).toFixed(2)}×`);
  if (filled) {
    const base = rows.find((r) => r.workers === filled.workers && r.prefill === 0);
    if (base)
      out.push(
        `${filled.prefill} stored / empty: ${((filled.perSecond / base.perSecond) * 100).toFixed(0)}%`,
      );
  }
  const floor1 = rows.find((r) => r.floor && r.workers === 1 && !r.floorStore);
  const floor2 = rows.find((r) => r.floor && r.workers === 2);
  if (floor1 && floor2)
    out.push(
      `floor, 2 engines / 1 engine: ${(floor2.cpuMsPerEnrollment / floor1.cpuMsPerEnrollment).toFixed(2)}× server CPU per request` +
        (one && two ? ` (scepter: ${(two.cpuMsPerEnrollment / one.cpuMsPerEnrollment).toFixed(2)}×)` : ''),
    );
  for (const f of rows.filter((r) => r.floor && r.workers === 1)) {
    if (one)
      out.push(
        `${f.name}: ${f.cpuMsPerEnrollment.toFixed(2)} ms CPU per request; scepter 1w spends ${(one.cpuMsPerEnrollment - f.cpuMsPerEnrollment).toFixed(2)} ms more (${(one.cpuMsPerEnrollment / f.cpuMsPerEnrollment).toFixed(2)}×)`,
      );
  }
  for (const r of rows) {
    for (const [why, count] of Object.entries(r.reasons)) out.push(`  ${r.name}: ${count} × ${why}`);
  }
  process.stdout.write(out.join('\n') + '\n');
}

/**
 * --hsm: a SoftHSM2 token in `dir` (SOFTHSM2_CONF is set for the server processes), a CA whose
 * key is generated on it, and the same requests addressed to that CA.
 */
async function softHsmCa(dir: string, keys: PreparedEnrollment['key'][]) {
  const module = process.env.SCEPTER_SOFTHSM_MODULE ?? '/usr/lib/softhsm/libsofthsm2.so';
  if (!hasCommand('softhsm2-util')) throw new Error('--hsm needs softhsm2-util (Debian softhsm2)');
  const tokens = join(dir, 'softhsm');
  mkdirSync(tokens, { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  process.env.SOFTHSM2_CONF = conf;
  const pinFile = join(dir, 'hsm-pin');
  writeFileSync(pinFile, 'bench-pin\n', { mode: 0o600 });
  execFileSync(
    'softhsm2-util',
    ['--init-token', '--free', '--label', 'bench', '--pin', 'bench-pin', '--so-pin', 'bench-so-pin'],
    {
      stdio: 'pipe',
    },
  );
  const dataDir = join(dir, 'scepter-hsm');
  log('generating the CA key on the SoftHSM2 token …');
  const ca = await initCa(dataDir, {
    keySize: KEY_SIZE,
    pkcs11Uri: `pkcs11:token=bench;object=ca;id=%01?module-path=${module}&pin-source=file:${pinFile}`,
  });
  const warm = build(ca.caCert, keys, Number(args.warmup), 'hsm-warm');
  const reqs = build(ca.caCert, keys, N, 'hsm-dev', Number(args.warmup));
  return { dataDir, caCert: ca.caCert, warm, reqs, txIds: reqs.map((e) => e.transactionId) };
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
