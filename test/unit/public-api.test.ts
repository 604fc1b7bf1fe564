/**
 * The package entry point (src/index.ts): `startScepServer` runs a server on a data directory and
 * the public `ScepClient` talks to it; the codec internals are not exported.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
