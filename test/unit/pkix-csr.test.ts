import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { pooledRsaKey } from '../helpers/pki.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificationRequest } from '@peculiar/asn1-csr';
import * as der from '../../src/asn1/writer.js';
import { OID } from '../../src/asn1/oids.js';
import { buildCsr, CsrError, parseCsr, verifyCsrSignature } from '../../src/pkix/csr.js';
import { buildKeyUsage } from '../../src/pkix/extensions.js';
import { buildName, nameToString } from '../../src/pkix/name.js';
import { fromPem, toPem } from '../../src/pkix/certificate.js';
import { hasCommand, needPeer } from '../helpers/peers.js';

const rsa = { privateKey: pooledRsaKey(0), publicKey: createPublicKey(pooledRsaKey(0)) };
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });

/** A CSR built by hand with a challengePassword value of any DER string type. */
function csrWithChallenge(challengeValue: der.Der | undefined): Buffer {
  const spki = rsa.publicKey.export({ type: 'spki', format: 'der' });
  const items: der.Der[] = [der.int(0), buildName('CN=hand made'), spki];
  if (challengeValue) {
    items.push(
      der.implicitConstructed(0, [der.seq(der.oid(OID.challengePassword), der.set(challengeValue))]),
    );
  }
  const info = der.encode(der.seq(...items));
  const sig = sign('sha256', info, rsa.privateKey);
  return der.encode(der.seq(info, der.algorithm(OID.sha256WithRSAEncryption, der.nul()), der.bitString(sig)));
}

function bmp(s: string): der.Der {
  const b = Buffer.from(s, 'utf16le');
  b.swap16();
  return der.primitive(0x1e, b);
}

test('csr: challengePassword in PrintableString, UTF8String, BMPString, or absent', () => {
  const cases: Array<[der.Der, string]> = [
    [der.printable('abc 123'), 'abc 123'],
    [der.utf8('pässwörd✓'), 'pässwörd✓'],
    [bmp('Intune-ÄÖ-challenge'), 'Intune-ÄÖ-challenge'],
    [der.primitive(0x14, Buffer.from('teletex', 'latin1')), 'teletex'],
  ];
  for (const [v, want] of cases) {
    const csr = parseCsr(csrWithChallenge(v));
    assert.equal(csr.challengePassword, want);
    assert.ok(verifyCsrSignature(csr));
    assert.equal(csr.attributes.length, 1);
  }
  const long = 'x'.repeat(300);
  assert.equal(parseCsr(csrWithChallenge(der.utf8(long))).challengePassword, long);
  // No [0] attributes at all (old clients): tolerated.
  const bare = parseCsr(csrWithChallenge(undefined));
  assert.equal(bare.challengePassword, undefined);
  assert.deepEqual(bare.attributes, []);
  assert.ok(verifyCsrSignature(bare));
  // A challenge that is not a string is refused, without echoing it.
  assert.throws(
    () => parseCsr(csrWithChallenge(der.int(1234567))),
    (e: unknown) => {
      return e instanceof CsrError && !e.message.includes('1234567');
    },
  );
});

test('csr: buildCsr round-trips and agrees with @peculiar/asn1-csr', () => {
  const out = buildCsr({
    subject: 'CN=dev1,O=Acme',
    key: rsa.privateKey,
    publicKey: rsa.publicKey,
    challengePassword: 'secret-1',
    subjectAltNames: [
      { type: 'dns', value: 'dev1.acme.example' },
      { type: 'ip', value: '10.0.0.1' },
      { type: 'email', value: 'dev1@acme.example' },
      { type: 'uri', value: 'urn:uuid:1234' },
    ],
    extensions: [buildKeyUsage(['digitalSignature'])],
  });
  const csr = parseCsr(out);
  assert.ok(verifyCsrSignature(csr));
  assert.equal(csr.keyType, 'rsa');
  assert.equal(csr.keyBits, 2048);
  assert.equal(csr.challengePassword, 'secret-1');
  assert.equal(nameToString(csr.subjectRaw), 'CN=dev1,O=Acme');
  assert.deepEqual(csr.subjectAltNames, [
    { type: 'dns', value: 'dev1.acme.example' },
    { type: 'ip', value: '10.0.0.1' },
    { type: 'email', value: 'dev1@acme.example' },
    { type: 'uri', value: 'urn:uuid:1234' },
  ]);
  assert.deepEqual(
    csr.extensions.map((e) => e.oid),
    [OID.subjectAltName, OID.keyUsage],
  );
  const oracle = AsnConvert.parse(out, CertificationRequest);
  assert.equal(oracle.certificationRequestInfo.attributes.length, 2);
  assert.equal(oracle.signatureAlgorithm.algorithm, OID.sha256WithRSAEncryption);
  assert.ok(
    Buffer.from(AsnConvert.serialize(oracle.certificationRequestInfo.subject)).equals(csr.subjectRaw),
  );

  const ecCsr = parseCsr(
    buildCsr({ subject: '/CN=ec', key: ec.privateKey, publicKey: ec.publicKey, digest: 'sha384' }),
  );
  assert.equal(ecCsr.keyType, 'ec');
  assert.equal(ecCsr.keyBits, 256);
  assert.equal(ecCsr.signatureAlgorithm, '1.2.840.10045.4.3.3');
  assert.ok(verifyCsrSignature(ecCsr));
});

