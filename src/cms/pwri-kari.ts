/**
 * The recipients of an EnvelopedData for keys that cannot receive RSA key transport:
 * PasswordRecipientInfo (RFC 5652 §6.2.4, RFC 3211: PBKDF2 + the PWRI key wrap) and
 * KeyAgreeRecipientInfo (RFC 5652 §6.2.2, RFC 5753: ephemeral-static ECDH, X9.63 KDF, AES
 * key wrap). DER parse and build, and unwrapping the content-encryption key; the
 * EnvelopedData around them is src/cms/enveloped-data.ts.
 *
 * Everything an envelope asks of us is bounded before any work: PBKDF2 iterations, salt and
 * key lengths (PWRI_LIMITS), the number of recipient keys, the curve (P-256 and P-384 only).
 */
import type { KeyObject } from 'node:crypto';
import { randomBytes } from 'node:crypto';
import * as r from '../asn1/reader.js';
import * as der from '../asn1/writer.js';
import { OID, oidName } from '../asn1/oids.js';
import type { Certificate } from '../pkix/certificate.js';
import { cipherFromOid, cipherInfo, type CipherName, type DigestName } from '../crypto/algorithms.js';
import {
  aesKeyUnwrap,
  aesKeyWrap,
  ecCurveOf,
  ecdhSecret,
  ecPoint,
  ecPublicKeyFromPoint,
  ephemeralKeyFor,
  KEY_WRAP_LENGTH,
  x963Kdf,
  type KeyWrapName,
} from '../crypto/key-agreement.js';
import {
  pbkdf2Kek,
  PWRI_ITERATIONS,
  PWRI_LIMITS,
  pwriUnwrap,
  pwriWrap,
  type PbkdfPrf,
} from '../crypto/pwri.js';
import { CmsError } from './errors.js';
import { issuerAndSerial, parseSignerId, signerIdMatches, type SignerId } from './signer-id.js';

/** Most RecipientEncryptedKeys in one KeyAgreeRecipientInfo. */
export const MAX_AGREE_KEYS = 16;

export interface PasswordRecipient {
  /** keyDerivationAlgorithm OID (PBKDF2 is the only one used), undefined when absent. */
  kdf: string | undefined;
  salt: Buffer;
  /** PBKDF2 iteration count as sent (checked against PWRI_LIMITS when used). */
  iterations: number;
  /** PBKDF2 keyLength, when given. */
  keyLength: number | undefined;
  /** PBKDF2 PRF OID (default hmacWithSHA1). */
  prf: string;
  /** keyEncryptionAlgorithm OID (id-alg-PWRI-KEK). */
  keyEncryptionAlgorithm: string;
  /** The KEK cipher (parameter of id-alg-PWRI-KEK) and its IV. */
  kekCipher: string | undefined;
  kekIv: Buffer | undefined;
  encryptedKey: Buffer;
}

export interface KeyAgreeRecipient {
  /** The originator's (ephemeral) public key point; undefined for other originator choices. */
  originatorPoint: Buffer | undefined;
  ukm: Buffer | undefined;
  /** keyEncryptionAlgorithm OID (dhSinglePass-stdDH-shaXkdf-scheme). */
  keyEncryptionAlgorithm: string;
  /** The key-wrap algorithm OID (its parameter). */
  keyWrap: string | undefined;
  keys: Array<{ rid: SignerId; encryptedKey: Buffer }>;
}

function octetsOf(t: r.Tlv, what: string): Buffer {
  if (t.tag !== r.TAG.OCTET_STRING && t.tag !== 0x24) {
    throw new r.Asn1Error('unexpected-tag', `${what}: expected an OCTET STRING`);
  }
  return r.octets(t);
}

