import { test } from 'node:test';
import { createHash, generateKeyPairSync } from 'node:crypto';
import assert from 'node:assert/strict';
import { AsnConvert } from '@peculiar/asn1-schema';
import { ContentInfo, SignedData as PSignedData, id_signedData } from '@peculiar/asn1-cms';
import * as der from '../../src/asn1/writer.js';
import * as r from '../../src/asn1/reader.js';
import { OID } from '../../src/asn1/oids.js';
import {
  buildDegenerate,
  buildSignedData,
  CmsError,
  findSignerCertificate,
  getAttribute,
  parseDegenerate,
  parseSignedData,
  verifySignerInfo,
  type SignedData,
} from '../../src/cms/index.js';
import type { DigestName } from '../../src/crypto/algorithms.js';
import { makeIssued, makeSelfSigned, pooledRsaKey } from '../helpers/pki.js';

const signer = makeSelfSigned({ subject: 'CN=signer,O=scepter test', key: pooledRsaKey(0) });
const other = makeSelfSigned({ subject: 'CN=other', key: pooledRsaKey(1) });

function cmsCode(code: string, msg?: RegExp) {
  return (e: unknown) => e instanceof CmsError && e.code === code && (!msg || msg.test(e.message));
}

function signOne(
  digest: DigestName,
  content?: Buffer,
  extra: Parameters<typeof buildSignedData>[0]['attributes'] = [],
) {
  return buildSignedData({
    signerCert: signer.cert,
    signerKey: signer.key,
    digest,
    content,
    attributes: extra,
    certificates: [other.certDer],
  });
}

function verifyFirst(sd: SignedData): DigestName {
  const si = sd.signerInfos[0]!;
  const cert = findSignerCertificate(sd, si);
  assert.ok(cert);
  return verifySignerInfo(sd, si, cert);
}

test('buildSignedData round-trips through our parser and verifies, for every digest', () => {
  for (const d of ['sha1', 'sha224', 'sha256', 'sha384', 'sha512'] as DigestName[]) {
    const content = Buffer.from(`payload for ${d}`);
    const sd = parseSignedData(
      signOne(d, content, [{ oid: OID.scepTransactionId, values: [der.printable('tx-1')] }]),
    );
    assert.equal(sd.version, 1);
    assert.equal(sd.eContentType, OID.data);
    assert.deepEqual(sd.eContent, content);
    assert.equal(sd.certificates.length, 2);
    assert.equal(sd.certificates[0]!.fingerprint, signer.cert.fingerprint, 'signer certificate first');
    assert.equal(sd.signerInfos.length, 1);
    assert.equal(verifyFirst(sd), d);
    const tx = getAttribute(sd.signerInfos[0]!, OID.scepTransactionId);
    assert.equal(tx && r.string(tx[0]!), 'tx-1');
    assert.ok(getAttribute(sd.signerInfos[0]!, OID.signingTime));
  }
});

test('absent content: messageDigest is over the empty string and eContent stays absent', () => {
  const sd = parseSignedData(signOne('sha256'));
  assert.equal(sd.eContent, undefined);
  assert.equal(verifyFirst(sd), 'sha256');
  const noTime = parseSignedData(
    buildSignedData({ signerCert: signer.cert, signerKey: signer.key, digest: 'sha256', signingTime: false }),
  );
  assert.equal(getAttribute(noTime.signerInfos[0]!, OID.signingTime), undefined);
  assert.equal(verifyFirst(noTime), 'sha256');
});

