/**
 * The package entry point (src/index.ts): `startScepServer` runs a server on a data directory and
 * the public `ScepClient` talks to it; the codec internals are not exported.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as api from '../../src/index.js';

test('startScepServer + ScepClient: GetCACaps and GetCACert through the public API only', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'scepter-api-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const server = await api.startScepServer({
    dataDir: dir,
    keySize: 2048,
    logLevel: 'silent',
    metrics: false,
  });
  t.after(() => server.close());
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/scep$/);
  assert.equal(server.url, `${server.origin}/scep`);
  const client = new api.ScepClient({ url: server.url });
  const caps = await client.getCaCaps();
  assert.ok(caps.has('POSTPKIOperation'));
  const ca = await client.getCaCert();
  assert.ok(ca.caChain.length >= 1);
});

test('the entry point exports no codec internals', () => {
  const names = Object.keys(api);
  for (const internal of ['asn1', 'Reader', 'startServer', 'openStore', 'decodePkiMessage']) {
    assert.ok(!names.includes(internal), `${internal} must not be exported`);
  }
  assert.ok(names.includes('ScepArgumentError') && names.includes('AgentConfigError'));
});

test('importing the package loads no server dependency (fastify, better-sqlite3, pg)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'scepter-api-hooks-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const hooks = join(dir, 'hooks.mjs');
  writeFileSync(
    hooks,
    `export async function resolve(s, c, next) {
      const r = await next(s, c);
      if (/fastify|better-sqlite3|\\/pg\\//.test(r.url)) process.stdout.write('LOADED ' + r.url + '\\n');
      return r;
    }`,
  );
  const register = join(dir, 'register.mjs');
  writeFileSync(
    register,
    `import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(hooks).href)});`,
  );
  const entry = pathToFileURL(join(process.cwd(), 'src/index.ts')).href;
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      '--import',
      register,
      '-e',
      `await import(${JSON.stringify(entry)}); console.log('ok')`,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^ok$/m);
  assert.doesNotMatch(r.stdout, /LOADED/);
});
