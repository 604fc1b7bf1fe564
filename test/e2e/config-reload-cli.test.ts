/**
 * `scepter serve --config` as a process: it starts from examples/two-profiles.yaml (CAs seeded
 * from fixture keys), writes DIR/scepter.pid, and `scepter config reload --data DIR` (SIGHUP)
 * makes it reload: a valid change is logged as reloaded and shows in /readyz, an invalid file is
 * refused with a logged error while the old configuration keeps serving. Every wait is on the
 * server's own output (no timing). The reload that took effect is in the audit trail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../helpers/run.js';
import { seedCa, tempDir } from '../helpers/scep-server.js';

test('serve --config: SIGHUP via `config reload` reloads a valid file and refuses an invalid one', async (t) => {
  const dir = tempDir(t, 'config-reload-');
  const data = join(dir, 'data');
  seedCa({ dataDir: data, name: 'default' }, { ra: true });
  seedCa({ dataDir: data, name: 'routers' }, { ra: true });
  const file = join(dir, 'scepter.yaml');
  copyFileSync('examples/two-profiles.yaml', file);
  const env = { ...process.env, SCEPTER_LAPTOPS_CHALLENGE: 'first' };
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'serve',
      '--config',
      file,
      '--data',
      data,
      '--port',
      '0',
      '--host',
      '127.0.0.1',
    ],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const waiters: Array<{ re: RegExp; resolve: (m: RegExpMatchArray) => void }> = [];
  const check = () => {
    for (const w of [...waiters]) {
      const m = out.match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  child.stdout.on('data', (b: Buffer) => ((out += b.toString()), check()));
  child.stderr.on('data', (b: Buffer) => ((out += b.toString()), check()));
  const exited = new Promise<number | null>((r) => child.on('exit', r));
  t.after(async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
  });
  const waitFor = (re: RegExp) =>
    Promise.race([
      new Promise<RegExpMatchArray>((resolve) => {
        waiters.push({ re, resolve });
        check();
      }),
      exited.then((code) => {
        throw new Error(`the server exited (${code}) before ${re}:\n${out}`);
      }),
    ]);

  const [, origin] = await waitFor(/SCEP server listening on (http:\/\/[^/\s]+)\/scep/);
  assert.match(out, /profile routers: \S+\/scep\/routers \(CA routers, challenge none, approval manual\)/);
  assert.equal(readFileSync(join(data, 'scepter.pid'), 'utf8').trim(), String(child.pid));
  const version = async () => (await (await fetch(`${origin}/readyz`)).text()).split('\n')[1];
  assert.match((await version()) ?? '', /^config: [0-9a-f]{16} load 1$/);

  // A valid change: routers get a 30-day validity.
  writeFileSync(
    file,
    readFileSync(file, 'utf8').replace(
      '    approval:\n      mode: manual',
      '    approval:\n      mode: manual\n    validity: 30d',
    ),
  );
  const r1 = await run(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'config', 'reload', '--data', data],
    { env },
  );
  assert.equal(r1.code, 0, r1.output);
  await waitFor(/"msg":"configuration reloaded"/);
  assert.match((await version()) ?? '', /load 2$/);

  // An invalid file: refused, logged, the running configuration keeps serving.
  writeFileSync(file, 'profiles:\n  laptops:\n    validity: forever\n');
  const r2 = await run(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'config', 'reload', '--data', data],
    { env },
  );
  assert.equal(r2.code, 0, r2.output);
  await waitFor(/configuration reload refused: the file is not valid/);
  assert.match(out, /key profiles\.laptops\.validity/);
  assert.match((await version()) ?? '', /load 2$/);
  const caps = await fetch(`${origin}/scep/laptops?operation=GetCACaps`);
  assert.equal(caps.status, 200);

  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  assert.equal(existsSync(join(data, 'scepter.pid')), false, 'the pid file is removed at stop');

  // The audit trail holds the reload that took effect (not the refused one).
  const audit = await run(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'audit',
      'list',
      '--data',
      data,
      '--action',
      'config.reloaded',
      '--json',
    ],
    { env },
  );
  assert.equal(audit.code, 0, audit.output);
  const { items } = JSON.parse(audit.stdout.toString()) as {
    items: Array<{ actor: string; details: { loads?: number; profiles?: string } | null }>;
  };
  assert.equal(items.length, 1, audit.output);
  assert.equal(items[0]!.actor, 'system');
  assert.equal(items[0]!.details?.loads, 2);
  assert.match(items[0]!.details?.profiles ?? '', /routers/);
});
