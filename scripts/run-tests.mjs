#!/usr/bin/env node
// Runs every test file under test/ with Node's built-in test runner (node:test) and tsx.
// Node 20's `--test` takes no globs, so the files are listed here. Pass paths or substrings
// to run a subset: `npm test -- store cms`.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
let files = walk('test').sort();
if (filters.length) files = files.filter((f) => filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
console.log(`running ${files.length} test files: ${files.map((f) => relative('.', f)).join(' ')}`);
// Files run in parallel processes: one more than the cores, since most files spend much of
// their time waiting on sockets and child processes (SCEPTER_TEST_CONCURRENCY overrides).
const concurrency = Number(process.env.SCEPTER_TEST_CONCURRENCY) || Math.max(2, availableParallelism() + 1);
// A hang detector, not a timing assertion: a single test still running after 5 minutes fails
// instead of stalling the suite (interop tests set their own, shorter, limits).
const args = [
  '--import',
  'tsx',
  '--test',
  '--test-reporter=spec',
  `--test-concurrency=${concurrency}`,
  '--test-timeout=300000',
  ...files,
];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
