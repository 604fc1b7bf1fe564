/**
 * Store write benchmark: durability cost (SQLite synchronous FULL vs NORMAL) and how group
 * commit shares it, plus PostgreSQL and the bulk pre-fill rate.
 *
 *   node --import tsx bench/store.ts [--n 2000] [--bulk 1000000] [--pg postgres://…] [--dir .tmp]
 *
 * Each run issues N certificates through beginTransaction + recordIssued, first one at a time
 * (every write waits for its own commit), then with C requests in flight (closed loop).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openStore, type NewCertificate, type Store, type StoreOptions } from '../src/store/index.js';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '2000' },
    bulk: { type: 'string', default: '0' },
    pg: { type: 'string' },
    dir: { type: 'string', default: '.tmp' },
  },
});
const N = Number(args.n);
const der = randomBytes(900);

function cert(i: number): NewCertificate {
  const now = Date.now();
  return {
    serial: '7f' + randomBytes(9).toString('hex'),
    issuer: 'ab'.repeat(32),
    subject: `CN=dev-${i},O=Bench`,
    commonName: `dev-${i}`,
    sans: [`dns:dev-${i}.bench.test`],
    der,
    notBefore: new Date(now),
    notAfter: new Date(now + 365 * 86_400_000),
    keyHash: randomBytes(32).toString('hex'),
    transactionId: null,
  };
}

let seq = 0;
async function enroll(s: Store): Promise<void> {
  const id = `b-${process.pid}-${seq++}`;
  await s.beginTransaction({ transactionId: id, signerKeyHash: 'ab', messageType: 19, state: 'approved' });
  await s.recordIssued({ transactionId: id, cert: cert(seq) });
}

/** Runs N enrollments with `c` in flight; returns enrollments/s and writes per commit. */
async function run(s: Store, c: number): Promise<{ rate: number; perCommit: number }> {
  const before = s.stats();
  let left = N;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (left-- > 0) await enroll(s);
    }),
  );
  const sec = (performance.now() - t0) / 1000;
  const after = s.stats();
  return {
    rate: N / sec,
    perCommit: (after.writes - before.writes) / Math.max(1, after.commits - before.commits),
  };
}

async function measure(label: string, url: string, opts: StoreOptions): Promise<void> {
  const s = await openStore(url, opts);
  try {
    for (const c of [1, 16, 64]) {
      const r = await run(s, c);
      console.log(
        `${label.padEnd(22)} C=${String(c).padEnd(3)} ${r.rate.toFixed(0).padStart(6)} enrollments/s  (2 writes each; ${r.perCommit.toFixed(1)} writes/commit)`,
      );
    }
  } finally {
    await s.close();
  }
}

const dir = mkdtempSync(join(args.dir, 'store-bench-'));
try {
  await measure('sqlite synchronous=FULL', `sqlite:${join(dir, 'full.db')}`, { synchronous: 'full' });
  await measure('sqlite synchronous=NORMAL', `sqlite:${join(dir, 'normal.db')}`, { synchronous: 'normal' });
  if (args.pg) {
    const schema = `scepter_bench_${randomBytes(4).toString('hex')}`;
    try {
      await measure('postgres', args.pg, { schema, poolSize: 16 });
    } finally {
      const c = new pg.Client({ connectionString: args.pg });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    }
  }
  const bulk = Number(args.bulk);
  if (bulk > 0) {
    // Rows are generated outside the timed part; batches of 100k (larger batches amortise the
    // random-key index pages each transaction rewrites).
    const s = await openStore(`sqlite:${join(dir, 'bulk.db')}`);
    let busy = 0;
    for (let i = 0; i < bulk; i += 100_000) {
      const rows = Array.from({ length: Math.min(100_000, bulk - i) }, (_, k) => cert(i + k));
      const t0 = performance.now();
      await s.bulkInsertCertificates(rows);
      busy += performance.now() - t0;
    }
    console.log(
      `sqlite bulk insert ${bulk} rows: ${(busy / 1000).toFixed(1)} s = ${(bulk / (busy / 1000)).toFixed(0)} rows/s`,
    );
    const t1 = performance.now();
    const hit = await s.searchCertificates({ san: `dev-${bulk - 7}.bench.test` });
    console.log(`  SAN lookup in ${(performance.now() - t1).toFixed(1)} ms (found ${hit.total})`);
    const t2 = performance.now();
    const near = await s.searchCertificates({ expiringWithinDays: 400, limit: 10 });
    console.log(
      `  expiring-within search in ${(performance.now() - t2).toFixed(1)} ms (total ${near.total})`,
    );
    await s.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
