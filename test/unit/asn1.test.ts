import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { AsnConvert, AsnParser } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import * as r from '../../src/asn1/reader.js';
import * as der from '../../src/asn1/writer.js';
import { OID } from '../../src/asn1/oids.js';

test('writer: integers encode minimally in two’s complement', () => {
  const cases: Array<[number | bigint, string]> = [
    [0, '020100'],
    [1, '020101'],
    [127, '02017f'],
    [128, '02020080'],
    [256, '02020100'],
    [-1, '0201ff'],
    [-128, '020180'],
    [-129, '0202ff7f'],
    [2n ** 64n, '0209010000000000000000'],
  ];
  for (const [n, hex] of cases) {
    const enc = der.encode(der.int(n));
    assert.equal(enc.toString('hex'), hex, `int(${n})`);
    assert.equal(r.bigint(r.parse(enc)), BigInt(n));
  }
  assert.equal(der.encode(der.int(Buffer.from([0, 0, 0x80]))).toString('hex'), '02020080');
});

test('writer: long lengths, OIDs and SET OF ordering', () => {
  const big = Buffer.alloc(70000, 7);
  const enc = der.encode(der.octetString(big));
  assert.equal(enc.subarray(0, 5).toString('hex'), '0483011170');
  assert.deepEqual(r.octets(r.parse(enc)), big);
  for (const o of Object.values(OID)) assert.equal(r.oid(r.parse(der.oid(o))), o);
  const s = der.encode(der.setOf([der.int(300), der.int(5), der.octetString(Buffer.from([1]))]));
  const kids = r.children(r.parse(s)).map((t) => r.raw(t).toString('hex'));
  assert.deepEqual(kids, [...kids].sort());
});

test('reader: indefinite lengths and constructed OCTET STRINGs', () => {
  // SEQUENCE (indef) { [0] (indef) { OCTET STRING (constructed, indef) { "ab", "cd" } } }
  const ber = Buffer.from('3080a0802480040261620402636400000000' + '0000', 'hex');
  const top = r.parse(ber);
  assert.equal(top.indefinite, true);
  const c0 = new r.Cursor(top).expect(0xa0);
  const os = new r.Cursor(c0).expect(0x24);
  assert.equal(r.octets(os).toString(), 'abcd');
});

test('reader: refuses malformed input with typed errors only', () => {
  const bad = ['', '30', '3005020101', '308002010100', '04850000000001', '3000ff', '0680', '1f'];
  for (const h of bad) {
    assert.throws(
      () => {
        const t = r.parse(Buffer.from(h, 'hex'));
        if (t.constructed) r.children(t);
        if (t.tag === 0x06) r.oid(t);
      },
      r.Asn1Error,
      h,
    );
  }
  // Nesting bomb: 1000 nested indefinite SEQUENCEs.
  const bomb = Buffer.concat([
    Buffer.from('3080'.repeat(1000), 'hex'),
    Buffer.from('0000'.repeat(1000), 'hex'),
  ]);
  assert.throws(
    () => r.parse(bomb),
    (e: unknown) => e instanceof r.Asn1Error && e.code === 'too-deep',
  );
});

test('reader/writer: round-trip an OpenSSL certificate and agree with @peculiar', () => {
  const pem = execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      '/dev/null',
      '-subj',
      '/CN=asn1 test/O=scepter',
      '-days',
      '1',
      '-outform',
      'DER',
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const t = r.parse(pem);
  const [tbs, alg, sig] = r.children(t);
  const peculiar = AsnParser.parse(pem, Certificate);
  assert.equal(r.oid(r.children(alg!)[0]!), peculiar.signatureAlgorithm.algorithm);
  assert.deepEqual(r.bitString(sig!).bytes, Buffer.from(peculiar.signatureValue));
  const tbsKids = r.children(tbs!);
  assert.deepEqual(r.intBytes(tbsKids[1]!), Buffer.from(peculiar.tbsCertificate.serialNumber));
  const notBefore = r.time(r.children(tbsKids[4]!)[0]!);
  assert.equal(notBefore.getTime(), peculiar.tbsCertificate.validity.notBefore.getTime().getTime());
  // Re-assemble the certificate from spliced raw parts: byte-identical.
  const again = der.encode(der.seq(r.raw(tbs!), r.raw(alg!), r.raw(sig!)));
  assert.deepEqual(again, pem);
  assert.deepEqual(Buffer.from(AsnConvert.serialize(peculiar)), pem);
});

test('times: UTCTime until 2049, GeneralizedTime from 2050', () => {
  const d1 = new Date(Date.UTC(2049, 11, 31, 23, 59, 59));
  const d2 = new Date(Date.UTC(2050, 0, 1, 0, 0, 0));
  assert.equal(der.encode(der.time(d1))[0], 0x17);
  assert.equal(der.encode(der.time(d2))[0], 0x18);
  assert.equal(r.time(r.parse(der.encode(der.time(d1)))).getTime(), d1.getTime());
  assert.equal(r.time(r.parse(der.encode(der.time(d2)))).getTime(), d2.getTime());
});

test('strings: BMPString and UTF8String decode', () => {
  assert.equal(r.string(r.parse(der.encode(der.utf8('héllo')))), 'héllo');
  const bmp = Buffer.concat([Buffer.from([0x1e, 0x04]), Buffer.from([0x00, 0x61, 0x04, 0x10])]);
  assert.equal(r.string(r.parse(bmp)), 'aА');
});
