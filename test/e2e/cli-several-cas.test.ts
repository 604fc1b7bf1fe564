/**
 * Several CAs through the built CLI: `scepter ca init --name` adds a CA in DIR/cas/NAME/ (here
 * imported from a fixture key, so no key is generated), `ca list` shows both, and after one
 * enrollment per CA (services composed on the data directory's store) `certs list --profile/--ca`
 * filter, `certs show` and `revoke` refuse a serial two CAs issued until `--ca` names one, and
 * the revocation lands in that CA's CRL only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificateList } from '@peculiar/asn1-x509';
import { toPem } from '../../src/pkix/certificate.js';
import { PkiStatus, parseCaCertResponse } from '../../src/scep/index.js';
import { composeEnrollment } from '../../src/server/compose.js';
import { openStore } from '../../src/store/index.js';
import { scepterCli } from '../helpers/cli.js';
import { ensureBuilt } from '../helpers/build.js';
import { makeSelfSigned, pooledRsaKey } from '../helpers/pki.js';
import { TEST_CHALLENGE, device, openCertRep, pkcsReq, seedCa, tempDir } from '../helpers/scep-server.js';

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await scepterCli(args, { main: ensureBuilt().main });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

test('built CLI: ca init --name, ca list, certs/revoke with --profile and --ca', async (t) => {
  const b = ensureBuilt();
  assert.equal(b.status, 0, b.output);
  const dir = tempDir(t, 'scepter-cas-');
  seedCa(dir, { ra: true });
  // A routers CA to import: a fixture key and its self-signed CA certificate.
  const key = pooledRsaKey(44, 2048);
  const caCert = makeSelfSigned({ subject: 'CN=Routers CA,O=Test', key, ca: true, days: 365 });
  writeFileSync(join(dir, 'routers.key'), key.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(dir, 'routers.crt'), toPem(caCert.cert.der));
  const init = await run([
    'ca',
    'init',
    '--data',
    dir,
    '--name',
    'routers',
    '--import-key',
    join(dir, 'routers.key'),
    '--import-cert',
    join(dir, 'routers.crt'),
    '--ca-only',
  ]);
  assert.equal(init.code, 0, init.err);
  assert.match(init.out, /name {9}routers/);
  assert.ok(existsSync(join(dir, 'cas', 'routers', 'ca.crt')));
  assert.ok(existsSync(join(dir, 'cas', 'routers', 'ca.key')));
  const again = await run(['ca', 'init', '--data', dir, '--name', 'routers', '--key-size', '2048']);
  assert.equal(again.code, 1);
  assert.match(again.err, /already exists in .*cas\/routers/);
  const bad = await run(['ca', 'init', '--data', dir, '--name', '../up']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.err, /--name: a CA name is/);
  const list = await run(['ca', 'list', '--data', dir, '--json']);
  assert.equal(list.code, 0, list.err);
  const cas = JSON.parse(list.out) as Array<{ name: string; subject: string; ra: boolean }>;
  assert.deepEqual(
    cas.map((c) => [c.name, c.ra]),
    [
      ['default', true],
      ['routers', false],
    ],
  );
  assert.match(cas[1]?.subject ?? '', /CN=Routers CA/);

  // One enrollment per CA, then the routers CA gets a second certificate with the laptop's serial.
  const store = await openStore(`sqlite:${join(dir, 'scepter.db')}`);
  let laptopSerial: string;
  try {
    const enroll = async (caName: string, profile: string, cn: string, pool: number) => {
      const svc = composeEnrollment({
        dataDir: dir,
        caName,
        profile,
        store,
        config: { challenges: [TEST_CHALLENGE] },
      });
      const a = svc.getCaCert();
      const certs = parseCaCertResponse(a.contentType, a.body);
      const d = device(`CN=${cn},O=Test`, { pool });
      const req = pkcsReq(d, certs[0]!);
      const rep = openCertRep((await svc.pkiOperation(req.der, {})).body, req, d, certs);
      assert.equal(rep.status, PkiStatus.SUCCESS, rep.failInfoText);
      return rep.certificates[0]!;
    };
    const laptop = await enroll('default', 'laptops', 'laptop-1', 1);
    const router = await enroll('routers', 'routers', 'router-1', 2);
    laptopSerial = laptop.serialHex;
    const rec = (await store.getCertificate(router.serialHex, 'routers'))!;
    await store.insertCertificate({ ...rec, serial: laptopSerial, transactionId: null });
  } finally {
    await store.close();
  }

  const certs = async (...args: string[]) => {
    const r = await run(['certs', 'list', '--data', dir, '--json', ...args]);
    assert.equal(r.code, 0, r.err);
    return (JSON.parse(r.out) as { items: Array<{ ca: string; profile: string; subject: string }> }).items;
  };
  assert.deepEqual(
    (await certs('--profile', 'laptops')).map((c) => [c.ca, c.profile, c.subject]),
    [['default', 'laptops', 'CN=laptop-1,O=Test']],
  );
  assert.equal((await certs('--ca', 'routers')).length, 2);
  assert.equal((await certs('--profile', 'nobody')).length, 0);
  const table = await run(['certs', 'list', '--data', dir, '--profile', 'routers']);
  assert.match(table.out.split('\n')[0]!, /SERIAL +STATUS +NOT AFTER +CA +PROFILE +SUBJECT/);

  const show = await run(['certs', 'show', laptopSerial, '--data', dir]);
  assert.notEqual(show.code, 0);
  assert.match(show.err, /several CAs \(.*\): name the CA/);
  const shown = await run(['certs', 'show', laptopSerial, '--data', dir, '--ca', 'routers', '--json']);
  assert.equal(shown.code, 0, shown.err);
  assert.equal((JSON.parse(shown.out) as { ca: string }).ca, 'routers');

  const ambiguous = await run(['revoke', '--data', dir, '--serial', laptopSerial]);
  assert.equal(ambiguous.code, 1);
  assert.match(ambiguous.err, /several CAs/);
  const revoked = await run(['revoke', '--data', dir, '--serial', laptopSerial, '--ca', 'routers', '--json']);
  assert.equal(revoked.code, 0, revoked.err);
  assert.equal((JSON.parse(revoked.out) as { ca: string; status: string }).status, 'revoked');

  // The routers CA's CRL lists the serial; the default CA's certificate with it stays valid.
  const after = await openStore(`sqlite:${join(dir, 'scepter.db')}`);
  try {
    assert.equal((await after.getCertificate(laptopSerial))?.status, 'valid');
    assert.equal((await after.getCertificate(laptopSerial, 'routers'))?.status, 'revoked');
    const crl = await after.latestCrl(caCert.cert.fingerprint);
    assert.ok(crl, 'the routers CA published a CRL');
    const serials = (AsnConvert.parse(crl.der, CertificateList).tbsCertList.revokedCertificates ?? []).map(
      (r) =>
        Buffer.from(r.userCertificate)
          .toString('hex')
          .replace(/^(00)+/, ''),
    );
    assert.deepEqual(serials, [laptopSerial]);
  } finally {
    await after.close();
  }
});
