/**
 * `node --import tsx bench/audit.ts [--db sqlite|postgres] [--pg-url URL] [-n 2000] [-c 16] [--stores 1]`:
 * the store-side cost of the audit trail on the issuance path, same run: `recordIssued` with
 * and without its `enroll.issued` audit record (the head read, the hash, the insert; in
 * PostgreSQL also the transaction and the advisory lock), alternating 4 rounds of each, C in
 * flight. Prints CPU µs of this process per issuance and issuances per second (medians).
 * SQLite runs in-process, so its CPU is the store's whole cost; PostgreSQL's server CPU is not
 * counted (see the per-second figure). Also prints the store's commits per issuance
 * (`beginTransaction` is one; PostgreSQL batches audited `recordIssued` calls, src/store/pg-batch.ts).
 * `--stores N` opens N stores on the same database (as N server instances would) and spreads
 * the issuances over them round-robin.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openStore, type Store } from '../src/store/index.js';
import { issueSimulated } from './lib/issuance.js';

const { values: args } = parseArgs({
  options: {
    db: { type: 'string', default: 'sqlite' },
    'pg-url': {
      type: 'string',
      default: process.env.SCEPTER_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test',
    },
    n: { type: 'string', short: 'n', default: '2000' },
    c: { type: 'string', short: 'c', default: '16' },
    stores: { type: 'string', default: '1' },
  },
});
const N = Number(args.n);
const C = Number(args.c);

const STORES = Number(args.stores);
const stores: Store[] = [];
let cleanup: () => Promise<void>;
if (args.db === 'postgres') {
  const schema = `scepter_bench_${randomBytes(4).toString('hex')}`;
  const url = args['pg-url']!;
  for (let i = 0; i < STORES; i++) stores.push(await openStore(url, { schema }));
  cleanup = async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(`DROP SCHEMA ${schema} CASCADE`);
    await c.end();
  };
} else {
  const dir = mkdtempSync(join(tmpdir(), 'scepter-bench-audit-'));
  for (let i = 0; i < STORES; i++) stores.push(await openStore(`sqlite:${join(dir, 'db.sqlite')}`));
  cleanup = async () => rmSync(dir, { recursive: true, force: true });
}

let next = 0;
const commits = () => stores.reduce((n, s) => n + s.stats().commits, 0);
async function issueOne(audit: boolean): Promise<void> {
  const n = next++;
  await issueSimulated(stores[n % STORES]!, {
    id: `bench-${n}`,
    audit,
    subject: { dn: 'CN=bench,O=Example', cn: 'bench' },
  });
}

async function round(audit: boolean): Promise<{ cpuUs: number; perSecond: number; commits: number }> {
  const commits0 = commits();
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < N; i += C)
    await Promise.all(Array.from({ length: Math.min(C, N - i) }, () => issueOne(audit)));
  const used = process.cpuUsage(cpu);
  return {
    cpuUs: (used.user + used.system) / N,
    perSecond: N / ((performance.now() - t0) / 1000),
    commits: (commits() - commits0) / N,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const out = {
  without: [] as Array<{ cpuUs: number; perSecond: number; commits: number }>,
  with: [] as Array<{ cpuUs: number; perSecond: number; commits: number }>,
};
await round(false); // warm-up
for (let r = 0; r < 4; r++) {
  out.without.push(await round(false));
  out.with.push(await round(true));
}
const cpuWithout = median(out.without.map((x) => x.cpuUs));
const cpuWith = median(out.with.map((x) => x.cpuUs));
const rateWithout = median(out.without.map((x) => x.perSecond));
const rateWith = median(out.with.map((x) => x.perSecond));
const commitsWithout = median(out.without.map((x) => x.commits));
const commitsWith = median(out.with.map((x) => x.commits));
console.log(`db=${args.db} n=${N} c=${C} stores=${STORES}, medians of 4 alternating rounds`);
console.log(`| recordIssued | CPU µs/issuance (this process) | issuances/s | commits/issuance |`);
console.log(`|---|---:|---:|---:|`);
console.log(
  `| without audit | ${cpuWithout.toFixed(0)} | ${rateWithout.toFixed(0)} | ${commitsWithout.toFixed(2)} |`,
);
console.log(`| with audit | ${cpuWith.toFixed(0)} | ${rateWith.toFixed(0)} | ${commitsWith.toFixed(2)} |`);
console.log(`| ratio | ${(cpuWith / cpuWithout).toFixed(2)} | ${(rateWith / rateWithout).toFixed(2)} | |`);
for (const s of stores) await s.close();
await cleanup();
