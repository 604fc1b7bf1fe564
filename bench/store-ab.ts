/**
 * Same-run A/B of the store's CPU per issuance: another version of `src/store` (A) against
 * this checkout's (B), in one process, alternating rounds (A first in even rounds, B first in
 * odd ones), each on its own SQLite file (on-disk, default options: WAL, off-thread fsync).
 *
 *   mkdir -p .tmp/base && git archive REV src | tar -x -C .tmp/base   # the version to compare
 *   node --import tsx bench/store-ab.ts --a .tmp/base/src/store/index.ts [-n 1000] [-c 16]
 *     [--rounds 12] [--no-audit]
 *
 * One issuance is `beginTransaction` (approved) + `recordIssued` with its `enroll.issued`
 * audit record (as bench/audit.ts), C in flight. Prints the CPU µs of this process per
 * issuance of every round, the medians and the ratio B/A (with the per-round ratios): on a
 * shared machine only the ratio means something. Both databases grow during the run, the
 * same way. (Extract A inside the checkout, as above, so that its imports resolve.)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { openStore, type Store } from '../src/store/index.js';
import { issueSimulated } from './lib/issuance.js';

const { values: args } = parseArgs({
  options: {
    a: { type: 'string' },
    n: { type: 'string', short: 'n', default: '1000' },
    c: { type: 'string', short: 'c', default: '16' },
    rounds: { type: 'string', default: '12' },
    'no-audit': { type: 'boolean', default: false },
  },
});
if (!args.a) throw new Error('--a PATH: the index.ts of the store version to compare against');
const N = Number(args.n);
const C = Number(args.c);
const ROUNDS = Number(args.rounds);
const AUDIT = !args['no-audit'];

const other = (await import(pathToFileURL(resolve(args.a)).href)) as { openStore: typeof openStore };
const dir = mkdtempSync(join(tmpdir(), 'scepter-store-ab-'));
const a = await other.openStore(`sqlite:${join(dir, 'a.sqlite')}`);
const b = await openStore(`sqlite:${join(dir, 'b.sqlite')}`);

let next = 0;
async function issueOne(store: Store): Promise<void> {
  await issueSimulated(store, { id: `bench-${next++}`, audit: AUDIT });
}

/** CPU µs of this process per issuance over N issuances, C in flight. */
async function round(store: Store): Promise<number> {
  const cpu = process.cpuUsage();
  for (let i = 0; i < N; i += C)
    await Promise.all(Array.from({ length: Math.min(C, N - i) }, () => issueOne(store)));
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / N;
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
await round(a); // warm-up
await round(b);
const ra: number[] = [];
const rb: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  if (r % 2 === 0) {
    ra.push(await round(a));
    rb.push(await round(b));
  } else {
    rb.push(await round(b));
    ra.push(await round(a));
  }
}
const fmt = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(' ');
console.log(`n=${N} c=${C} audit=${AUDIT}, ${ROUNDS} alternating rounds, CPU µs per issuance`);
console.log(`A ${fmt(ra)} | median ${median(ra).toFixed(0)}`);
console.log(`B ${fmt(rb)} | median ${median(rb).toFixed(0)}`);
console.log(
  `B/A ${(median(rb) / median(ra)).toFixed(2)} (per round: ${rb.map((x, i) => (x / ra[i]!).toFixed(2)).join(' ')})`,
);
await a.close();
await b.close();
rmSync(dir, { recursive: true, force: true });
