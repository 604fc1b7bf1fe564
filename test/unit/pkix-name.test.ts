import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Name } from '@peculiar/asn1-x509';
import * as der from '../../src/asn1/writer.js';
import { OID } from '../../src/asn1/oids.js';
import { buildName, commonName, nameText, nameToString, namesEqual, parseName } from '../../src/pkix/name.js';
import { parseCsr } from '../../src/pkix/csr.js';
import { fromPem } from '../../src/pkix/certificate.js';
import { hasCommand, needPeer } from '../helpers/peers.js';

test('name: RFC 4514 text round-trips and is stored most-significant first', () => {
  const raw = buildName('CN=dev1,OU=Fleet,O=Acme,C=US');
  assert.equal(nameToString(raw), 'CN=dev1,OU=Fleet,O=Acme,C=US');
  const p = parseName(raw);
  assert.deepEqual(
    p.map((rdn) => rdn[0]!.oid),
    [OID.countryName, OID.organizationName, OID.organizationalUnitName, OID.commonName],
  );
  // The OpenSSL slash form lists the RDNs in encoded order.
  assert.ok(buildName('/C=US/O=Acme/OU=Fleet/CN=dev1').equals(raw));
  // Oracle: @peculiar parses the same structure.
  const n = AsnConvert.parse(raw, Name);
  assert.equal(n.length, 4);
  assert.equal(n[3]![0]!.type, OID.commonName);
  assert.equal(n[3]![0]!.value.toString(), 'dev1');
  assert.equal(commonName(raw), 'dev1');
  assert.equal(commonName(buildName('O=Acme')), undefined);
  assert.equal(commonName(Buffer.from([0x30, 0x05])), undefined);
});

test('name: string types follow the rules (Printable, UTF8, C Printable, email/DC IA5)', () => {
  const p = parseName(buildName('CN=Jürgen,O=Acme Inc.,C=DE,emailAddress=a@b.example,DC=example'));
  const tags = new Map(p.flat().map((a) => [a.oid, a.tag]));
  assert.equal(tags.get(OID.commonName), 0x0c);
  assert.equal(tags.get(OID.organizationName), 0x13);
  assert.equal(tags.get(OID.countryName), 0x13);
  assert.equal(tags.get(OID.emailAddress), 0x16);
  assert.equal(tags.get(OID.domainComponent), 0x16);
  assert.equal(p.flat().find((a) => a.oid === OID.commonName)!.value, 'Jürgen');
  assert.throws(() => buildName('C=USA'));
  assert.throws(() => buildName('XX=1'));
  assert.throws(() => buildName('CN'));
  assert.equal(buildName('').toString('hex'), '3000');
});

test('name: special characters are escaped and unescaped', () => {
  const cases = [
    'CN=a\\,b\\+c\\;d,O=x\\=y',
    'CN=\\#hash',
    'CN=\\ lead and trail\\ ',
    'CN=quote\\"s\\<\\>',
    'CN=back\\\\slash',
  ];
  for (const s of cases) {
    const raw = buildName(s);
    assert.equal(nameToString(raw), s, s);
  }
  const v = parseName(buildName('CN=a\\,b\\+c'))[0]![0]!.value;
  assert.equal(v, 'a,b+c');
  assert.equal(parseName(buildName('CN=\\C3\\BC'))[0]![0]!.value, 'ü');
  // Multi-valued RDN.
  const mv = parseName(buildName('CN=dev1+UID=42,O=Acme'));
  assert.equal(mv.length, 2);
  assert.equal(mv[1]!.length, 2);
  assert.equal(nameToString(buildName('CN=dev1+UID=42,O=Acme')).split(',')[1], 'O=Acme');
  // Non-string values print as hex and build back from hex.
  const hexName = der.encode(der.seq(der.set(der.seq(der.oid('1.2.3.4'), der.int(5)))));
  assert.equal(nameToString(hexName), '1.2.3.4=#020105');
  assert.ok(buildName('1.2.3.4=#020105').equals(hexName));
});