test('buildSignedData signs with RSA or EC keys (ECDSA, SHA-256+) and refuses other keys', () => {
  const ed = generateKeyPairSync('ed25519').privateKey;
  assert.throws(
    () => buildSignedData({ signerCert: signer.cert, signerKey: ed, digest: 'sha256' }),
    TypeError,
  );
  const ecKey = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
  const ecSigner = makeSelfSigned({ subject: 'CN=ec signer', key: ecKey });
  assert.throws(
    () => buildSignedData({ signerCert: ecSigner.cert, signerKey: ecKey, digest: 'sha1' }),
    TypeError,
  );
  for (const digest of ['sha256', 'sha384', 'sha512'] as const) {
    const sd = parseSignedData(
      buildSignedData({ signerCert: ecSigner.cert, signerKey: ecKey, digest, content: Buffer.from('ec') }),
    );
    const si = sd.signerInfos[0]!;
    assert.equal(
      si.signatureAlgorithm,
      { sha256: OID.ecdsaWithSHA256, sha384: OID.ecdsaWithSHA384, sha512: OID.ecdsaWithSHA512 }[digest],
    );
    assert.equal(verifySignerInfo(sd, si, ecSigner.cert), digest);
    // The signature is bound to the key: another EC certificate does not verify it.
    const other = makeSelfSigned({
      subject: 'CN=ec signer',
      key: generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey,
    });
    assert.throws(
      () => verifySignerInfo(sd, si, other.cert),
      (e: unknown) => e instanceof CmsError && e.code === 'badMessageCheck',
    );
  }
  // A P-521 signer is refused with badAlg (curve policy).
  const p521 = generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey;
  const s521 = makeSelfSigned({ subject: 'CN=p521', key: p521 });
  const sd = parseSignedData(buildSignedData({ signerCert: s521.cert, signerKey: p521, digest: 'sha512' }));
  assert.throws(
    () => verifySignerInfo(sd, sd.signerInfos[0]!, s521.cert),
    (e: unknown) => e instanceof CmsError && e.code === 'badAlg' && /P-256 or P-384/.test(e.message),
  );
});

test('signed attributes are DER: SET OF sorted by encoding (values too)', () => {
  const sd = parseSignedData(
    signOne('sha256', Buffer.from('x'), [
      { oid: OID.scepSenderNonce, values: [der.octetString(Buffer.alloc(16, 7))] },
      { oid: OID.scepMessageType, values: [der.printable('19')] },
      { oid: '1.2.3.4', values: [der.printable('b'), der.printable('a')] },
    ]),
  );
  const raw = sd.signerInfos[0]!.signedAttrsRaw!;
  assert.equal(raw[0], 0xa0);
  const set = r.parse(raw);
  const encs = r.children(set).map((c) => r.raw(c));
  const sorted = [...encs].sort(Buffer.compare);
  assert.deepEqual(encs, sorted);
  const multi = getAttribute(sd.signerInfos[0]!, '1.2.3.4')!;
  assert.deepEqual(
    multi.map((v) => r.string(v)),
    ['a', 'b'],
  );
});

test('@peculiar/asn1-cms agrees with our SignedData fields', () => {
  const content = Buffer.from('oracle');
  const bytes = signOne('sha384', content);
  const ci = AsnConvert.parse(bytes, ContentInfo);
  assert.equal(ci.contentType, id_signedData);
  const psd = AsnConvert.parse(ci.content, PSignedData);
  const ours = parseSignedData(bytes);
  assert.equal(psd.version, ours.version);
  assert.deepEqual(
    Array.from(psd.digestAlgorithms, (a) => a.algorithm),
    ours.digestAlgorithms,
  );
  assert.equal(psd.encapContentInfo.eContentType, OID.data);
  assert.deepEqual(Buffer.from(psd.encapContentInfo.eContent!.single!.buffer), content);
  assert.equal(psd.certificates!.length, 2);
  const psi = psd.signerInfos[0]!;
  assert.equal(psi.version, 1);
  assert.equal(psi.digestAlgorithm.algorithm, OID.sha384);
  assert.equal(psi.signatureAlgorithm.algorithm, OID.rsaEncryption);
  assert.deepEqual(Buffer.from(psi.sid.issuerAndSerialNumber!.serialNumber), signer.cert.serial);
  assert.deepEqual(Buffer.from(psi.signature.buffer), ours.signerInfos[0]!.signature);
  assert.equal(psi.signedAttrs!.length, ours.signerInfos[0]!.signedAttrs.length);
});

/** Returns a copy of `bytes` with one byte of the element at `sub` (a view into `bytes`) changed. */
function flipIn(bytes: Buffer, sub: Buffer, at: number): Buffer {
  const off = sub.byteOffset - bytes.byteOffset + at;
  assert.ok(off >= 0 && off < bytes.length);
  const copy = Buffer.from(bytes);
  copy[off]! ^= 0x01;
  return copy;
}

