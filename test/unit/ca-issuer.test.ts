import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { pooledRsaKey } from '../helpers/pki.js';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate as PCert, CertificateList } from '@peculiar/asn1-x509';
import { OID } from '../../src/asn1/oids.js';
import { CaError } from '../../src/ca/issuer.js';
import { caExists, initCa, loadCa } from '../../src/ca/keystore.js';
import {
  DEFAULT_CLIENT_PROFILE,
  MAX_VALIDITY_SECONDS,
  MIN_VALIDITY_SECONDS,
  ProfileError,
  validateProfile,
} from '../../src/ca/profile.js';
import { randomSerial } from '../../src/ca/serial.js';
import { caCommand } from '../../src/cli/commands/ca.js';
import { parseCertificate, verifyCertificateSignature } from '../../src/pkix/certificate.js';
import { buildCsr, parseCsr } from '../../src/pkix/csr.js';
import { parseBasicConstraints, parseExtKeyUsage, parseKeyUsage } from '../../src/pkix/extensions.js';

const dir = mkdtempSync(join(tmpdir(), 'scepter-ca-unit-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const client = { privateKey: pooledRsaKey(3), publicKey: createPublicKey(pooledRsaKey(3)) };

test('serial: positive, 16 octets, distinct', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const s = randomSerial();
    assert.equal(s.length, 16);
    assert.ok(s[0]! < 0x80);
    assert.ok(s.some((b) => b !== 0));
    seen.add(s.toString('hex'));
  }
  assert.equal(seen.size, 2000);
});

test('profile: CA-only bits and bad values are refused', () => {
  validateProfile(DEFAULT_CLIENT_PROFILE);
  assert.throws(
    () => validateProfile({ ...DEFAULT_CLIENT_PROFILE, keyUsage: ['keyCertSign'] }),
    ProfileError,
  );
  assert.throws(() => validateProfile({ ...DEFAULT_CLIENT_PROFILE, keyUsage: ['cRLSign'] }), ProfileError);
  assert.equal(DEFAULT_CLIENT_PROFILE.validitySeconds, 365 * 86_400);
  validateProfile({ ...DEFAULT_CLIENT_PROFILE, validitySeconds: MIN_VALIDITY_SECONDS });
  validateProfile({ ...DEFAULT_CLIENT_PROFILE, validitySeconds: MAX_VALIDITY_SECONDS });
  assert.equal(MIN_VALIDITY_SECONDS, 10);
  assert.equal(MAX_VALIDITY_SECONDS, 36_500 * 86_400);
  for (const bad of [0, 9, 30.5, MAX_VALIDITY_SECONDS + 1, Number.NaN]) {
    assert.throws(() => validateProfile({ ...DEFAULT_CLIENT_PROFILE, validitySeconds: bad }), ProfileError);
  }
  assert.throws(() => validateProfile({ ...DEFAULT_CLIENT_PROFILE, extKeyUsage: ['bogus'] }));
  assert.throws(
    () => validateProfile({ ...DEFAULT_CLIENT_PROFILE, crlDistributionPoint: 'not a url' }),
    ProfileError,
  );
});