test('csr: a tampered request fails verification; malformed input only ever throws CsrError', () => {
  const good = buildCsr({
    subject: 'CN=dev1',
    key: rsa.privateKey,
    publicKey: rsa.publicKey,
    challengePassword: 'pw',
  });
  const csr = parseCsr(good);
  // Flip one byte inside the subject's CN value ("dev1" → "dev2").
  const at = good.indexOf(Buffer.from('dev1'));
  const bad = Buffer.from(good);
  bad[at + 3] = 0x32;
  const t = parseCsr(bad);
  assert.equal(nameToString(t.subjectRaw), 'CN=dev2');
  assert.equal(verifyCsrSignature(t), false);
  // Flip a signature byte.
  const bad2 = Buffer.from(good);
  bad2[bad2.length - 5]! ^= 1;
  assert.equal(verifyCsrSignature(parseCsr(bad2)), false);
  assert.ok(verifyCsrSignature(csr));
  // Every truncation and many single-byte corruptions are rejected with CsrError (or parse).
  for (let n = 0; n < good.length; n++) {
    assert.throws(() => parseCsr(good.subarray(0, n)), CsrError);
  }
  for (let i = 0; i < good.length; i += 3) {
    const c = Buffer.from(good);
    c[i]! ^= 0xa5;
    try {
      const p = parseCsr(c);
      verifyCsrSignature(p);
    } catch (e) {
      assert.ok(e instanceof CsrError, `offset ${i}: ${String(e)}`);
    }
  }
  assert.throws(() => parseCsr(Buffer.alloc(70_000)), CsrError);
  assert.throws(() => parseCsr(Buffer.concat([good, Buffer.from([0])])), CsrError);
});

test('csr: openssl-made requests parse and verify (SANs, challenge, sha1/384/512, PSS, EC)', (t) => {
  if (!needPeer(t, hasCommand('openssl'), 'openssl')) return;
  const dir = mkdtempSync(join(tmpdir(), 'scepter-csr-'));
  try {
    const keyPath = join(dir, 'k.pem');
    writeFileSync(keyPath, rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const cfg = join(dir, 'req.cnf');
    writeFileSync(
      cfg,
      '[req]\ndistinguished_name=dn\nattributes=attrs\nprompt=no\n[dn]\nCN=ossl dev\nO=Acme\n[attrs]\nchallengePassword=OpenSSL-Chal-42\n',
    );
    const make = (name: string, extra: string[]): Buffer => {
      const p = join(dir, name);
      execFileSync(
        'openssl',
        ['req', '-new', '-config', cfg, '-key', keyPath, '-out', p, '-outform', 'DER', ...extra],
        { stdio: 'pipe' },
      );
      return readFileSync(p);
    };
    const withSan = parseCsr(
      make('san.der', [
        '-addext',
        'subjectAltName=DNS:ossl.example,IP:192.0.2.7,IP:2001:db8::1,email:o@acme.example',
      ]),
    );
    assert.ok(verifyCsrSignature(withSan));
    assert.equal(withSan.challengePassword, 'OpenSSL-Chal-42');
    assert.equal(nameToString(withSan.subjectRaw), 'O=Acme,CN=ossl dev');
    assert.deepEqual(withSan.subjectAltNames, [
      { type: 'dns', value: 'ossl.example' },
      { type: 'ip', value: '192.0.2.7' },
      { type: 'ip', value: '2001:db8::1' },
      { type: 'email', value: 'o@acme.example' },
    ]);
    for (const d of ['-sha1', '-sha384', '-sha512']) {
      const c = parseCsr(make(`d${d}.der`, [d]));
      assert.ok(verifyCsrSignature(c), d);
    }
    const pss = parseCsr(
      make('pss.der', ['-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32', '-sha256']),
    );
    assert.equal(pss.signatureAlgorithm, OID.rsassaPss);
    assert.ok(verifyCsrSignature(pss));
    const ecKey = join(dir, 'ec.pem');
    writeFileSync(ecKey, ec.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const ecp = join(dir, 'ec.der');
    execFileSync('openssl', ['req', '-new', '-config', cfg, '-key', ecKey, '-out', ecp, '-outform', 'DER'], {
      stdio: 'pipe',
    });
    const ecCsr = parseCsr(readFileSync(ecp));
    assert.equal(ecCsr.keyType, 'ec');
    assert.ok(verifyCsrSignature(ecCsr));
    // Our CSR is accepted by openssl req -verify and shows what we put in.
    const ours = join(dir, 'ours.pem');
    writeFileSync(
      ours,
      toPem(
        buildCsr({
          subject: 'CN=ours,O=Acme',
          key: rsa.privateKey,
          publicKey: rsa.publicKey,
          challengePassword: 'c-1',
          subjectAltNames: [{ type: 'dns', value: 'ours.example' }],
        }),
        'CERTIFICATE REQUEST',
      ),
    );
    const v = spawnSync('openssl', ['req', '-in', ours, '-verify', '-noout', '-text'], { encoding: 'utf8' });
    assert.equal(v.status, 0, v.stderr);
    assert.match(v.stdout + v.stderr, /verify OK/);
    assert.match(v.stdout, /DNS:ours\.example/);
    assert.match(v.stdout, /challengePassword\s*:c-1/);
    // And openssl reads our DER back as the same bytes.
    const back = execFileSync('openssl', ['req', '-in', ours, '-outform', 'PEM'], { encoding: 'utf8' });
    assert.ok(
      fromPem(back, 'CERTIFICATE REQUEST')[0]!.equals(
        fromPem(readFileSync(ours, 'utf8'), 'CERTIFICATE REQUEST')[0]!,
      ),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