test('tampering: signature, signed attribute or content → badMessageCheck', () => {
  const bytes = signOne('sha256', Buffer.from('do not touch'));
  const sd = parseSignedData(bytes);
  const si = sd.signerInfos[0]!;
  const tampered = {
    signature: flipIn(bytes, si.signature, 10),
    'signed attribute (signingTime digit)': flipIn(bytes, r.value(getAttribute(si, OID.signingTime)![0]!), 3),
    content: flipIn(bytes, sd.eContent!, 0),
  };
  for (const [name, b] of Object.entries(tampered)) {
    const t = parseSignedData(b);
    assert.throws(() => verifyFirst(t), cmsCode('badMessageCheck'), name);
  }
});

test('verification rejects wrong signer, wrong content-type attribute, missing signed attributes', () => {
  const sd = parseSignedData(signOne('sha256', Buffer.from('abc')));
  const si = sd.signerInfos[0]!;
  assert.throws(() => verifySignerInfo(sd, si, other.cert), cmsCode('badMessageCheck', /signature/));
  assert.throws(
    () => verifySignerInfo({ ...sd, eContentType: OID.envelopedData }, si, signer.cert),
    cmsCode('badMessageCheck', /content-type/),
  );
  assert.throws(
    () => verifySignerInfo(sd, { ...si, signedAttrsRaw: undefined, signedAttrs: [] }, signer.cert),
    cmsCode('badMessageCheck'),
  );
  const dup = {
    ...si,
    signedAttrs: [...si.signedAttrs, si.signedAttrs.find((a) => a.oid === OID.messageDigest)!],
  };
  assert.throws(() => verifySignerInfo(sd, dup, signer.cert), cmsCode('badMessageCheck', /exactly once/));
});

test('MD5 or unknown algorithms → badAlg; shaXWithRSAEncryption is accepted', () => {
  const sd = parseSignedData(signOne('sha256', Buffer.from('abc')));
  const si = sd.signerInfos[0]!;
  assert.throws(
    () => verifySignerInfo(sd, { ...si, digestAlgorithm: OID.md5 }, signer.cert),
    cmsCode('badAlg', /MD5/),
  );
  assert.throws(
    () => verifySignerInfo(sd, { ...si, signatureAlgorithm: OID.md5WithRSAEncryption }, signer.cert),
    cmsCode('badAlg'),
  );
  assert.throws(
    () => verifySignerInfo(sd, { ...si, signatureAlgorithm: OID.rsassaPss }, signer.cert),
    cmsCode('badAlg'),
  );
  assert.equal(
    verifySignerInfo(sd, { ...si, signatureAlgorithm: OID.sha256WithRSAEncryption }, signer.cert),
    'sha256',
  );
});

test('findSignerCertificate: by issuer+serial (leading zero tolerated) or SKI, never the first certificate', () => {
  const sd = parseSignedData(signOne('sha256', Buffer.from('abc')));
  const si = sd.signerInfos[0]!;
  // put the other certificate first: the lookup must still pick the signer
  const swapped = { ...sd, certificates: [sd.certificates[1]!, sd.certificates[0]!] };
  assert.equal(findSignerCertificate(swapped, si)?.fingerprint, signer.cert.fingerprint);
  const sid = si.sid as { issuerRaw: Buffer; serial: Buffer };
  const padded = {
    ...si,
    sid: { issuerRaw: sid.issuerRaw, serial: Buffer.concat([Buffer.from([0]), sid.serial]) },
  };
  assert.equal(findSignerCertificate(sd, padded)?.fingerprint, signer.cert.fingerprint);
  const bySki = { ...si, sid: { subjectKeyId: signer.cert.subjectKeyId! } };
  assert.equal(findSignerCertificate(swapped, bySki)?.fingerprint, signer.cert.fingerprint);
  assert.equal(findSignerCertificate(sd, { ...si, sid: { subjectKeyId: Buffer.alloc(20) } }), undefined);
  const wrongSerial = { ...si, sid: { issuerRaw: sid.issuerRaw, serial: Buffer.from([1]) } };
  assert.equal(findSignerCertificate(sd, wrongSerial), undefined);
  // a certificate without the SKI extension matches by the SHA-1 of its key
  const noSki = makeSelfSigned({ subject: 'CN=noski', key: pooledRsaKey(2), ski: false });
  const sd2 = parseSignedData(
    buildSignedData({ signerCert: noSki.cert, signerKey: noSki.key, digest: 'sha256' }),
  );
  const bits = r.bitString(r.children(r.parse(noSki.cert.spki))[1]!).bytes;
  const keyId = createHash('sha1').update(bits).digest();
  assert.equal(
    findSignerCertificate(sd2, { ...sd2.signerInfos[0]!, sid: { subjectKeyId: keyId } })?.fingerprint,
    noSki.cert.fingerprint,
  );
});

