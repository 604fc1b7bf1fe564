/**
 * CA rollover on disk (src/ca/rollover.ts): the generation suffix of the next subject, the
 * watcher's cache, refusing a second staging, an encrypted CA, and an activation interrupted
 * half way that completes when run again; a named CA rolls over inside its own directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadPreviousCas } from '../../src/ca/authorities.js';
import { initCa, loadCa } from '../../src/ca/keystore.js';
import {
  activateRollover,
  nextCaPaths,
  nextGenerationName,
  NextCaWatcher,
  stageRollover,
} from '../../src/ca/rollover.js';
import { buildName, nameText } from '../../src/pkix/name.js';
import { parseCaCertResponse } from '../../src/scep/index.js';
import { composeEnrollment } from '../../src/server/compose.js';
import { openStore } from '../../src/store/index.js';
import { seedCa, tempDir } from '../helpers/scep-server.js';

test('nextGenerationName: " G2" on the CN, then counts up; a Name without a CN gets one', () => {
  assert.equal(nextGenerationName(buildName('CN=Example CA,O=Example')), 'CN=Example CA G2,O=Example');
  assert.equal(nextGenerationName(buildName('CN=Example CA G2,O=Example')), 'CN=Example CA G3,O=Example');
  assert.equal(nextGenerationName(buildName('O=Example')), 'CN=scepter CA G2,O=Example');
});

test('stage: refuses a second staging and an unchanged subject; the watcher sees staging and removal', async (t) => {
  const dir = tempDir(t, 'scepter-roll-');
  await initCa(dir, { keySize: 2048, subject: 'CN=Unit CA,O=Test' });
  let clock = 0;
  const w = new NextCaWatcher(dir, 1000, () => clock);
  assert.equal(w.current(), undefined);
  await assert.rejects(stageRollover(dir, { subject: 'CN=unit ca, O=Test' }), /different subject/);
  const res = await stageRollover(dir);
  assert.equal(statSync(res.paths.key).mode & 0o777, 0o600);
  assert.equal(w.current(), undefined, 'cached for the TTL');
  clock = 1500;
  assert.equal(w.current()?.[0]?.fingerprint, res.caCert.fingerprint);
  await assert.rejects(stageRollover(dir), /already staged/);
  activateRollover(dir);
  clock = 3000;
  assert.equal(w.current(), undefined, 'gone once activated');
});

test('activate: encrypted keys, RA; an interrupted run completes when repeated', async (t) => {
  const dir = tempDir(t, 'scepter-roll-');
  const passphrase = 'rollover pass';
  await initCa(dir, { keySize: 2048, ra: true, passphrase });
  const old = loadCa(dir, passphrase);
  await assert.rejects(stageRollover(dir), /encrypted/);
  const staged = await stageRollover(dir, { passphrase });
  assert.ok(staged.raCert?.issuerRaw.equals(staged.caCert.subjectRaw));
  assert.throws(() => activateRollover(dir, 'wrong'), /passphrase/);
  assert.ok(existsSync(nextCaPaths(dir).cert), 'a refused activation changes nothing');

  // Simulate a crash after the RA and the key were renamed, before ca.crt.
  const next = nextCaPaths(dir);
  const cur = old.paths;
  const prev = join(dir, 'ca', 'previous', old.caCert.fingerprint);
  activateStep1(prev, cur);
  renameSync(next.raKey, cur.raKey);
  renameSync(next.raCert, cur.raCert);
  renameSync(next.key, cur.key);

  const res = activateRollover(dir, passphrase);
  assert.equal(res.caCert.fingerprint, staged.caCert.fingerprint);
  assert.equal(res.raCert?.fingerprint, staged.raCert?.fingerprint);
  assert.ok(!existsSync(next.dir));
  const now = loadCa(dir, passphrase);
  assert.equal(now.caCert.fingerprint, staged.caCert.fingerprint);
  const previous = loadPreviousCas(dir, passphrase);
  assert.deepEqual(
    previous.map((c) => c.cert.fingerprint),
    [old.caCert.fingerprint],
    'the old CA (with its own key) is kept under previous/',
  );
  assert.equal(statSync(join(prev, 'ca.key')).mode & 0o777, 0o600);
  assert.ok(existsSync(join(prev, 'ra.crt')));
});

/** The first step of activation: copies of the current files kept under previous/. */
function activateStep1(
  prev: string,
  cur: { key: string; cert: string; raKey: string; raCert: string },
): void {
  mkdirSync(prev, { recursive: true, mode: 0o700 });
  copyFileSync(cur.key, join(prev, 'ca.key'));
  copyFileSync(cur.cert, join(prev, 'ca.crt'));
  copyFileSync(cur.raKey, join(prev, 'ra.key'));
  copyFileSync(cur.raCert, join(prev, 'ra.crt'));
}