test('issuer: certificate and CRL agree with @peculiar/asn1-x509 and node X509Certificate', async () => {
  const data = join(dir, 'd1');
  await initCa(data, { keySize: 2048, subject: 'CN=Unit CA' });
  const { ca, caCert } = loadCa(data);
  const csr = parseCsr(
    buildCsr({
      subject: 'CN=leaf,O=Acme',
      key: client.privateKey,
      publicKey: client.publicKey,
      subjectAltNames: [{ type: 'dns', value: 'leaf.example' }],
      challengePassword: 'never-in-cert',
    }),
  );
  const serial = randomSerial();
  const notBefore = new Date('2026-01-01T00:00:00Z');
  const notAfter = new Date('2026-06-30T00:00:00Z');
  const certDer = ca.issue({
    subjectRaw: csr.subjectRaw,
    spki: csr.spki,
    subjectAltNames: csr.subjectAltNames,
    serial,
    notBefore,
    notAfter,
    profile: DEFAULT_CLIENT_PROFILE,
  });
  assert.ok(!certDer.includes(Buffer.from('never-in-cert')));
  const c = parseCertificate(certDer);
  assert.ok(verifyCertificateSignature(c, caCert.publicKey()));
  assert.equal(c.notBefore.toISOString(), notBefore.toISOString());
  assert.equal(c.notAfter.toISOString(), notAfter.toISOString());
  assert.equal(c.serialHex, serial.toString('hex').replace(/^(00)+/, ''));
  assert.deepEqual(parseKeyUsage(c.extension(OID.keyUsage)!.value), ['digitalSignature', 'keyEncipherment']);
  assert.deepEqual(parseExtKeyUsage(c.extension(OID.extKeyUsage)!.value), [OID.ekuClientAuth]);
  assert.equal(parseBasicConstraints(c.extension(OID.basicConstraints)!.value).cA, false);

  const p = AsnConvert.parse(certDer, PCert);
  assert.equal(p.tbsCertificate.version, 2);
  assert.equal(
    Buffer.from(p.tbsCertificate.serialNumber)
      .toString('hex')
      .replace(/^(00)+/, ''),
    c.serialHex,
  );
  assert.ok(Buffer.from(AsnConvert.serialize(p.tbsCertificate.subject)).equals(csr.subjectRaw));
  assert.ok(Buffer.from(AsnConvert.serialize(p.tbsCertificate.issuer)).equals(caCert.subjectRaw));
  assert.deepEqual(
    Array.from(p.tbsCertificate.extensions!, (e) => [e.extnID, e.critical]),
    [
      [OID.basicConstraints, true],
      [OID.keyUsage, true],
      [OID.extKeyUsage, false],
      [OID.subjectKeyIdentifier, false],
      [OID.authorityKeyIdentifier, false],
      [OID.subjectAltName, false],
    ],
  );
  const x = new X509Certificate(certDer);
  assert.ok(x.verify(caCert.publicKey()));
  assert.equal(x.subjectAltName, 'DNS:leaf.example');
  assert.ok(x.checkIssued(new X509Certificate(caCert.der)));

  // Empty subject → SAN critical (RFC 5280 §4.2.1.6); no SAN copied when the profile says so.
  const empty = parseCertificate(
    ca.issue({
      subjectRaw: Buffer.from([0x30, 0x00]),
      spki: csr.spki,
      subjectAltNames: csr.subjectAltNames,
      serial: randomSerial(),
      notBefore,
      notAfter,
      profile: DEFAULT_CLIENT_PROFILE,
    }),
  );
  assert.equal(empty.extension(OID.subjectAltName)!.critical, true);
  const noSan = parseCertificate(
    ca.issue({
      subjectRaw: csr.subjectRaw,
      spki: csr.spki,
      subjectAltNames: csr.subjectAltNames,
      serial: randomSerial(),
      notBefore,
      notAfter,
      profile: { ...DEFAULT_CLIENT_PROFILE, copySubjectAltNames: false },
    }),
  );
  assert.equal(noSan.extension(OID.subjectAltName), undefined);
  // Raw SAN from the CSR is spliced as-is; junk is refused.
  const raw = parseCertificate(
    ca.issue({
      subjectRaw: csr.subjectRaw,
      spki: csr.spki,
      subjectAltNameRaw: csr.extensions.find((e) => e.oid === OID.subjectAltName)!.value,
      serial: randomSerial(),
      notBefore,
      notAfter,
      profile: DEFAULT_CLIENT_PROFILE,
    }),
  );
  assert.ok(raw.extension(OID.subjectAltName)!.value.equals(csr.extensions[0]!.value));
  const base = {
    subjectRaw: csr.subjectRaw,
    spki: csr.spki,
    notBefore,
    notAfter,
    profile: DEFAULT_CLIENT_PROFILE,
  };
  assert.throws(
    () => ca.issue({ ...base, serial: randomSerial(), subjectAltNameRaw: Buffer.from([1, 2, 3]) }),
    CaError,
  );
  assert.throws(() => ca.issue({ ...base, serial: Buffer.alloc(4) }), CaError);
  assert.throws(() => ca.issue({ ...base, serial: Buffer.alloc(21, 1) }), CaError);
  assert.throws(() =>
    ca.issue({
      ...base,
      serial: randomSerial(),
      profile: { ...DEFAULT_CLIENT_PROFILE, keyUsage: ['keyCertSign'] },
    }),
  );

  const crl = ca.buildCrl({
    revoked: [{ serial, revokedAt: notBefore, reason: 4 }],
    crlNumber: 7n,
    thisUpdate: notBefore,
    nextUpdate: notAfter,
  });
  const pl = AsnConvert.parse(crl, CertificateList);
  assert.equal(pl.tbsCertList.version, 1);
  const entry = pl.tbsCertList.revokedCertificates![0]!;
  assert.equal(
    Buffer.from(entry.userCertificate)
      .toString('hex')
      .replace(/^(00)+/, ''),
    c.serialHex,
  );
  assert.equal(entry.crlEntryExtensions![0]!.extnID, OID.cRLReason);
  assert.deepEqual(
    Array.from(pl.tbsCertList.crlExtensions!, (e) => e.extnID),
    [OID.authorityKeyIdentifier, OID.cRLNumber],
  );
  assert.throws(
    () =>
      ca.buildCrl({
        revoked: [{ serial, revokedAt: notBefore, reason: 7 }],
        crlNumber: 1n,
        thisUpdate: notBefore,
        nextUpdate: notAfter,
      }),
    CaError,
  );
});

