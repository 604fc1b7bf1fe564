import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initCa, loadCa, type LoadedCa } from '../../src/ca/keystore.js';
import { DEFAULT_CLIENT_PROFILE, type Profile } from '../../src/ca/profile.js';
import { randomSerial } from '../../src/ca/serial.js';
import { fromPem, parseCertificate, toPem } from '../../src/pkix/certificate.js';
import { parseCsr, verifyCsrSignature } from '../../src/pkix/csr.js';
import { hasCommand, needPeer } from '../helpers/peers.js';

const HAVE = hasCommand('openssl');
let dir = '';
let loaded: LoadedCa;

function ossl(args: string[]): { status: number; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8', cwd: dir });
  return { status: r.status ?? -1, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

function write(name: string, content: string | Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'scepter-ca-ossl-'));
  await initCa(join(dir, 'data'), { keySize: 2048, ra: true, subject: 'CN=Interop CA,O=scepter test' });
  loaded = loadCa(join(dir, 'data'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** An openssl-made CSR that asks for far more than it may get. */
function opensslCsr(cn: string): Buffer {
  const cfg = write(
    `${cn}.cnf`,
    `[req]\ndistinguished_name=dn\nattributes=attrs\nprompt=no\n[dn]\nC=US\nO=Acme\nCN=${cn}\n[attrs]\nchallengePassword=chal-${cn}\n`,
  );
  execFileSync(
    'openssl',
    [
      'req',
      '-new',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-config',
      cfg,
      '-keyout',
      join(dir, `${cn}.key`),
      '-outform',
      'DER',
      '-out',
      join(dir, `${cn}.csr`),
      '-addext',
      `subjectAltName=DNS:${cn}.example,IP:192.0.2.10,email:${cn}@acme.example`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
      '-addext',
      'extendedKeyUsage=codeSigning,serverAuth',
    ],
    { stdio: 'pipe', cwd: dir },
  );
  return readFileSync(join(dir, `${cn}.csr`));
}

function issueFrom(
  csrDer: Buffer,
  profile: Profile,
  days = profile.validitySeconds / 86_400,
): { der: Buffer; path: string } {
  const csr = parseCsr(csrDer);
  assert.ok(verifyCsrSignature(csr));
  const notBefore = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
  const certDer = loaded.ca.issue({
    subjectRaw: csr.subjectRaw,
    spki: csr.spki,
    subjectAltNames: csr.subjectAltNames,
    serial: randomSerial(),
    notBefore,
    notAfter: new Date(notBefore.getTime() + days * 86_400_000),
    profile,
  });
  const path = write(`${parseCertificate(certDer).serialHex}.crt`, toPem(certDer));
  return { der: certDer, path };
}

test('ca: a certificate issued from an openssl CSR verifies and carries only the profile', (t) => {
  if (!needPeer(t, HAVE, 'openssl')) return;
  const csrDer = opensslCsr('dev1');
  const profile: Profile = { ...DEFAULT_CLIENT_PROFILE, crlDistributionPoint: 'http://127.0.0.1/crl.der' };
  const { der: certDer, path } = issueFrom(csrDer, profile, 30);
  const caPath = loaded.paths.cert;
  const v = ossl(['verify', '-CAfile', caPath, '-purpose', 'sslclient', path]);
  assert.equal(v.status, 0, v.out);
  assert.match(v.out, /: OK/);
  const text = ossl(['x509', '-in', path, '-noout', '-text']).out;
  assert.match(text, /Version: 3/);
  assert.match(text, /DNS:dev1\.example, IP Address:192\.0\.2\.10, email:dev1@acme\.example/);
  assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
  assert.doesNotMatch(text, /CA:TRUE/);
  assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment\s/);
  assert.doesNotMatch(text, /Certificate Sign|CRL Sign/);
  assert.match(text, /X509v3 Extended Key Usage:\s+TLS Web Client Authentication\s/);
  assert.doesNotMatch(text, /Code Signing|Server Authentication/);
  assert.match(text, /URI:http:\/\/127\.0\.0\.1\/crl\.der/);
  assert.match(text, /Subject: C = US, O = Acme, CN = dev1/);
  assert.doesNotMatch(text, /challenge/i);
  const cert = parseCertificate(certDer);
  const csr = parseCsr(csrDer);
  assert.ok(cert.subjectRaw.equals(csr.subjectRaw), 'subject spliced byte for byte');
  assert.ok(cert.spki.equals(csr.spki));
  assert.ok(cert.issuerRaw.equals(loaded.caCert.subjectRaw));
  const ski = loaded.caCert.subjectKeyId!.toString('hex').toUpperCase().match(/../g)!.join(':');
  assert.match(text, new RegExp(`X509v3 Authority Key Identifier:\\s+(keyid:)?${ski}`));
  assert.match(text, /X509v3 Subject Key Identifier:/);
  assert.equal((cert.notAfter.getTime() - cert.notBefore.getTime()) / 86_400_000, 30);
  // The certificate's key is the CSR's key: openssl agrees.
  const m1 = ossl(['x509', '-in', path, '-noout', '-pubkey']).out;
  const m2 = ossl(['pkey', '-in', join(dir, 'dev1.key'), '-pubout']).out;
  assert.equal(m1, m2);
});

test('ca: many issues give distinct positive serials; notAfter is clamped to the CA', (t) => {
  if (!needPeer(t, HAVE, 'openssl')) return;
  const csrDer = opensslCsr('dev2');
  const seen = new Set<string>();
  for (let i = 0; i < 60; i++) {
    const c = parseCertificate(issueFrom(csrDer, DEFAULT_CLIENT_PROFILE).der);
    assert.ok(c.serial[0]! < 0x80);
    seen.add(c.serialHex);
  }
  assert.equal(seen.size, 60);
  const long = issueFrom(csrDer, { ...DEFAULT_CLIENT_PROFILE, validitySeconds: 36500 * 86_400 });
  assert.equal(parseCertificate(long.der).notAfter.getTime(), loaded.caCert.notAfter.getTime());
  assert.equal(ossl(['verify', '-CAfile', loaded.paths.cert, long.path]).status, 0);
});

test('ca: CRL lists the revoked serial with its reason; openssl -crl_check rejects it', (t) => {
  if (!needPeer(t, HAVE, 'openssl')) return;
  const csrDer = opensslCsr('dev3');
  const revoked = issueFrom(csrDer, DEFAULT_CLIENT_PROFILE);
  const good = issueFrom(csrDer, DEFAULT_CLIENT_PROFILE);
  const rc = parseCertificate(revoked.der);
  const now = new Date(Math.floor(Date.now() / 1000) * 1000);
  const crl = loaded.ca.buildCrl({
    revoked: [
      { serial: rc.serial, revokedAt: now, reason: 1 },
      { serial: 'abcdef0123', revokedAt: now },
    ],
    crlNumber: 42n,
    thisUpdate: now,
    nextUpdate: new Date(now.getTime() + 7 * 86_400_000),
  });
  const crlPath = write('crl.pem', toPem(crl, 'X509 CRL'));
  const text = ossl(['crl', '-in', crlPath, '-noout', '-text']).out;
  assert.match(text, /Version 2/);
  assert.match(text, new RegExp(`Serial Number: ${rc.serialHex.toUpperCase()}`));
  assert.match(text, /Key Compromise/);
  assert.match(text, /Serial Number: ABCDEF0123/);
  assert.match(text, /X509v3 CRL Number:\s+42/);
  assert.match(text, /Next Update:/);
  assert.match(text, /X509v3 Authority Key Identifier/);
  assert.equal(ossl(['crl', '-in', crlPath, '-noout', '-CAfile', loaded.paths.cert]).status, 0);
  const bad = ossl(['verify', '-crl_check', '-CAfile', loaded.paths.cert, '-CRLfile', crlPath, revoked.path]);
  assert.notEqual(bad.status, 0);
  assert.match(bad.out, /certificate revoked/);
  const ok = ossl(['verify', '-crl_check', '-CAfile', loaded.paths.cert, '-CRLfile', crlPath, good.path]);
  assert.equal(ok.status, 0, ok.out);
  // An empty CRL is valid too.
  const empty = write(
    'empty.pem',
    toPem(
      loaded.ca.buildCrl({
        revoked: [],
        crlNumber: 1n,
        thisUpdate: now,
        nextUpdate: new Date(now.getTime() + 86_400_000),
      }),
      'X509 CRL',
    ),
  );
  assert.match(ossl(['crl', '-in', empty, '-noout', '-text']).out, /No Revoked Certificates/);
});

test('ca: the RA certificate chains to the CA and has KU digitalSignature+keyEncipherment', (t) => {
  if (!needPeer(t, HAVE, 'openssl')) return;
  assert.ok(loaded.ra);
  const v = ossl(['verify', '-CAfile', loaded.paths.cert, loaded.paths.raCert]);
  assert.equal(v.status, 0, v.out);
  const text = ossl(['x509', '-in', loaded.paths.raCert, '-noout', '-text']).out;
  assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment\s/);
  assert.match(text, /CA:FALSE/);
  const caText = ossl(['x509', '-in', loaded.paths.cert, '-noout', '-text']).out;
  assert.match(caText, /X509v3 Basic Constraints: critical\s+CA:TRUE/);
  assert.match(caText, /Digital Signature, Key Encipherment, Certificate Sign, CRL Sign/);
  assert.match(caText, /Subject: O = scepter test, CN = Interop CA/);
});

test('ca: imports an openssl root, and an intermediate with its chain', async (t) => {
  if (!needPeer(t, HAVE, 'openssl')) return;
  const cfg = write(
    'pki.cnf',
    [
      '[req]',
      'distinguished_name=dn',
      '[dn]',
      '[v3_ca]',
      'basicConstraints=critical,CA:TRUE',
      'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
      'subjectKeyIdentifier=hash',
      '[v3_int]',
      'basicConstraints=critical,CA:TRUE,pathlen:0',
      'keyUsage=critical,keyCertSign,cRLSign,digitalSignature,keyEncipherment',
      'subjectKeyIdentifier=hash',
      'authorityKeyIdentifier=keyid',
      '[v3_leaf]',
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      '',
    ].join('\n'),
  );
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run([
    'req',
    '-x509',
    '-config',
    cfg,
    '-extensions',
    'v3_ca',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'root.key',
    '-out',
    'root.crt',
    '-days',
    '30',
    '-subj',
    '/CN=Imported Root',
  ]);
  run([
    'req',
    '-new',
    '-config',
    cfg,
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'int.key',
    '-out',
    'int.csr',
    '-subj',
    '/O=Acme/CN=Imported Intermediate',
  ]);
  run([
    'x509',
    '-req',
    '-in',
    'int.csr',
    '-CA',
    'root.crt',
    '-CAkey',
    'root.key',
    '-CAcreateserial',
    '-extfile',
    cfg,
    '-extensions',
    'v3_int',
    '-days',
    '30',
    '-out',
    'int.crt',
  ]);
  run([
    'x509',
    '-req',
    '-in',
    'int.csr',
    '-CA',
    'root.crt',
    '-CAkey',
    'root.key',
    '-CAcreateserial',
    '-extfile',
    cfg,
    '-extensions',
    'v3_leaf',
    '-days',
    '30',
    '-out',
    'leaf.crt',
  ]);
  const p = (n: string) => join(dir, n);

  // Root.
  const r1 = await initCa(p('imp-root'), { importKey: p('root.key'), importCert: p('root.crt') });
  assert.equal(r1.imported, true);
  assert.equal(r1.chain.length, 0);
  const l1 = loadCa(p('imp-root'));
  loaded = l1;
  const leaf1 = issueFrom(opensslCsr('dev4'), DEFAULT_CLIENT_PROFILE);
  assert.equal(ossl(['verify', '-CAfile', p('root.crt'), leaf1.path]).status, 0);

  // Intermediate + chain.
  await initCa(p('imp-int'), {
    importKey: p('int.key'),
    importCert: p('int.crt'),
    importChain: p('root.crt'),
    ra: true,
    keySize: 2048,
  });
  const l2 = loadCa(p('imp-int'));
  assert.equal(l2.chain.length, 1);
  assert.ok(
    l2.chain[0]!.der.equals(fromPem(readFileSync(p('root.crt'), 'utf8'))[0]!),
    'chain.pem holds the root',
  );
  assert.deepEqual(
    [...l2.ca.chain].map((b) => b.length),
    [l2.chain[0]!.der.length],
  );
  loaded = l2;
  const leaf2 = issueFrom(opensslCsr('dev5'), DEFAULT_CLIENT_PROFILE);
  const v2 = ossl(['verify', '-CAfile', p('root.crt'), '-untrusted', p('int.crt'), leaf2.path]);
  assert.equal(v2.status, 0, v2.out);
  assert.equal(
    ossl(['verify', '-CAfile', p('root.crt'), '-untrusted', p('int.crt'), l2.paths.raCert]).status,
    0,
  );
  assert.notEqual(ossl(['verify', '-CAfile', p('root.crt'), leaf2.path]).status, 0, 'needs the intermediate');

  // Refusals: intermediate without its chain, mismatched key, non-CA cert, existing CA.
  await assert.rejects(initCa(p('x1'), { importKey: p('int.key'), importCert: p('int.crt') }), /chain/);
  await assert.rejects(
    initCa(p('x2'), { importKey: p('root.key'), importCert: p('int.crt'), importChain: p('root.crt') }),
    /does not match/,
  );
  await assert.rejects(
    initCa(p('x3'), { importKey: p('int.key'), importCert: p('leaf.crt'), importChain: p('root.crt') }),
    /not a CA/,
  );
  await assert.rejects(
    initCa(p('imp-root'), { importKey: p('root.key'), importCert: p('root.crt') }),
    /already exists/,
  );
});
