/**
 * CMS SignedData (RFC 5652 §5): parse (DER or BER, as iOS, jscep and `openssl cms -stream`
 * send it), find the signer certificate, verify a SignerInfo over the received signed
 * attributes, and build a SignedData with one RSA signer.
 */
import { verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { digestOf } from '../crypto/hash.js';
import * as r from '../asn1/reader.js';
import * as der from '../asn1/writer.js';
import { OID, oidName } from '../asn1/oids.js';
import { parseCertificateTlv, type Certificate } from '../pkix/certificate.js';
import {
  digestFromOid,
  digestOid,
  UnsupportedAlgorithmError,
  type DigestName,
} from '../crypto/algorithms.js';
import { keyHandle, type PrivateKeyHandle, type PrivateKeyLike } from '../crypto/private-key.js';
import { ecCurveOf } from '../crypto/key-agreement.js';
import { CmsError, decoding } from './errors.js';
import { unwrapContentInfo, wrapContentInfo } from './content-info.js';
import { issuerAndSerial, parseSignerId, signerIdMatches, type SignerId } from './signer-id.js';

export type { SignerId } from './signer-id.js';

/** Bounds on what one SignedData may carry. */
export const SIGNED_DATA_LIMITS = {
  maxCertificates: 32,
  maxCrls: 32,
  maxSigners: 8,
  maxAttributes: 64,
  maxAttributeValues: 16,
  maxDigestAlgorithms: 16,
} as const;

export interface Attribute {
  oid: string;
  values: r.Tlv[];
}

export interface SignerInfo {
  version: number;
  sid: SignerId;
  /** Digest AlgorithmIdentifier OID. */
  digestAlgorithm: string;
  /** The signed attributes exactly as received, starting with the [0] tag 0xA0. */
  signedAttrsRaw: Buffer | undefined;
  signedAttrs: Attribute[];
  signatureAlgorithm: string;
  signature: Buffer;
}

export interface SignedData {
  version: number;
  /** Digest AlgorithmIdentifier OIDs. */
  digestAlgorithms: string[];
  eContentType: string;
  /** eContent octets (constructed BER strings concatenated); undefined when absent. */
  eContent: Buffer | undefined;
  /** X.509 certificates; other CertificateChoices are skipped. */
  certificates: Certificate[];
  /** CRLs (CertificateList DER); other RevocationInfoChoices are skipped. */
  crls: Buffer[];
  signerInfos: SignerInfo[];
}

function tooMany(what: string, max: number): never {
  throw new CmsError('malformed', `SignedData has more than ${max} ${what}`);
}

function parseAlgorithmOid(t: r.Tlv, what: string): string {
  r.expectTag(t, 0x30, what);
  return r.oid(new r.Cursor(t).expect(r.TAG.OID, `${what} algorithm`));
}

function parseAttributes(t: r.Tlv): Attribute[] {
  const out: Attribute[] = [];
  for (const a of r.children(t)) {
    if (out.length >= SIGNED_DATA_LIMITS.maxAttributes)
      tooMany('signed attributes', SIGNED_DATA_LIMITS.maxAttributes);
    r.expectTag(a, 0x30, 'Attribute');
    const c = new r.Cursor(a);
    const oid = r.oid(c.expect(r.TAG.OID, 'attrType'));
    const valuesT = c.expect(0x31, 'attrValues');
    c.end('Attribute');
    const values = r.children(valuesT);
    if (values.length > SIGNED_DATA_LIMITS.maxAttributeValues)
      tooMany('attribute values', SIGNED_DATA_LIMITS.maxAttributeValues);
    out.push({ oid, values });
  }
  return out;
}

function parseSignerInfo(t: r.Tlv): SignerInfo {
  r.expectTag(t, 0x30, 'SignerInfo');
  const c = new r.Cursor(t);
  const version = r.int(c.expect(r.TAG.INTEGER, 'version'));
  const sid = parseSignerId(c.next('sid'));
  const digestAlgorithm = parseAlgorithmOid(c.next('digestAlgorithm'), 'digestAlgorithm');
  const sa = c.optional(0xa0);
  const signatureAlgorithm = parseAlgorithmOid(c.next('signatureAlgorithm'), 'signatureAlgorithm');
  const sigT = c.next('signature');
  if (sigT.tag !== r.TAG.OCTET_STRING && sigT.tag !== 0x24) {
    throw new r.Asn1Error('unexpected-tag', 'signature: expected an OCTET STRING');
  }
  const signature = r.octets(sigT);
  c.optional(0xa1); // unsignedAttrs
  c.end('SignerInfo');
  return {
    version,
    sid,
    digestAlgorithm,
    signedAttrsRaw: sa ? r.raw(sa) : undefined,
    signedAttrs: sa ? parseAttributes(sa) : [],
    signatureAlgorithm,
    signature,
  };
}

/** Parses the SignedData element itself (the content of its ContentInfo). */
export function parseSignedDataContent(t: r.Tlv): SignedData {
  r.expectTag(t, 0x30, 'SignedData');
  const c = new r.Cursor(t);
  const version = r.int(c.expect(r.TAG.INTEGER, 'version'));
  const digestAlgorithms: string[] = [];
  for (const a of r.children(c.expect(0x31, 'digestAlgorithms'))) {
    if (digestAlgorithms.length >= SIGNED_DATA_LIMITS.maxDigestAlgorithms) {
      tooMany('digest algorithms', SIGNED_DATA_LIMITS.maxDigestAlgorithms);
    }
    digestAlgorithms.push(parseAlgorithmOid(a, 'digestAlgorithm'));
  }
  const eci = new r.Cursor(c.expect(0x30, 'encapContentInfo'));
  const eContentType = r.oid(eci.expect(r.TAG.OID, 'eContentType'));
  let eContent: Buffer | undefined;
  const ecWrap = eci.optional(0xa0);
  if (ecWrap) {
    const w = new r.Cursor(ecWrap);
    const os = w.next('eContent');
    w.end('eContent');
    if (os.tag !== r.TAG.OCTET_STRING && os.tag !== 0x24) {
      throw new r.Asn1Error('unexpected-tag', 'eContent: expected an OCTET STRING');
    }
    eContent = r.octets(os);
  }
  eci.end('EncapsulatedContentInfo');

  const certificates: Certificate[] = [];
  const certsT = c.optional(0xa0);
  if (certsT) {
    for (const ct of r.children(certsT)) {
      if (ct.tag !== 0x30) continue; // extended, attribute or other certificate formats
      if (certificates.length >= SIGNED_DATA_LIMITS.maxCertificates) {
        tooMany('certificates', SIGNED_DATA_LIMITS.maxCertificates);
      }
      certificates.push(parseCertificateTlv(ct));
    }
  }
  const crls: Buffer[] = [];
  const crlsT = c.optional(0xa1);
  if (crlsT) {
    for (const ct of r.children(crlsT)) {
      if (ct.tag !== 0x30) continue; // OtherRevocationInfoFormat
      if (crls.length >= SIGNED_DATA_LIMITS.maxCrls) tooMany('CRLs', SIGNED_DATA_LIMITS.maxCrls);
      crls.push(r.raw(ct));
    }
  }
  const signerInfos: SignerInfo[] = [];
  for (const s of r.children(c.expect(0x31, 'signerInfos'))) {
    if (signerInfos.length >= SIGNED_DATA_LIMITS.maxSigners)
      tooMany('signers', SIGNED_DATA_LIMITS.maxSigners);
    signerInfos.push(parseSignerInfo(s));
  }
  c.end('SignedData');
  return { version, digestAlgorithms, eContentType, eContent, certificates, crls, signerInfos };
}

/**
 * Parses a ContentInfo(signedData), DER or BER (indefinite lengths, constructed OCTET STRING
 * eContent). Throws CmsError('malformed') for anything undecodable or over the limits.
 */
export function parseSignedData(contentInfo: Buffer): SignedData {
  return decoding('SignedData', () =>
    parseSignedDataContent(unwrapContentInfo(contentInfo, OID.signedData, 'SignedData')),
  );
}

/** The signer's certificate among `sd.certificates`, by issuer+serial or key identifier. */
export function findSignerCertificate(sd: SignedData, si: SignerInfo): Certificate | undefined {
  return sd.certificates.find((c) => signerIdMatches(si.sid, c));
}

/** The values of a signed attribute, or undefined when absent (first instance). */
export function getAttribute(si: SignerInfo, oid: string): r.Tlv[] | undefined {
  return si.signedAttrs.find((a) => a.oid === oid)?.values;
}

/** SignerInfo signature algorithms: the digest and the key type they need. */
const SIG_ALG_DIGEST: ReadonlyMap<string, { digest: DigestName; key: 'rsa' | 'ec' }> = new Map([
  [OID.sha1WithRSAEncryption, { digest: 'sha1', key: 'rsa' }],
  [OID.sha224WithRSAEncryption, { digest: 'sha224', key: 'rsa' }],
  [OID.sha256WithRSAEncryption, { digest: 'sha256', key: 'rsa' }],
  [OID.sha384WithRSAEncryption, { digest: 'sha384', key: 'rsa' }],
  [OID.sha512WithRSAEncryption, { digest: 'sha512', key: 'rsa' }],
  [OID.ecdsaWithSHA256, { digest: 'sha256', key: 'ec' }],
  [OID.ecdsaWithSHA384, { digest: 'sha384', key: 'ec' }],
  [OID.ecdsaWithSHA512, { digest: 'sha512', key: 'ec' }],
] as const);

const ECDSA_BY_DIGEST: Readonly<Partial<Record<DigestName, string>>> = {
  sha256: OID.ecdsaWithSHA256,
  sha384: OID.ecdsaWithSHA384,
  sha512: OID.ecdsaWithSHA512,
};

function badCheck(msg: string): never {
  throw new CmsError('badMessageCheck', msg);
}

function singleValue(si: SignerInfo, oid: string, name: string): r.Tlv {
  const found = si.signedAttrs.filter((a) => a.oid === oid);
  if (found.length !== 1) badCheck(`the ${name} signed attribute must be present exactly once`);
  const vals = found[0]!.values;
  if (vals.length !== 1) badCheck(`the ${name} signed attribute must have exactly one value`);
  return vals[0]!;
}

/**
 * Verifies one SignerInfo against `cert`: signed attributes present, content-type attribute
 * equal to eContentType, messageDigest equal to the digest of eContent (of the empty string
 * when absent), and the signature over the received signed attributes (with the 0xA0 tag read
 * as SET OF): RSA PKCS#1 v1.5 (signatureAlgorithm rsaEncryption or shaXWithRSAEncryption) or
 * ECDSA on P-256/P-384 (ecdsa-with-SHA256/384/512, or id-ecPublicKey with the digest
 * algorithm). Returns the digest used. Throws CmsError badAlg (MD5, SHA-1 or SHA-224 with
 * ECDSA, unknown algorithms, other key types or curves) or badMessageCheck.
 */
export function verifySignerInfo(sd: SignedData, si: SignerInfo, cert: Certificate): DigestName {
  let digest: DigestName;
  try {
    digest = digestFromOid(si.digestAlgorithm);
  } catch (e) {
    throw new CmsError('badAlg', (e as UnsupportedAlgorithmError).message);
  }
  let sigDigest: DigestName;
  let sigKey: 'rsa' | 'ec';
  if (si.signatureAlgorithm === OID.rsaEncryption || si.signatureAlgorithm === OID.ecPublicKey) {
    sigDigest = digest;
    sigKey = si.signatureAlgorithm === OID.rsaEncryption ? 'rsa' : 'ec';
  } else {
    const d = SIG_ALG_DIGEST.get(si.signatureAlgorithm);
    if (!d) {
      const name = oidName(si.signatureAlgorithm);
      throw new CmsError(
        'badAlg',
        `unsupported signature algorithm ${name === si.signatureAlgorithm ? name : `${name} (${si.signatureAlgorithm})`}`,
      );
    }
    sigDigest = d.digest;
    sigKey = d.key;
  }
  if (sigKey === 'ec' && !ECDSA_BY_DIGEST[sigDigest]) {
    throw new CmsError('badAlg', `ECDSA with ${sigDigest} is not accepted (SHA-256, SHA-384 or SHA-512)`);
  }
  if (!si.signedAttrsRaw) badCheck('the signer has no signed attributes');

  const ctT = singleValue(si, OID.contentType, 'content-type');
  let ct: string;
  try {
    ct = r.oid(ctT);
  } catch {
    badCheck('the content-type signed attribute is not an OBJECT IDENTIFIER');
  }
  if (ct !== sd.eContentType) badCheck('the content-type signed attribute does not match the content');

  const mdT = singleValue(si, OID.messageDigest, 'message-digest');
  if (mdT.tag !== r.TAG.OCTET_STRING) badCheck('the message-digest signed attribute is not an OCTET STRING');
  const expected = digestOf(digest, sd.eContent ?? Buffer.alloc(0));
  if (!r.value(mdT).equals(expected)) badCheck('the message digest does not match the content');

  let key: KeyObject;
  try {
    key = cert.publicKey();
  } catch {
    throw new CmsError('badMessageCheck', "the signer certificate's public key is unusable");
  }
  if (key.asymmetricKeyType === 'ec') {
    try {
      ecCurveOf(key);
    } catch (e) {
      throw new CmsError('badAlg', `signer key: ${(e as Error).message}`);
    }
  } else if (key.asymmetricKeyType !== 'rsa') {
    throw new CmsError(
      'badAlg',
      `signer key type ${key.asymmetricKeyType ?? 'unknown'} is not supported (RSA, or EC on P-256/P-384)`,
    );
  }
  if (key.asymmetricKeyType !== sigKey) {
    throw new CmsError('badAlg', `a ${key.asymmetricKeyType} signer key cannot make a ${sigKey} signature`);
  }
  const input = Buffer.from(si.signedAttrsRaw);
  input[0] = 0x31;
  let ok = false;
  try {
    ok = cryptoVerify(sigDigest, input, sigKey === 'ec' ? { key, dsaEncoding: 'der' } : key, si.signature);
  } catch {
    ok = false;
  }
  if (!ok) badCheck('the signature does not verify');
  return digest;
}

export interface SignOptions {
  signerCert: Certificate;
  /** A software KeyObject or a token key (src/crypto/private-key.ts). */
  signerKey: PrivateKeyLike;
  digest: DigestName;
  /** Extra signed attributes (values are DER, sorted into a DER SET OF). */
  attributes?: Array<{ oid: string; values: der.Der[] }>;
  /** eContent; absent for CertRep FAILURE/PENDING. */
  content?: Buffer;
  /** DER certificates to include after the signer certificate, in order. */
  certificates?: Buffer[];
  /** signingTime attribute value; default now, `false` omits it. */
  signingTime?: Date | false;
}

function attribute(oid: string, values: readonly der.Der[]): Buffer {
  return der.encode(der.seq(der.oid(oid), der.setOf(values)));
}

/**
 * Builds a ContentInfo(signedData) DER with one signer: version 1, eContentType id-data,
 * DER-sorted signed attributes (contentType, messageDigest, signingTime, then the given ones),
 * SignerInfo v1 with issuerAndSerialNumber and signatureAlgorithm rsaEncryption (RSA key) or
 * ecdsa-with-<digest> (EC key; SHA-256/384/512).
 */
export function buildSignedData(o: SignOptions): Buffer {
  let key: PrivateKeyHandle;
  try {
    key = keyHandle(o.signerKey);
  } catch {
    throw new TypeError('buildSignedData signs with an RSA or EC private key only');
  }
  const kt = key.type;
  if (kt !== 'rsa' && kt !== 'ec')
    throw new TypeError('buildSignedData signs with an RSA or EC private key only');
  const ecdsa = kt === 'ec' ? ECDSA_BY_DIGEST[o.digest] : undefined;
  if (kt === 'ec' && !ecdsa)
    throw new TypeError(`ECDSA signing uses SHA-256, SHA-384 or SHA-512, not ${o.digest}`);
  const content = o.content;
  const messageDigest = digestOf(o.digest, content ?? Buffer.alloc(0));
  const attrs: Buffer[] = [
    attribute(OID.contentType, [der.oid(OID.data)]),
    attribute(OID.messageDigest, [der.octetString(messageDigest)]),
  ];
  if (o.signingTime !== false)
    attrs.push(attribute(OID.signingTime, [der.time(o.signingTime ?? new Date())]));
  for (const a of o.attributes ?? []) attrs.push(attribute(a.oid, a.values));
  attrs.sort(Buffer.compare);
  const toSign = der.encode(der.constructed(0x31, attrs));
  const signature = key.sign(o.digest, toSign);

  const digestAlg = der.algorithm(digestOid(o.digest)); // parameters absent (RFC 5754 §2), as OpenSSL writes it
  const signerInfo = der.seq(
    der.int(1),
    issuerAndSerial(o.signerCert),
    digestAlg,
    der.implicitConstructed(0, attrs),
    ecdsa ? der.algorithm(ecdsa) : der.algorithm(OID.rsaEncryption, der.nul()),
    der.octetString(signature),
  );
  const certs: Buffer[] = [o.signerCert.der];
  for (const c of o.certificates ?? []) if (!c.equals(o.signerCert.der)) certs.push(c);
  const encap =
    content === undefined
      ? der.seq(der.oid(OID.data))
      : der.seq(der.oid(OID.data), der.explicit(0, der.octetString(content)));
  const sd = der.seq(
    der.int(1),
    der.set(digestAlg),
    encap,
    der.implicitConstructed(0, certs),
    der.set(signerInfo),
  );
  return wrapContentInfo(OID.signedData, sd);
}