test('keystore: file modes, passphrase protection, refusal to overwrite', async () => {
  const data = join(dir, 'd2');
  assert.equal(caExists(data), false);
  const res = await initCa(data, { keySize: 2048, ra: true, passphrase: 'correct horse', days: 400 });
  assert.equal(caExists(data), true);
  assert.equal(statSync(res.paths.key).mode & 0o777, 0o600);
  assert.equal(statSync(res.paths.raKey).mode & 0o777, 0o600);
  assert.match(readFileSync(res.paths.key, 'utf8'), /BEGIN ENCRYPTED PRIVATE KEY/);
  assert.equal(
    Math.round((res.caCert.notAfter.getTime() - res.caCert.notBefore.getTime()) / 86_400_000),
    400,
  );
  assert.match(res.caCert.extension(OID.basicConstraints) ? 'ok' : '', /ok/);
  assert.throws(
    () => loadCa(data),
    (e: unknown) => e instanceof CaError && /encrypted/.test(e.message),
  );
  assert.throws(
    () => loadCa(data, 'bad-guess-xyz'),
    (e: unknown) =>
      e instanceof CaError && !e.message.includes('bad-guess-xyz') && !e.message.includes('correct horse'),
  );
  const l = loadCa(data, 'correct horse');
  assert.ok(l.ra);
  assert.ok(verifyCertificateSignature(l.ra.cert, l.caCert.publicKey()));
  assert.ok(l.ra.cert.notAfter.getTime() <= l.caCert.notAfter.getTime());
  await assert.rejects(initCa(data, { keySize: 2048 }), /already exists/);
  // Two default CAs never share a subject.
  const a = await initCa(join(dir, 'd3'), { keySize: 2048 });
  assert.ok(!a.caCert.subjectRaw.equals(res.caCert.subjectRaw));
  assert.ok(!readFileSync(a.paths.key, 'utf8').includes('ENCRYPTED'));
});

test('cli: scepter ca init writes a CA, honours --passphrase-file and refuses to overwrite', async () => {
  const data = join(dir, 'd4');
  const pf = join(dir, 'pass.txt');
  writeFileSync(pf, 'file-secret\n');
  const cli = (args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      encoding: 'utf8',
      env: { ...process.env, SCEPTER_CA_PASSPHRASE: '' },
    });
  const r1 = cli([
    'ca',
    'init',
    '--data',
    data,
    '--key-size',
    '2048',
    '--subject',
    'CN=CLI CA',
    '--passphrase-file',
    pf,
  ]);
  const r2 = cli(['ca', 'init', '--data', data, '--key-size', '2048']);
  assert.equal(r1.status, 0, r1.stderr);
  assert.equal(r2.status, 1);
  const text = r1.stdout + r2.stderr;
  assert.match(text, /created CA CN=CLI CA/);
  assert.match(text, /ca\.key \(mode 0600, encrypted\)/);
  assert.match(text, /not overwriting/);
  assert.ok(!text.includes('file-secret'));
  assert.equal(loadCa(data, 'file-secret').caCert.subjectRaw.length > 0, true);
  assert.ok(loadCa(data, 'file-secret').ra, 'a new CA gets an RA by default');
  const caOnly = join(dir, 'd6');
  const r3 = cli(['ca', 'init', '--data', caOnly, '--key-size', '2048', '--ca-only']);
  assert.equal(r3.status, 0, r3.stderr);
  assert.equal(loadCa(caOnly).ra, undefined, '--ca-only: no RA');
  await assert.rejects(
    caCommand.run(['init', '--data', join(dir, 'd7'), '--ra', '--ca-only']),
    /--ra or --ca-only, not both/,
  );
  await assert.rejects(caCommand.run(['init', '--data', data, '--key-size', '1024']), /key-size/);
  await assert.rejects(caCommand.run(['frobnicate']), /unknown subcommand/);
  await assert.rejects(
    caCommand.run(['init', '--data', join(dir, 'd5'), '--import-key', 'k.pem']),
    /go together/,
  );
});

test('cli: ca init --ra-key-size and --ra-validity give the RA its own key size and lifetime', async () => {
  const data = join(dir, 'd8');
  const code = await caCommand.run([
    'init',
    '--data',
    data,
    '--key-size',
    '3072',
    '--ra-key-size',
    '2048',
    '--ra-validity',
    '90d',
  ]);
  assert.equal(code, 0);
  const l = loadCa(data);
  assert.ok(l.ra);
  assert.equal(l.caCert.publicKey().asymmetricKeyDetails?.modulusLength, 3072);
  assert.equal(l.ra.cert.publicKey().asymmetricKeyDetails?.modulusLength, 2048);
  assert.equal(Math.round((l.ra.cert.notAfter.getTime() - l.ra.cert.notBefore.getTime()) / 86_400_000), 90);
  assert.ok(verifyCertificateSignature(l.ra.cert, l.caCert.publicKey()));
  l.close();
  await assert.rejects(
    caCommand.run(['init', '--data', join(dir, 'd9'), '--ca-only', '--ra-key-size', '2048']),
    /needs an RA/,
  );
  await assert.rejects(
    caCommand.run(['init', '--data', join(dir, 'd9'), '--ra-key-size', '1024']),
    /ra-key-size/,
  );
  await assert.rejects(
    caCommand.run(['init', '--data', join(dir, 'd9'), '--ra-validity', '12h']),
    /ra-validity/,
  );
});