test('a named CA (DIR/cas/NAME/) rolls over on its own; the default CA is untouched', async (t) => {
  const dir = tempDir(t, 'scepter-roll-');
  seedCa(dir, { ra: true });
  const routers = { dataDir: dir, name: 'routers' };
  seedCa(routers, { subject: 'CN=Routers CA,O=Test' });
  const def = loadCa(dir);
  const old = loadCa(routers);
  assert.equal(old.paths.dir, join(dir, 'cas', 'routers'));
  const store = await openStore(':memory:');
  t.after(() => store.close());
  const service = (caName: string) =>
    composeEnrollment({ dataDir: dir, caName, store, config: { challenges: ['x'] } });

  const staged = await stageRollover(routers, { keySize: 2048 });
  assert.equal(staged.paths.dir, join(dir, 'cas', 'routers', 'next'));
  assert.equal(nameText(staged.caCert.subjectRaw), 'CN=Routers CA G2,O=Test');
  assert.equal(existsSync(nextCaPaths(dir).dir), false, 'nothing staged for the default CA');
  // GetNextCACert: offered by the routers CA's service only.
  assert.ok(service('routers').getNextCaCert());
  assert.equal(service('default').getNextCaCert(), undefined);

  const res = activateRollover(routers);
  assert.equal(res.previous.dir, join(dir, 'cas', 'routers', 'previous', old.caCert.fingerprint));
  assert.equal(loadCa(routers).caCert.fingerprint, staged.caCert.fingerprint);
  assert.deepEqual(
    loadPreviousCas(routers).map((c) => c.cert.fingerprint),
    [old.caCert.fingerprint],
  );
  assert.equal(loadCa(dir).caCert.fingerprint, def.caCert.fingerprint, 'the default CA is unchanged');
  assert.deepEqual(loadPreviousCas(dir), []);
  // The routers service now issues under the new CA and keeps the old one for its certificates.
  const svc = service('routers');
  assert.equal(svc.caName, 'routers');
  const caCerts = parseCaCertResponse(svc.getCaCert().contentType, svc.getCaCert().body);
  assert.equal(caCerts[0]?.fingerprint, staged.caCert.fingerprint);
  assert.ok(await svc.lifecycle.crls.current(old.caCert.fingerprint), 'the retired CA still has its CRL');
});

test('stage: the next RA keeps the current RA key size and lifetime', async (t) => {
  const dir = tempDir(t, 'scepter-roll-');
  await initCa(dir, { keySize: 3072, ra: true, raKeySize: 2048, raDays: 90 });
  const staged = await stageRollover(dir);
  assert.ok(staged.raCert);
  assert.equal(staged.caCert.publicKey().asymmetricKeyDetails?.modulusLength, 3072);
  assert.equal(staged.raCert.publicKey().asymmetricKeyDetails?.modulusLength, 2048);
  const days = (staged.raCert.notAfter.getTime() - staged.raCert.notBefore.getTime()) / 86_400_000;
  assert.equal(Math.round(days), 90);
});