test('degenerate certs-only keeps the given order; CRLs-only works; @peculiar agrees', () => {
  const ca = makeSelfSigned({ subject: 'CN=ca', key: pooledRsaKey(1), ca: true });
  const leaf = makeIssued({ subject: 'CN=leaf', issuer: ca, key: pooledRsaKey(2) });
  // a deliberately unsorted order: a DER SET OF sort would swap them
  const given = [leaf, ca].sort((a, b) => Buffer.compare(b.certDer, a.certDer));
  const bytes = buildDegenerate({ certificates: given.map((c) => c.certDer) });
  const got = parseDegenerate(bytes);
  assert.deepEqual(
    got.certificates.map((c) => c.fingerprint),
    given.map((c) => c.cert.fingerprint),
  );
  assert.deepEqual(got.crls, []);
  const sd = parseSignedData(bytes);
  assert.equal(sd.version, 1);
  assert.deepEqual(sd.digestAlgorithms, []);
  assert.deepEqual(sd.signerInfos, []);
  assert.equal(sd.eContent, undefined);
  const psd = AsnConvert.parse(AsnConvert.parse(bytes, ContentInfo).content, PSignedData);
  assert.equal(psd.version, 1);
  assert.equal(psd.signerInfos.length, 0);
  assert.deepEqual(Buffer.from(AsnConvert.serialize(psd.certificates![0]!.certificate!)), given[0]!.certDer);

  const fakeCrl = der.encode(
    der.seq(
      der.seq(der.int(1)),
      der.seq(der.oid(OID.sha256WithRSAEncryption)),
      der.bitString(Buffer.alloc(4)),
    ),
  );
  const crlOnly = parseDegenerate(buildDegenerate({ crls: [fakeCrl] }));
  assert.deepEqual(crlOnly.certificates, []);
  assert.deepEqual(crlOnly.crls, [fakeCrl]);
});

test('hostile input: every truncation and garbage is CmsError malformed, never another exception', () => {
  const bytes = signOne('sha256', Buffer.from('abc'));
  for (let n = 0; n < bytes.length; n += 7) {
    assert.throws(() => parseSignedData(bytes.subarray(0, n)), cmsCode('malformed'), `truncated at ${n}`);
  }
  assert.throws(() => parseSignedData(Buffer.from('not der at all')), cmsCode('malformed'));
  // wrong content type
  const env = der.encode(der.seq(der.oid(OID.envelopedData), der.explicit(0, der.seq())));
  assert.throws(() => parseSignedData(env), cmsCode('malformed', /content type/));
});

test('limits: too many certificates or signers → malformed', () => {
  const certs = Array.from({ length: 33 }, () => other.certDer);
  assert.throws(
    () => parseDegenerate(buildDegenerate({ certificates: certs })),
    cmsCode('malformed', /certificates/),
  );
  assert.equal(
    parseDegenerate(buildDegenerate({ certificates: certs.slice(0, 32) })).certificates.length,
    32,
  );
  // the SignerInfo of a real message, repeated nine times
  const sdT = r.children(r.children(r.parse(signOne('sha256')))[1]!)[0]!;
  const signerInfo = r.children(r.children(sdT).at(-1)!)[0]!;
  const nine = der.set(...Array.from({ length: 9 }, () => r.raw(signerInfo)));
  const many = der.encode(
    der.seq(
      der.oid(OID.signedData),
      der.explicit(0, der.seq(der.int(1), der.set(), der.seq(der.oid(OID.data)), nine)),
    ),
  );
  assert.throws(() => parseSignedData(many), cmsCode('malformed', /signers/));
});
