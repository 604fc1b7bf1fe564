import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, X509Certificate } from 'node:crypto';
import { pooledRsaKey } from '../helpers/pki.js';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  BasicConstraints,
  ExtendedKeyUsage,
  Extension,
  KeyUsage,
  KeyUsageFlags,
  SubjectAlternativeName,
} from '@peculiar/asn1-x509';
import * as r from '../../src/asn1/reader.js';
import * as der from '../../src/asn1/writer.js';
import { OID } from '../../src/asn1/oids.js';
import {
  buildBasicConstraints,
  buildExtKeyUsage,
  buildKeyUsage,
  buildSubjectAltName,
  keyIdentifier,
  parseBasicConstraints,
  parseExtKeyUsage,
  parseKeyUsage,
  parseSanSpec,
  parseSubjectAltName,
} from '../../src/pkix/extensions.js';
import { parseCertificate, verifyCertificateSignature } from '../../src/pkix/certificate.js';
import { buildSelfSignedCertificate } from '../../src/pkix/self-signed.js';
import { nameToString } from '../../src/pkix/name.js';

function asExt(node: der.Der): Extension {
  return AsnConvert.parse(der.encode(node), Extension);
}

test('extensions: SAN spec parsing, build and parse agree with @peculiar', () => {
  const names = parseSanSpec(
    'dns:a.example, IP:10.0.0.1,ip:2001:db8::5,email:x@y.example,uri:urn:uuid:42,b.example',
  );
  assert.deepEqual(names, [
    { type: 'dns', value: 'a.example' },
    { type: 'ip', value: '10.0.0.1' },
    { type: 'ip', value: '2001:db8::5' },
    { type: 'email', value: 'x@y.example' },
    { type: 'uri', value: 'urn:uuid:42' },
    { type: 'dns', value: 'b.example' },
  ]);
  assert.throws(() => parseSanSpec('ip:300.1.1.1'));
  assert.throws(() => parseSanSpec('dns:'));
  const ext = asExt(buildSubjectAltName(names));
  assert.equal(ext.extnID, OID.subjectAltName);
  assert.equal(ext.critical, false);
  const value = Buffer.from(ext.extnValue.buffer);
  const oracle = AsnConvert.parse(value, SubjectAlternativeName);
  assert.equal(oracle[0]!.dNSName, 'a.example');
  assert.equal(oracle[1]!.iPAddress, '10.0.0.1');
  assert.equal(oracle[2]!.iPAddress, '2001:db8::5');
  assert.equal(oracle[3]!.rfc822Name, 'x@y.example');
  assert.equal(oracle[4]!.uniformResourceIdentifier, 'urn:uuid:42');
  assert.deepEqual(parseSubjectAltName(value), names);
  // Unknown kinds (otherName UPN) are kept verbatim and re-encode identically.
  const upn = der.encode(
    der.implicitConstructed(0, [der.oid('1.3.6.1.4.1.311.20.2.3'), der.explicit(0, der.utf8('u@corp'))]),
  );
  const withUpn = der.encode(der.seq(upn, der.implicitPrimitive(2, Buffer.from('h.example'))));
  const parsed = parseSubjectAltName(withUpn);
  assert.equal(parsed[0]!.type, 'other');
  const rebuilt = asExt(buildSubjectAltName(parsed));
  assert.ok(Buffer.from(rebuilt.extnValue.buffer).equals(withUpn));
  assert.equal(asExt(buildSubjectAltName(names, true)).critical, true);
});

test('extensions: keyUsage, extKeyUsage, basicConstraints', () => {
  const ku = asExt(buildKeyUsage(['digitalSignature', 'keyEncipherment', 'decipherOnly']));
  assert.equal(ku.critical, true);
  const kuVal = Buffer.from(ku.extnValue.buffer);
  const oracle = AsnConvert.parse(kuVal, KeyUsage);
  assert.equal(
    oracle.toNumber(),
    KeyUsageFlags.digitalSignature | KeyUsageFlags.keyEncipherment | KeyUsageFlags.decipherOnly,
  );
  assert.deepEqual(parseKeyUsage(kuVal), ['digitalSignature', 'keyEncipherment', 'decipherOnly']);
  assert.equal(der.encode(der.namedBits([0, 2])).toString('hex'), '030205a0');

  const eku = asExt(buildExtKeyUsage(['clientAuth', 'serverAuth', '1.2.3.4']));
  const ekuVal = Buffer.from(eku.extnValue.buffer);
  assert.deepEqual(
    [...AsnConvert.parse(ekuVal, ExtendedKeyUsage)],
    [OID.ekuClientAuth, OID.ekuServerAuth, '1.2.3.4'],
  );
  assert.deepEqual(parseExtKeyUsage(ekuVal), [OID.ekuClientAuth, OID.ekuServerAuth, '1.2.3.4']);
  assert.throws(() => buildExtKeyUsage(['nonsense']));

  const bcCa = Buffer.from(asExt(buildBasicConstraints(true, 0)).extnValue.buffer);
  const o = AsnConvert.parse(bcCa, BasicConstraints);
  assert.equal(o.cA, true);
  assert.equal(o.pathLenConstraint, 0);
  assert.deepEqual(parseBasicConstraints(bcCa), { cA: true, pathLen: 0 });
  const bcEe = Buffer.from(asExt(buildBasicConstraints(false)).extnValue.buffer);
  assert.equal(bcEe.toString('hex'), '3000');
  assert.deepEqual(parseBasicConstraints(bcEe), { cA: false });
});

test('self-signed signer certificate: KU digitalSignature+keyEncipherment, SKI method 1, valid signature', () => {
  const privateKey = pooledRsaKey(0);
  const publicKey = createPublicKey(privateKey);
  const derCert = buildSelfSignedCertificate({ subject: 'CN=device 7', key: privateKey, publicKey, days: 2 });
  const c = parseCertificate(derCert);
  assert.ok(verifyCertificateSignature(c, publicKey));
  assert.equal(nameToString(c.subjectRaw), 'CN=device 7');
  assert.ok(c.issuerRaw.equals(c.subjectRaw));
  assert.ok(c.serial[0]! < 0x80, 'positive serial');
  assert.deepEqual(parseKeyUsage(c.extension(OID.keyUsage)!.value), ['digitalSignature', 'keyEncipherment']);
  const spkiBits = r.bitString(
    new r.Cursor(r.parse(c.spki)).expect(0x30) && r.children(r.parse(c.spki))[1]!,
  ).bytes;
  assert.ok(c.subjectKeyId!.equals(createHash('sha1').update(spkiBits).digest()));
  assert.ok(keyIdentifier(c.spki).equals(c.subjectKeyId!));
  const days = (c.notAfter.getTime() - c.notBefore.getTime()) / 86_400_000;
  assert.equal(days, 2);
  assert.ok(c.notBefore.getTime() <= Date.now());
  // node's (OpenSSL's) X509 parser agrees.
  const x = new X509Certificate(derCert);
  assert.ok(x.verify(publicKey));
  assert.equal(x.subject, 'CN=device 7');
  const a = parseCertificate(buildSelfSignedCertificate({ subject: 'CN=a', key: privateKey, publicKey }));
  assert.notEqual(a.serialHex, c.serialHex);
});