test('name: namesEqual folds case and whitespace, keeps order and types', () => {
  const a = buildName('CN=Device One,O=Acme');
  assert.ok(namesEqual(a, buildName('CN=device  one,O=ACME')));
  assert.ok(namesEqual(a, buildName('cn=DEVICE ONE , o = acme')));
  // Same text, different string types (UTF8 vs Printable) compare equal.
  const utf8 = der.encode(
    der.seq(
      der.set(der.seq(der.oid(OID.organizationName), der.utf8('acme'))),
      der.set(der.seq(der.oid(OID.commonName), der.utf8('DEVICE one'))),
    ),
  );
  assert.ok(namesEqual(a, utf8));
  assert.ok(!namesEqual(a, buildName('CN=Device Two,O=Acme')));
  assert.ok(!namesEqual(a, buildName('O=Acme,CN=Device One')), 'RDN order matters');
  assert.ok(!namesEqual(a, buildName('CN=Device One')), 'RDN count matters');
  assert.ok(!namesEqual(a, buildName('OU=Device One,O=Acme')), 'attribute types matter');
  assert.ok(!namesEqual(a, Buffer.from('3003310100', 'hex')), 'malformed is never equal');
  // Multi-valued RDNs compare as sets.
  assert.ok(namesEqual(buildName('CN=x+UID=1'), buildName('UID=1+CN=X')));
});

test('name: agrees with openssl -subj', (t) => {
  if (!needPeer(t, hasCommand('openssl'), 'openssl')) return;
  const dir = mkdtempSync(join(tmpdir(), 'scepter-name-'));
  try {
    const csrPath = join(dir, 'r.csr');
    execFileSync(
      'openssl',
      [
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        join(dir, 'k.pem'),
        '-subj',
        '/C=US/ST=CA/O=Acme, Inc./OU=Fleet+UID=7/CN=dev 1/emailAddress=ops@acme.example',
        '-out',
        csrPath,
      ],
      { stdio: 'pipe' },
    );
    const csr = parseCsr(fromPem(readFileSync(csrPath, 'utf8'), 'CERTIFICATE REQUEST')[0]!);
    const rfc = execFileSync(
      'openssl',
      ['req', '-in', csrPath, '-noout', '-subject', '-nameopt', 'RFC2253'],
      { encoding: 'utf8' },
    )
      .trim()
      .replace(/^subject=/, '');
    assert.equal(nameToString(csr.subjectRaw), rfc);
    const ours = buildName('/C=US/ST=CA/O=Acme, Inc./OU=Fleet+UID=7/CN=dev 1/emailAddress=ops@acme.example');
    assert.ok(namesEqual(ours, csr.subjectRaw));
    assert.ok(namesEqual(buildName(rfc), csr.subjectRaw));
    assert.ok(
      !namesEqual(
        buildName('/C=US/ST=CA/O=Acme, Inc./OU=Fleet+UID=7/CN=dev 2/emailAddress=ops@acme.example'),
        csr.subjectRaw,
      ),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('name: the shared parses never answer for bytes that changed, nor hand out their parse', () => {
  const a = buildName('CN=Device 1,O=Acme');
  const b = buildName('CN=device  1,O=ACME');
  assert.equal(nameText(a), 'CN=Device 1,O=Acme');
  assert.equal(commonName(a), 'Device 1');
  assert.ok(namesEqual(a, b));
  // The same Buffer object, other bytes (same length): the answers follow the bytes.
  const c = Buffer.from(a);
  assert.equal(nameText(c), 'CN=Device 1,O=Acme');
  c[c.length - 1] = 'f'.charCodeAt(0); // the DER ends with the CN: "Device 1" → "Device f"
  assert.equal(nameText(c), 'CN=Device f,O=Acme');
  assert.equal(nameToString(c), 'CN=Device f,O=Acme');
  assert.equal(commonName(c), 'Device f');
  assert.ok(!namesEqual(c, b));
  // parseName is fresh every time: changing its result changes no later answer.
  const p = parseName(a);
  p[0]![0]!.value = 'Mallory';
  p.pop();
  assert.equal(nameText(a), 'CN=Device 1,O=Acme');
  assert.equal(parseName(a).length, 2);
  assert.ok(namesEqual(a, b));
  // Malformed input: the same answers as before the cache (and nothing cached).
  const bad = Buffer.from([0x30, 0x03, 0x31, 0x00, 0x00]);
  assert.equal(nameText(bad), `#${bad.toString('hex')}`);
  assert.equal(commonName(bad), undefined);
  assert.ok(!namesEqual(bad, a));
  assert.throws(() => nameToString(bad));
});
