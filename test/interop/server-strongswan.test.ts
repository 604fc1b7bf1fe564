/**
 * The real strongSwan `pki --scep` (Debian strongswan-pki) enrolling against scepter with its
 * default options (AES-128, SHA-256), then renewing with a RenewalReq signed by the old
 * certificate, in CA-only and RA mode. pki 5.9.8 mis-reads GetCACaps (fixed in 5.9.11): it
 * accepts AES only when `SHA-384` is advertised, which scepter does for it.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCertificate } from '../../src/pkix/certificate.js';
import { nameToString } from '../../src/pkix/name.js';
import { needPeer } from '../helpers/peers.js';
import { pooledRsaKey } from '../helpers/pki.js';
import { run } from '../helpers/run.js';
import { caCerts, tempDir, testServer } from '../helpers/scep-server.js';

function hasStrongswanPki(): boolean {
  const r = spawnSync('pki', ['--scep', '--help'], { encoding: 'utf8' });
  return r.error === undefined && /strongSwan/.test(`${r.stdout}${r.stderr}`);
}
const HAS_PKI = hasStrongswanPki();

function spkiOf(key: KeyObject): Buffer {
  return createPublicKey(key).export({ type: 'spki', format: 'der' });
}

async function enrollAndRenew(t: TestContext, ra: boolean): Promise<void> {
  if (!needPeer(t, HAS_PKI, 'strongSwan `pki --scep` (Debian strongswan-pki)')) return;
  const server = await testServer(t, { ra });
  const work = tempDir(t, 'strongswan-');
  const certs = await caCerts(server.url);
  const ca = certs.find((c) => c.issuerRaw.equals(c.subjectRaw))!;
  const recipient = certs[0]!;
  assert.equal(recipient === ca, !ra, ra ? 'the RA certificate comes first' : 'CA-only: the CA alone');
  const file = (name: string, data: Buffer | string): string => {
    const p = join(work, name);
    writeFileSync(p, data);
    return p;
  };
  const caFile = file('ca.der', ca.der);
  const encFile = file('enc.der', recipient.der);
  const oldKey = pooledRsaKey(3);
  const newKey = pooledRsaKey(4);
  const oldKeyFile = file('old.key', oldKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  const newKeyFile = file('new.key', newKey.export({ type: 'pkcs8', format: 'pem' }) as string);
  const cn = `strongswan-${ra ? 'ra' : 'ca'}`;
  const common = [
    '--scep',
    '--url',
    server.url,
    '--dn',
    `CN=${cn}, O=scepter-interop`,
    '--cacert-enc',
    encFile,
    '--cacert-sig',
    encFile,
    ...(ra ? ['--cacert', caFile] : []),
    '--outform',
    'der',
  ];

  // Enrollment with pki's defaults: no --cipher, no --digest.
  const first = await run('pki', [
    ...common,
    '--in',
    oldKeyFile,
    '--password',
    server.dataDir!.challenge.value,
  ]);
  assert.equal(first.code, 0, `pki --scep failed: ${first.output}`);
  assert.doesNotMatch(first.output, /not supported by CA/);
  const cert1 = parseCertificate(first.stdout);
  assert.match(nameToString(cert1.subjectRaw), new RegExp(`CN=${cn}`));
  assert.deepEqual(cert1.spki, spkiOf(oldKey));
  assert.deepEqual(cert1.issuerRaw, ca.subjectRaw);
  const oldCertFile = file('old.der', first.stdout);

  // Renewal: a new key, the request signed by the old certificate (no challenge).
  const second = await run('pki', [
    ...common,
    '--in',
    newKeyFile,
    '--cert',
    oldCertFile,
    '--key',
    oldKeyFile,
  ]);
  assert.equal(second.code, 0, `pki --scep renewal failed: ${second.output}`);
  const cert2 = parseCertificate(second.stdout);
  assert.match(nameToString(cert2.subjectRaw), new RegExp(`CN=${cn}`));
  assert.deepEqual(cert2.spki, spkiOf(newKey));
  assert.notEqual(cert2.serialHex, cert1.serialHex);
}

test('strongSwan pki --scep enrolls with its defaults and renews (CA-only mode)', async (t) => {
  await enrollAndRenew(t, false);
});

test('strongSwan pki --scep enrolls with its defaults and renews (RA mode)', async (t) => {
  await enrollAndRenew(t, true);
});
