/**
 * src/pkix/name-checks.ts: subject Names, GeneralNames and RSA keys as the CA must refuse them.
 * Hostile encodings are built by hand with the DER writer (our name builder refuses them).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import * as der from '../../src/asn1/writer.js';
import * as r from '../../src/asn1/reader.js';
import { OID } from '../../src/asn1/oids.js';
import { buildName } from '../../src/pkix/name.js';
import {
  dnsNameProblem,
  emailProblem,
  escapeValue,
  generalNameProblem,
  OID_MS_UPN,
  rsaKeyProblem,
  subjectAltNameProblem,
  subjectProblem,
  uriProblem,
} from '../../src/pkix/name-checks.js';
import { pooledRsaKey } from '../helpers/pki.js';

const name = (...avas: der.Der[][]): Buffer => der.encode(der.seq(...avas.map((rdn) => der.set(...rdn))));
const ava = (oid: string, v: der.Der): der.Der => der.seq(der.oid(oid), v);
const gn = (d: der.Der): r.Tlv => r.parse(der.encode(d));
const san = (...names: der.Der[]): Buffer => der.encode(der.seq(...names));

test('subject: ordinary names pass, including the empty Name and UTF-8 / BMP values', () => {
  assert.equal(subjectProblem(buildName('CN=dev1,OU=Ops,O=Acme GmbH,L=Berlin,C=DE')), undefined);
  assert.equal(subjectProblem(buildName('')), undefined);
  assert.equal(subjectProblem(buildName('CN=Jürgen Müller,DC=corp,DC=example')), undefined);
  assert.equal(subjectProblem(buildName('emailAddress=a@b.example,CN=x')), undefined);
  const bmp = Buffer.from('Zoë', 'utf16le').swap16();
  assert.equal(subjectProblem(name([ava(OID.commonName, der.primitive(0x1e, bmp))])), undefined);
  assert.equal(subjectProblem(buildName('CN=' + 'a'.repeat(64))), undefined);
});

test('subject: malformed structures are refused', () => {
  assert.match(
    subjectProblem(der.encode(der.seq(der.int(5))))!,
    /^subject is not a Name \(an RDN is not a SET\)/,
  );
  assert.match(subjectProblem(der.encode(der.int(5)))!, /^subject is not a Name/);
  assert.equal(subjectProblem(name([])), 'subject has an empty RDN');
  assert.match(
    subjectProblem(der.encode(der.seq(der.set(der.seq(der.oid(OID.commonName)))))) ?? '',
    /not \{ type, value \}/,
  );
  assert.match(subjectProblem(Buffer.from([0x30, 0x05, 0x31]))!, /^subject is malformed/);
  // Indefinite length (BER) would be spliced into the certificate as is.
  const indef = Buffer.from([0x30, 0x80, 0x00, 0x00]);
  assert.match(subjectProblem(indef)!, /^subject is not a Name/);
});

test('subject: value types, bounds and characters per attribute', () => {
  assert.equal(
    subjectProblem(buildName('CN=' + 'a'.repeat(65))),
    "subject CN 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' is longer than 64 characters",
  );
  assert.match(subjectProblem(buildName('O=' + 'a'.repeat(65)))!, /^subject O .* longer than 64/);
  assert.equal(subjectProblem(buildName('L=' + 'a'.repeat(128))), undefined);
  assert.match(
    subjectProblem(name([ava(OID.commonName, der.int(5))]))!,
    /^subject CN has a string type \(tag 0x2\)/,
  );
  assert.match(
    subjectProblem(name([ava(OID.commonName, der.utf8('a\u0000b'))]))!,
    /^subject CN 'a\\x00b' contains control/,
  );
  assert.match(subjectProblem(name([ava(OID.commonName, der.utf8('a\u202eb'))]))!, /contains control/);
  assert.match(subjectProblem(name([ava(OID.commonName, der.utf8(''))]))!, /^subject CN is empty/);
  assert.match(
    subjectProblem(name([ava(OID.commonName, der.primitive(0x0c, Buffer.from([0xc3, 0x28])))]))!,
    /not valid UTF-8/,
  );
  assert.match(
    subjectProblem(name([ava(OID.commonName, der.primitive(0x13, Buffer.from('a@b')))]))!,
    /not a valid PrintableString/,
  );
  assert.match(subjectProblem(name([ava(OID.countryName, der.printable('DEU'))]))!, /^subject C/);
  assert.match(subjectProblem(name([ava(OID.countryName, der.utf8('DE'))]))!, /^subject C has a string type/);
  assert.match(
    subjectProblem(name([ava(OID.emailAddress, der.utf8('a@b'))]))!,
    /^subject emailAddress has a string type/,
  );
  assert.match(subjectProblem(name([ava(OID.domainComponent, der.ia5('a.b'))]))!, /^subject DC/);
  // TeletexString is legacy and refused.
  assert.match(
    subjectProblem(name([ava(OID.commonName, der.primitive(0x14, Buffer.from('x')))]))!,
    /string type \(tag 0x14\)/,
  );
  // Unknown attribute types: any DirectoryString up to 128 characters.
  assert.equal(subjectProblem(name([ava('1.2.3.4', der.utf8('x'))])), undefined);
  assert.match(
    subjectProblem(name([ava('1.2.3.4', der.utf8('x'.repeat(129)))]))!,
    /^subject 1\.2\.3\.4 .* longer than 128/,
  );
});

test('subject: attribute count and size limits', () => {
  const many = name(
    ...Array.from({ length: 17 }, () => [ava(OID.organizationalUnitName, der.printable('x'))]),
  );
  assert.equal(subjectProblem(many), 'subject has more than 16 attributes');
  assert.equal(subjectProblem(many, { maxAttributes: 17 }), undefined);
  assert.equal(subjectProblem(many, { maxBytes: 50 }), 'subject is larger than 50 bytes');
});

test('dNSName: LDH labels, length bounds, NUL, wildcards only when allowed', () => {
  for (const ok of ['a.example', 'xn--bcher-kva.example', 'a-b.c', 'localhost', '1.example'])
    assert.equal(dnsNameProblem(ok), undefined, ok);
  assert.equal(dnsNameProblem('*.corp.example'), "SAN dNSName '*.corp.example': wildcards are not allowed");
  assert.equal(dnsNameProblem('*.corp.example', true), undefined);
  assert.match(dnsNameProblem('*.google.com')!, /wildcards are not allowed/);
  assert.match(dnsNameProblem('*', true)!, /at least two labels/);
  assert.match(dnsNameProblem('*.com', true)!, /at least two labels/);
  assert.match(dnsNameProblem('f*.corp.example', true)!, /only as the whole first label/);
  assert.match(dnsNameProblem('a.*.example', true)!, /only as the whole first label/);
  assert.equal(
    dnsNameProblem('bank.com\0.attacker.com'),
    "SAN dNSName 'bank.com\\x00.attacker.com' contains characters other than letters, digits, '-' and '.'",
  );
  assert.match(dnsNameProblem('a..b')!, /empty label/);
  assert.match(dnsNameProblem('a.example.')!, /ends with a dot/);
  assert.match(dnsNameProblem('-a.example')!, /inner hyphens/);
  assert.match(dnsNameProblem('a_b.example')!, /inner hyphens/);
  assert.match(dnsNameProblem('a'.repeat(64) + '.example')!, /label longer than 63/);
  assert.equal(dnsNameProblem('a'.repeat(63) + '.example'), undefined);
  const long = Array.from({ length: 4 }, () => 'a'.repeat(63)).join('.'); // 255
  assert.match(dnsNameProblem(long)!, /longer than 253/);
  assert.equal(dnsNameProblem(''), 'SAN dNSName is empty');
});

test('rfc822Name and URI syntax', () => {
  assert.equal(emailProblem('alice@corp.example'), undefined);
  assert.equal(emailProblem('a.b+tag@corp.example'), undefined);
  for (const bad of [
    'alice',
    '@corp.example',
    'alice@',
    'a..b@x.example',
    'a b@x.example',
    'a@b@c',
    'a@-x.example',
  ])
    assert.ok(emailProblem(bad), bad);
  assert.match(emailProblem('x'.repeat(65) + '@a.example')!, /local part longer than 64/);
  for (const ok of [
    'https://a.example/p?q=1#f',
    'urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66',
    'spiffe://t.example/w',
  ])
    assert.equal(uriProblem(ok), undefined, ok);
  assert.match(uriProblem('no-scheme')!, /no scheme/);
  assert.match(uriProblem('https://a.example/ x')!, /not allowed in a URI/);
  assert.match(uriProblem('https://a.example/<x>')!, /not allowed in a URI/);
  assert.match(uriProblem('https://a.example/%zz')!, /percent-escape/);
  assert.match(uriProblem('https:///path')!, /empty host/);
});

test('GeneralName: iPAddress of 4 or 16 bytes only; non-GeneralNames and unknown otherNames refused', () => {
  assert.equal(generalNameProblem(gn(der.implicitPrimitive(7, Buffer.alloc(4)))), undefined);
  assert.equal(generalNameProblem(gn(der.implicitPrimitive(7, Buffer.alloc(16)))), undefined);
  assert.equal(
    generalNameProblem(gn(der.implicitPrimitive(7, Buffer.alloc(8)))),
    'SAN iPAddress of 8 bytes: an address is 4 (IPv4) or 16 (IPv6) bytes',
  );
  assert.match(generalNameProblem(gn(der.implicitPrimitive(7, Buffer.alloc(0))))!, /iPAddress of 0 bytes/);
  assert.match(generalNameProblem(gn(der.int(5)))!, /tag 0x2 is not a GeneralName/);
  assert.match(
    generalNameProblem(gn(der.implicitPrimitive(0, Buffer.from('x'))))!,
    /tag 0x80 is not a GeneralName/,
  );
  assert.match(generalNameProblem(gn(der.implicitPrimitive(8, der.oid('1.2.3'))))!, /registeredID/);
  assert.match(
    generalNameProblem(gn(der.implicitPrimitive(1, Buffer.from('a\0@b.example'))))!,
    /control or non-ASCII/,
  );
  assert.match(
    generalNameProblem(gn(der.implicitPrimitive(6, Buffer.from('x'.repeat(600)))))!,
    /URI is longer than 512/,
  );
  const upn = (v: der.Der, oid = OID_MS_UPN) =>
    gn(der.implicitConstructed(0, [der.oid(oid), der.explicit(0, v)]));
  assert.equal(generalNameProblem(upn(der.utf8('alice@corp.example'))), undefined);
  assert.match(
    generalNameProblem(upn(der.utf8('x'), '1.2.3.4'))!,
    /otherName of type 1\.2\.3\.4 is not allowed/,
  );
  assert.equal(
    generalNameProblem(upn(der.utf8('x'), '1.2.3.4'), { allowedOtherNames: ['1.2.3.4'] }),
    undefined,
  );
  assert.match(generalNameProblem(upn(der.int(1)))!, /UPN has a string type/);
  assert.match(generalNameProblem(upn(der.utf8('a\nb')))!, /control characters/);
  assert.match(
    generalNameProblem(gn(der.implicitConstructed(0, [der.oid(OID_MS_UPN)])))!,
    /not \{ type-id, \[0\] value \}/,
  );
  // directoryName: checked like a subject.
  assert.equal(generalNameProblem(gn(der.explicit(4, buildName('CN=x')))), undefined);
  assert.match(generalNameProblem(gn(der.explicit(4, der.seq(der.int(1)))))!, /^SAN directoryName: /);
  assert.match(
    generalNameProblem(gn(der.explicit(4, buildName('CN=x'))), { allowDirectoryNames: false })!,
    /not allowed/,
  );
});

test('subjectAltName: a non-empty SEQUENCE OF GeneralName within the count limit', () => {
  const dns = (s: string) => der.implicitPrimitive(2, Buffer.from(s));
  assert.equal(
    subjectAltNameProblem(san(dns('a.example'), der.implicitPrimitive(7, Buffer.alloc(4)))),
    undefined,
  );
  assert.equal(subjectAltNameProblem(san()), 'subjectAltName is empty');
  assert.match(subjectAltNameProblem(der.encode(der.int(1)))!, /not a SEQUENCE OF GeneralName/);
  assert.match(subjectAltNameProblem(Buffer.from([0x30, 0x03, 0x82]))!, /malformed/);
  const many = san(...Array.from({ length: 21 }, (_, i) => dns(`h${i}.example`)));
  assert.equal(subjectAltNameProblem(many), 'more than 20 subjectAltNames requested');
  assert.equal(subjectAltNameProblem(many, { maxSans: 21 }), undefined);
  assert.match(
    subjectAltNameProblem(san(dns('ok.example'), dns('*.x.example')))!,
    /wildcards are not allowed/,
  );
  assert.equal(subjectAltNameProblem(san(dns('*.x.example')), { allowWildcards: true }), undefined);
});

/** An RSA SPKI with the given modulus and exponent contents. */
function rsaSpki(n: Buffer, e: Buffer): Buffer {
  const key = der.seq(der.intRaw(n), der.intRaw(e));
  return der.encode(der.seq(der.algorithm(OID.rsaEncryption, der.nul()), der.bitString(der.encode(key))));
}

