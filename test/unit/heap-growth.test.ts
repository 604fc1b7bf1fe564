/**
 * `scepter serve` sets V8's old-generation growth factor (src/cli/heap-growth.ts) unless the
 * operator set one. Checked in child processes through V8's own report of the limit it computes
 * after a full collection (`--trace-gc-verbose`: "[HeapController] Limit: … (factor)").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  heapGrowthSetByOperator,
  SERVER_HEAP_GROWING_PERCENT,
  serverHeapGrowingPercent,
} from '../../src/cli/heap-growth.js';

const MODULE = fileURLToPath(new URL('../../src/cli/heap-growth.ts', import.meta.url));

interface Child {
  /** node options before the script (an operator's command line). */
  nodeArgs?: string[];
  /** SCEPTER_HEAP_GROWING_PERCENT for the child. */
  env?: string;
  /** Set a 20% factor at run time first, where the operator check cannot see it. */
  preset?: boolean;
}

/**
 * Runs a child node that calls tuneServerHeapGrowth and forces a full collection. Returns what
 * the call returned and the factor V8 applied to the next limit.
 */
function childFactor(o: Child): { returned: string; factor: number } {
  const script = [
    `import { setFlagsFromString } from 'node:v8';`,
    `import { tuneServerHeapGrowth } from ${JSON.stringify(MODULE)};`,
    o.preset ? `setFlagsFromString('--heap-growing-percent=20');` : '',
    `const r = tuneServerHeapGrowth();`,
    `const keep = []; for (let i = 0; i < 200000; i++) keep.push({ i });`,
    `globalThis.gc();`,
    `console.log('RETURNED ' + String(r) + ' ' + keep.length);`,
  ].join('\n');
  const env = Object.assign({}, process.env);
  delete env.SCEPTER_HEAP_GROWING_PERCENT;
  if (o.env !== undefined) env.SCEPTER_HEAP_GROWING_PERCENT = o.env;
  const r = spawnSync(
    process.execPath,
    [
      ...(o.nodeArgs ?? []),
      '--expose-gc',
      '--trace-gc-verbose',
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      script,
    ],
    { env, encoding: 'utf8', timeout: 60_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  const returned = /RETURNED (\S+)/.exec(r.stdout)?.[1];
  const limits = [...r.stdout.matchAll(/\[HeapController\] Limit: .*\((\d+\.\d)\)/g)];
  assert.ok(returned !== undefined, r.stdout);
  assert.ok(limits.length > 0, `no limit reported by V8:\n${r.stdout.slice(0, 2000)}`);
  return { returned, factor: Number(limits[limits.length - 1]![1]) };
}

test('the server growth factor is in force from the next full collection', () => {
  const { returned, factor } = childFactor({ preset: true });
  assert.equal(returned, String(SERVER_HEAP_GROWING_PERCENT));
  assert.equal(factor, 1 + SERVER_HEAP_GROWING_PERCENT / 100);
});

test('SCEPTER_HEAP_GROWING_PERCENT chooses another factor, and 0 leaves the one in force', () => {
  const set = childFactor({ preset: true, env: '150' });
  assert.equal(set.returned, '150');
  assert.equal(set.factor, 2.5);
  const none = childFactor({ preset: true, env: '0' });
  assert.equal(none.returned, 'undefined');
  assert.equal(none.factor, 1.2);
});

test("an operator's --heap-growing-percent on node's command line stands", () => {
  const { returned, factor } = childFactor({ nodeArgs: ['--heap-growing-percent=50'] });
  assert.equal(returned, 'undefined');
  assert.equal(factor, 1.5);
});

test('the operator settings are read strictly', () => {
  assert.equal(heapGrowthSetByOperator(['--heap-growing-percent=50']), true);
  assert.equal(heapGrowthSetByOperator(['--expose-gc', '--heap_growing_percent=50']), true);
  assert.equal(heapGrowthSetByOperator(['--max-old-space-size=512']), false);
  assert.equal(heapGrowthSetByOperator(['--heap-growing-percentage=5']), false);
  assert.equal(heapGrowthSetByOperator([]), false);
  assert.equal(serverHeapGrowingPercent(undefined), SERVER_HEAP_GROWING_PERCENT);
  assert.equal(serverHeapGrowingPercent(' '), SERVER_HEAP_GROWING_PERCENT);
  assert.equal(serverHeapGrowingPercent('0'), 0);
  assert.equal(serverHeapGrowingPercent('1000'), 1000);
  for (const bad of ['1001', '-5', '2.5', '300%', 'lots', '1e3'])
    assert.throws(
      () => serverHeapGrowingPercent(bad),
      /SCEPTER_HEAP_GROWING_PERCENT must be a whole number from 0 to 1000/,
    );
});
