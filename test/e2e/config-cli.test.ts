/**
 * `scepter config check|print` and `serve --config` on invalid files: an unknown key, a wrong
 * type, a missing CA, two profiles on one path, an unset secret variable — each a clear
 * `FILE:LINE key a.b.c: …` line and a non-zero exit, the server never started. Runs the CLI
 * from the sources (tsx) as a separate process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../helpers/run.js';
import { tempDir } from '../helpers/scep-server.js';

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { env: { ...process.env, ...env } });

const INVALID: Array<{ what: string; yaml: string; expect: RegExp }> = [
  {
    what: 'unknown key',
    yaml: 'profiles:\n  laptops:\n    validty: 90d\n',
    expect: /:3 key profiles\.laptops\.validty: unknown key/,
  },
  {
    what: 'wrong type',
    yaml: 'server:\n  port: eighty\nprofiles:\n  a: {}\n',
    expect: /:2 key server\.port: must be integer/,
  },
  {
    what: 'missing CA',
    yaml: 'profiles:\n  routers:\n    ca: routers\n',
    expect: /:3 key profiles\.routers\.ca: CA routers is not defined/,
  },
  {
    what: 'two profiles on one path',
    yaml: 'profiles:\n  a:\n    path: /scep/devices\n  b:\n    path: /SCEP/devices/\n',
    expect: /:5 key profiles\.b\.path: profiles a and b are both on \/scep\/devices/,
  },
  {
    what: 'unset secret variable',
    yaml: "profiles:\n  a:\n    challenge:\n      secrets: ['${SCEPTER_TEST_UNSET_VARIABLE}']\n",
    expect:
      /:4 key profiles\.a\.challenge\.secrets\.0: the environment variable SCEPTER_TEST_UNSET_VARIABLE is not set/,
  },
];

test('config check: invalid files fail with FILE:LINE key and a non-zero exit', async (t) => {
  const dir = tempDir(t, 'config-cli-');
  for (const c of INVALID) {
    const file = join(dir, `${c.what.replace(/\W+/g, '-')}.yaml`);
    writeFileSync(file, c.yaml);
    const r = await cli(['config', 'check', file]);
    assert.equal(r.code, 1, `${c.what}: ${r.output}`);
    assert.match(r.output, c.expect, c.what);
    assert.ok(r.output.includes(file), `${c.what}: names the file`);
  }
});

test('serve --config with an invalid file does not start (exit 1); config check and print accept the example', async (t) => {
  const dir = tempDir(t, 'config-cli-');
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'profiles:\n  a:\n    approval: {mode: sometimes}\n');
  const r = await cli(['serve', '--config', bad, '--data', join(dir, 'data'), '--port', '0']);
  assert.equal(r.code, 1, r.output);
  assert.match(
    r.output,
    /:3 key profiles\.a\.approval\.mode: must be one of "auto", "manual", "challenge-or-manual"/,
  );
  assert.doesNotMatch(r.output, /listening/);

  const mixed = await cli(['serve', '--config', bad, '--data', join(dir, 'data'), '--validity', '1d']);
  assert.equal(mixed.code, 2);
  assert.match(mixed.output, /with --config only --data, --host, --port, --log-level and --log-format/);

  const env = { SCEPTER_LAPTOPS_CHALLENGE: 'printed-nowhere-0815' };
  const ok = await cli(['config', 'check', 'examples/two-profiles.yaml'], env);
  assert.equal(ok.code, 0, ok.output);
  assert.match(
    ok.output,
    /valid; version [0-9a-f]{16}; profiles: laptops \(\/scep\/laptops\), routers \(\/scep\/routers\)/,
  );
  const printed = await cli(['config', 'print', '--config', 'examples/two-profiles.yaml'], env);
  assert.equal(printed.code, 0, printed.output);
  assert.doesNotMatch(printed.output, /printed-nowhere-0815/, 'secrets are masked');
  assert.match(printed.output, /\*{8}/);
  assert.match(printed.output, /ca: routers/);
});