test('RSA key: exponent >= 65537 and odd, odd positive modulus', () => {
  const spki = (k: ReturnType<typeof pooledRsaKey>) =>
    createPublicKey(k).export({ type: 'spki', format: 'der' });
  assert.equal(rsaKeyProblem(spki(pooledRsaKey(0))), undefined);
  const n = Buffer.concat([Buffer.from([0x00, 0xc1]), Buffer.alloc(254, 0x55), Buffer.from([0x01])]);
  assert.equal(rsaKeyProblem(rsaSpki(n, Buffer.from([0x01, 0x00, 0x01]))), undefined);
  assert.equal(
    rsaKeyProblem(rsaSpki(n, Buffer.from([1]))),
    'the RSA public exponent 1 is smaller than 65537',
  );
  assert.equal(
    rsaKeyProblem(rsaSpki(n, Buffer.from([3]))),
    'the RSA public exponent 3 is smaller than 65537',
  );
  assert.equal(
    rsaKeyProblem(rsaSpki(n, Buffer.from([0x01, 0x00, 0x02]))),
    'the RSA public exponent 65538 is even',
  );
  assert.match(rsaKeyProblem(rsaSpki(n, Buffer.from([0xff])))!, /not a positive integer/);
  assert.match(
    rsaKeyProblem(rsaSpki(n, Buffer.concat([Buffer.from([1]), Buffer.alloc(32, 1)])))!,
    /2\^256 or larger/,
  );
  const even = Buffer.from(n);
  even[even.length - 1] = 0x02;
  assert.equal(rsaKeyProblem(rsaSpki(even, Buffer.from([0x01, 0x00, 0x01]))), 'the RSA modulus is even');
  assert.match(
    rsaKeyProblem(rsaSpki(n.subarray(1), Buffer.from([0x01, 0x00, 0x01])))!,
    /modulus is not a positive/,
  );
  // e = 3 from node:crypto, and non-RSA keys are not this check's business.
  const e3 = generateKeyPairSync('rsa', { modulusLength: 1024, publicExponent: 3 }).publicKey;
  assert.match(rsaKeyProblem(e3.export({ type: 'spki', format: 'der' }))!, /exponent 3 is smaller/);
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
  assert.equal(rsaKeyProblem(ec.export({ type: 'spki', format: 'der' })), undefined);
  assert.equal(rsaKeyProblem(Buffer.from([0x30, 0x00])), 'the RSA public key is malformed');
});

test('escapeValue: controls, quotes and non-ASCII escaped, long values cut', () => {
  assert.equal(escapeValue("a'b\\c\u0000\u001b[31m"), "a\\'b\\\\c\\x00\\x1b[31m");
  assert.equal(escapeValue('é\u202e'), '\\xe9\\u{202e}');
  assert.equal(escapeValue(Buffer.from([0x41, 0xff])), 'A\\xff');
  assert.equal(escapeValue('x'.repeat(100)), 'x'.repeat(80) + '…');
});

test('generalNameProblem never throws on malformed constructed entries', () => {
  // [0] constructed whose content is a truncated element.
  const t = r.parse(Buffer.from([0xa0, 0x02, 0x06, 0x05]));
  assert.match(generalNameProblem(t)!, /^SAN entry is malformed/);
  const d = r.parse(Buffer.from([0xa4, 0x02, 0x30, 0x05]));
  assert.match(generalNameProblem(d)!, /^SAN entry is malformed/);
});