/** An INTEGER as a number, saturated at MAX_SAFE_INTEGER (a huge count is refused later). */
function count(t: r.Tlv): number {
  const v = r.bigint(t);
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

/** Parses a [3] PasswordRecipientInfo (implicitly tagged SEQUENCE). */
export function parsePwri(t: r.Tlv): PasswordRecipient {
  const c = new r.Cursor(t);
  r.int(c.expect(r.TAG.INTEGER, 'version'));
  const kdT = c.optional(0xa0);
  const out: PasswordRecipient = {
    kdf: undefined,
    salt: Buffer.alloc(0),
    iterations: 0,
    keyLength: undefined,
    prf: OID.hmacWithSHA1,
    keyEncryptionAlgorithm: '',
    kekCipher: undefined,
    kekIv: undefined,
    encryptedKey: Buffer.alloc(0),
  };
  if (kdT) {
    const kd = new r.Cursor(kdT);
    out.kdf = r.oid(kd.expect(r.TAG.OID, 'keyDerivationAlgorithm'));
    const params = kd.peek() ? kd.next() : undefined;
    kd.end('keyDerivationAlgorithm');
    if (out.kdf === OID.pbkdf2 && params) {
      const p = new r.Cursor(r.expectTag(params, 0x30, 'PBKDF2-params'));
      out.salt = r.value(p.expect(r.TAG.OCTET_STRING, 'salt'));
      out.iterations = count(p.expect(r.TAG.INTEGER, 'iterationCount'));
      const kl = p.optional(r.TAG.INTEGER);
      if (kl) out.keyLength = count(kl);
      const prf = p.optional(0x30);
      if (prf) out.prf = r.algorithmIdentifier(prf, 'prf').oid;
      p.end('PBKDF2-params');
    }
  }
  const kea = r.algorithmIdentifier(c.next('keyEncryptionAlgorithm'), 'keyEncryptionAlgorithm');
  out.keyEncryptionAlgorithm = kea.oid;
  if (kea.params && kea.params.tag === 0x30) {
    const inner = r.algorithmIdentifier(kea.params, 'PWRI KEK algorithm');
    out.kekCipher = inner.oid;
    if (inner.params && inner.params.tag === r.TAG.OCTET_STRING) out.kekIv = r.value(inner.params);
  }
  out.encryptedKey = octetsOf(c.next('encryptedKey'), 'encryptedKey');
  c.end('PasswordRecipientInfo');
  return out;
}

/** Parses a [1] KeyAgreeRecipientInfo (implicitly tagged SEQUENCE). */
export function parseKari(t: r.Tlv): KeyAgreeRecipient {
  const c = new r.Cursor(t);
  r.int(c.expect(r.TAG.INTEGER, 'version'));
  const origWrap = new r.Cursor(c.expect(0xa0, 'originator'));
  const orig = origWrap.next('originator');
  origWrap.end('originator');
  let originatorPoint: Buffer | undefined;
  if (orig.tag === 0xa1) {
    // originatorKey [1] OriginatorPublicKey ::= SEQUENCE { algorithm, publicKey BIT STRING }
    const ok = new r.Cursor(orig);
    r.algorithmIdentifier(ok.expect(0x30, 'originatorKey algorithm'), 'originatorKey algorithm');
    const bits = r.bitString(ok.expect(r.TAG.BIT_STRING, 'originatorKey publicKey'));
    ok.end('OriginatorPublicKey');
    if (bits.unusedBits === 0) originatorPoint = Buffer.from(bits.bytes);
  }
  const ukmT = c.optional(0xa1);
  const ukm = ukmT ? octetsOf(new r.Cursor(ukmT).next('ukm'), 'ukm') : undefined;
  const kea = r.algorithmIdentifier(c.next('keyEncryptionAlgorithm'), 'keyEncryptionAlgorithm');
  const keyWrap =
    kea.params && kea.params.tag === 0x30
      ? r.algorithmIdentifier(kea.params, 'key wrap algorithm').oid
      : undefined;
  const keys: KeyAgreeRecipient['keys'] = [];
  for (const rek of r.children(c.expect(0x30, 'recipientEncryptedKeys'))) {
    if (keys.length >= MAX_AGREE_KEYS) {
      throw new CmsError('malformed', `a KeyAgreeRecipientInfo has more than ${MAX_AGREE_KEYS} keys`);
    }
    const k = new r.Cursor(r.expectTag(rek, 0x30, 'RecipientEncryptedKey'));
    const ridT = k.next('rid');
    let rid: SignerId;
    if (ridT.tag === 0xa0) {
      // rKeyId [0] IMPLICIT RecipientKeyIdentifier ::= SEQUENCE { subjectKeyIdentifier, … }
      const rk = new r.Cursor(ridT);
      rid = { subjectKeyId: r.value(rk.expect(r.TAG.OCTET_STRING, 'subjectKeyIdentifier')) };
    } else {
      rid = parseSignerId(ridT);
    }
    const encryptedKey = octetsOf(k.next('encryptedKey'), 'encryptedKey');
    k.end('RecipientEncryptedKey');
    keys.push({ rid, encryptedKey });
  }
  c.end('KeyAgreeRecipientInfo');
  return { originatorPoint, ukm, keyEncryptionAlgorithm: kea.oid, keyWrap, keys };
}

const PRF_BY_OID: ReadonlyMap<string, PbkdfPrf> = new Map<string, PbkdfPrf>([
  [OID.hmacWithSHA1, 'sha1'],
  [OID.hmacWithSHA256, 'sha256'],
  [OID.hmacWithSHA384, 'sha384'],
  [OID.hmacWithSHA512, 'sha512'],
]);

const PRF_OID: Readonly<Record<PbkdfPrf, string>> = {
  sha1: OID.hmacWithSHA1,
  sha256: OID.hmacWithSHA256,
  sha384: OID.hmacWithSHA384,
  sha512: OID.hmacWithSHA512,
};

/** dhSinglePass-stdDH-shaXkdf-scheme OIDs (RFC 5753 §7.1.4, SEC 1) → the KDF hash. */
const KDF_BY_OID: ReadonlyMap<string, DigestName> = new Map<string, DigestName>([
  ['1.3.133.16.840.63.0.2', 'sha1'],
  ['1.3.132.1.11.0', 'sha224'],
  [OID.dhSinglePassStdDhSha256Kdf, 'sha256'],
  [OID.dhSinglePassStdDhSha384Kdf, 'sha384'],
  [OID.dhSinglePassStdDhSha512Kdf, 'sha512'],
]);

const WRAP_BY_OID: ReadonlyMap<string, KeyWrapName> = new Map<string, KeyWrapName>([
  [OID.aes128Wrap, 'aes128-wrap'],
  [OID.aes192Wrap, 'aes192-wrap'],
  [OID.aes256Wrap, 'aes256-wrap'],
]);

const WRAP_OID: Readonly<Record<KeyWrapName, string>> = {
  'aes128-wrap': OID.aes128Wrap,
  'aes192-wrap': OID.aes192Wrap,
  'aes256-wrap': OID.aes256Wrap,
};

function describe(oid: string | undefined): string {
  if (oid === undefined) return 'none';
  const n = oidName(oid);
  return n === oid ? oid : `${n} (${oid})`;
}

function badAlg(msg: string): never {
  throw new CmsError('badAlg', msg);
}

/** The PBKDF2 KEK and KEK cipher of a password recipient, checked (public decisions). */
function pwriKek(ri: PasswordRecipient, password: Buffer): { kek: Buffer; cipher: CipherName; iv: Buffer } {
  if (ri.keyEncryptionAlgorithm !== OID.pwriKek) {
    badAlg(`unsupported password key-encryption algorithm ${describe(ri.keyEncryptionAlgorithm)}`);
  }
  if (ri.kdf !== OID.pbkdf2) badAlg(`unsupported key derivation algorithm ${describe(ri.kdf)} (PBKDF2 only)`);
  const prf = PRF_BY_OID.get(ri.prf) ?? badAlg(`unsupported PBKDF2 PRF ${describe(ri.prf)}`);
  let info;
  try {
    info = cipherFromOid(ri.kekCipher ?? '');
  } catch {
    badAlg(`unsupported PWRI key-encryption cipher ${describe(ri.kekCipher)}`);
  }
  if (info.name === 'des') badAlg('single DES is not accepted for key wrapping');
  if (!ri.kekIv || ri.kekIv.length !== info.ivLength) {
    throw new CmsError('malformed', 'the PWRI key-encryption IV is missing or has the wrong length');
  }
  if (ri.keyLength !== undefined && ri.keyLength !== info.keyLength) {
    throw new CmsError('malformed', 'the PBKDF2 key length does not match the key-encryption cipher');
  }
  if (ri.iterations > PWRI_LIMITS.maxIterations || ri.iterations < PWRI_LIMITS.minIterations) {
    badAlg(`a PBKDF2 iteration count of ${ri.iterations} is outside 1..${PWRI_LIMITS.maxIterations}`);
  }
  if (ri.salt.length === 0 || ri.salt.length > PWRI_LIMITS.maxSaltBytes) {
    throw new CmsError('malformed', `the PBKDF2 salt must be 1 to ${PWRI_LIMITS.maxSaltBytes} bytes`);
  }
  if (ri.encryptedKey.length > PWRI_LIMITS.maxWrappedKeyBytes) {
    throw new CmsError('malformed', 'the wrapped key is too long');
  }
  const kek = pbkdf2Kek(password, ri.salt, ri.iterations, info.keyLength, prf);
  return { kek, cipher: info.name, iv: ri.kekIv };
}

/** Unwraps the `keyLength`-byte content key of a password recipient; `ok` false for a wrong password. */
export function unwrapPwri(
  ri: PasswordRecipient,
  password: Buffer,
  keyLength: number,
): { key: Buffer; ok: boolean } {
  const { kek, cipher, iv } = pwriKek(ri, password);
  return pwriUnwrap(cipher, kek, iv, ri.encryptedKey, keyLength);
}

/** ECC-CMS-SharedInfo DER (RFC 5753 §7.2). */
function sharedInfo(wrap: KeyWrapName, ukm: Buffer | undefined): Buffer {
  const bits = Buffer.alloc(4);
  bits.writeUInt32BE(KEY_WRAP_LENGTH[wrap] * 8);
  return der.encode(
    der.seq(
      der.algorithm(WRAP_OID[wrap]),
      ...(ukm ? [der.explicit(0, der.octetString(ukm))] : []),
      der.explicit(2, der.octetString(bits)),
    ),
  );
}

/** True when a key-agreement recipient names `cert`. */
export function kariNames(ri: KeyAgreeRecipient, cert: Certificate): boolean {
  return ri.keys.some((k) => signerIdMatches(k.rid, cert));
}

/**
 * Unwraps the `keyLength`-byte content key of a key-agreement recipient addressed to `cert`
 * (whose private key is `key`). Public problems (algorithms, curve, point) throw CmsError;
 * a failed unwrap gives `ok` false.
 */
export function unwrapKari(
  ri: KeyAgreeRecipient,
  cert: Certificate,
  key: KeyObject,
  keyLength: number,
): { key: Buffer; ok: boolean } {
  const mine = ri.keys.find((k) => signerIdMatches(k.rid, cert));
  if (!mine) throw new CmsError('badRequest', 'the message is not encrypted to our certificate');
  const kdf =
    KDF_BY_OID.get(ri.keyEncryptionAlgorithm) ??
    badAlg(`unsupported key agreement algorithm ${describe(ri.keyEncryptionAlgorithm)}`);
  const wrap =
    WRAP_BY_OID.get(ri.keyWrap ?? '') ?? badAlg(`unsupported key wrap algorithm ${describe(ri.keyWrap)}`);
  let curve;
  try {
    curve = ecCurveOf(key);
  } catch (e) {
    badAlg((e as Error).message);
  }
  if (!ri.originatorPoint)
    throw new CmsError('badAlg', 'only an originator public key is supported in key agreement');
  let peer: KeyObject;
  try {
    peer = ecPublicKeyFromPoint(curve, ri.originatorPoint);
  } catch {
    throw new CmsError('malformed', 'the originator public key is not a point on our curve');
  }
  let z: Buffer;
  try {
    z = ecdhSecret(key, peer);
  } catch {
    throw new CmsError('malformed', 'the originator public key is not a point on our curve');
  }
  const kek = x963Kdf(kdf, z, sharedInfo(wrap, ri.ukm), KEY_WRAP_LENGTH[wrap]);
  return aesKeyUnwrap(wrap, kek, mine.encryptedKey, keyLength);
}

/** A [3] PasswordRecipientInfo wrapping `cek` under a PBKDF2 key of `password`. */
export function pwriRecipientInfo(
  cek: Buffer,
  password: Buffer,
  o: { cipher?: CipherName; iterations?: number; prf?: PbkdfPrf } = {},
): der.DerNode {
  const cipher = o.cipher ?? 'aes256';
  const info = cipherInfo(cipher);
  const iterations = o.iterations ?? PWRI_ITERATIONS;
  const prf = o.prf ?? 'sha256';
  const salt = randomBytes(16);
  const iv = randomBytes(info.ivLength);
  const kek = pbkdf2Kek(password, salt, iterations, info.keyLength, prf);
  const wrapped = pwriWrap(cipher, kek, iv, cek);
  return der.implicitConstructed(3, [
    der.int(0),
    der.implicitConstructed(0, [
      der.oid(OID.pbkdf2),
      der.seq(der.octetString(salt), der.int(iterations), der.algorithm(PRF_OID[prf], der.nul())),
    ]),
    der.algorithm(OID.pwriKek, der.algorithm(info.oid, der.octetString(iv))),
    der.octetString(wrapped),
  ]);
}

/** The AES key wrap for a content key of `length` bytes. */
function wrapFor(length: number): KeyWrapName {
  return length <= 16 ? 'aes128-wrap' : length <= 24 ? 'aes192-wrap' : 'aes256-wrap';
}

/**
 * A [1] KeyAgreeRecipientInfo to `recipient` (an EC certificate on P-256 or P-384):
 * ephemeral-static ECDH, X9.63 KDF with SHA-256, AES key wrap sized to the content key.
 */
export function kariRecipientInfo(cek: Buffer, recipient: Certificate): der.DerNode {
  const pub = recipient.publicKey();
  const eph = ephemeralKeyFor(pub);
  const wrap = wrapFor(cek.length);
  const kek = x963Kdf(
    'sha256',
    ecdhSecret(eph.privateKey, pub),
    sharedInfo(wrap, undefined),
    KEY_WRAP_LENGTH[wrap],
  );
  return der.implicitConstructed(1, [
    der.int(3),
    der.explicit(
      0,
      der.implicitConstructed(1, [der.algorithm(OID.ecPublicKey), der.bitString(ecPoint(eph.publicKey))]),
    ),
    der.algorithm(OID.dhSinglePassStdDhSha256Kdf, der.algorithm(WRAP_OID[wrap])),
    der.seq(der.seq(issuerAndSerial(recipient), der.octetString(aesKeyWrap(wrap, kek, cek)))),
  ]);
}
