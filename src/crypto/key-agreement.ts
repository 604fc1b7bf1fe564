/**
 * ECDH key agreement for CMS KeyAgreeRecipientInfo (RFC 5753 §3.1, dhSinglePass-stdDH):
 * an ephemeral key on the recipient's curve, the shared secret Z, the ANSI X9.63 KDF
 * (SEC 1 §3.6.1) over Z and the ECC-CMS-SharedInfo, and the AES key wrap of RFC 3394
 * (node:crypto `id-aesNNN-wrap`).
 *
 * EC curves are a policy: P-256 and P-384 only (`EC_CURVES`); anything else is an
 * UnsupportedAlgorithmError (badAlg) with a clear text.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { UnsupportedAlgorithmError, type DigestName } from './algorithms.js';

/** EC curves accepted for device keys, key agreement and CA keys: node name → OID and size. */
export const EC_CURVES = {
  prime256v1: { oid: '1.2.840.10045.3.1.7', bits: 256, label: 'P-256' },
  secp384r1: { oid: '1.3.132.0.34', bits: 384, label: 'P-384' },
} as const;

export type EcCurve = keyof typeof EC_CURVES;

/** The text of a refused curve: which ones are accepted. */
export const EC_CURVE_POLICY_TEXT = 'only EC keys on P-256 or P-384 are accepted';

/** The accepted curve of an EC key; throws UnsupportedAlgorithmError for other curves and key types. */
export function ecCurveOf(key: KeyObject): EcCurve {
  if (key.asymmetricKeyType !== 'ec') {
    throw new UnsupportedAlgorithmError('', `a ${key.asymmetricKeyType ?? 'unknown'} key is not an EC key`);
  }
  const c = key.asymmetricKeyDetails?.namedCurve;
  if (c === 'prime256v1' || c === 'secp384r1') return c;
  throw new UnsupportedAlgorithmError('', `EC curve ${c ?? 'unknown'} is refused: ${EC_CURVE_POLICY_TEXT}`);
}

/** AES key-wrap sizes (RFC 3394) by KEK length in bytes. */
export type KeyWrapName = 'aes128-wrap' | 'aes192-wrap' | 'aes256-wrap';

export const KEY_WRAP_LENGTH: Readonly<Record<KeyWrapName, number>> = {
  'aes128-wrap': 16,
  'aes192-wrap': 24,
  'aes256-wrap': 32,
};

const NODE_WRAP: Readonly<Record<KeyWrapName, string>> = {
  'aes128-wrap': 'id-aes128-wrap',
  'aes192-wrap': 'id-aes192-wrap',
  'aes256-wrap': 'id-aes256-wrap',
};

const WRAP_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');

/** RFC 3394 AES key wrap of `cek` (a multiple of 8 bytes, at least 16) under `kek`. */
export function aesKeyWrap(wrap: KeyWrapName, kek: Buffer, cek: Buffer): Buffer {
  if (kek.length !== KEY_WRAP_LENGTH[wrap])
    throw new RangeError(`${wrap} needs a ${KEY_WRAP_LENGTH[wrap]}-byte KEK`);
  if (cek.length < 16 || cek.length % 8 !== 0)
    throw new RangeError('AES key wrap needs a key of 16+ bytes, a multiple of 8');
  const c = createCipheriv(NODE_WRAP[wrap], kek, WRAP_IV);
  return Buffer.concat([c.update(cek), c.final()]);
}

/**
 * RFC 3394 AES key unwrap. Returns `keyLength` bytes and `ok`; `ok` is false (key unusable)
 * for a wrong length or a failed integrity check. Never throws for hostile input.
 */
export function aesKeyUnwrap(
  wrap: KeyWrapName,
  kek: Buffer,
  wrapped: Buffer,
  keyLength: number,
): { key: Buffer; ok: boolean } {
  if (kek.length !== KEY_WRAP_LENGTH[wrap] || wrapped.length !== keyLength + 8 || keyLength < 16) {
    return { key: Buffer.alloc(Math.max(0, keyLength)), ok: false };
  }
  try {
    const d = createDecipheriv(NODE_WRAP[wrap], kek, WRAP_IV);
    const key = Buffer.concat([d.update(wrapped), d.final()]);
    return key.length === keyLength ? { key, ok: true } : { key: Buffer.alloc(keyLength), ok: false };
  } catch {
    return { key: Buffer.alloc(keyLength), ok: false };
  }
}

/**
 * ANSI X9.63 KDF (SEC 1 §3.6.1): Hash(Z ‖ counter ‖ sharedInfo) for counter = 1, 2, …
 * (32-bit big-endian), truncated to `length` bytes.
 */
export function x963Kdf(hash: DigestName, z: Buffer, sharedInfo: Buffer, length: number): Buffer {
  if (!Number.isInteger(length) || length < 1 || length > 64)
    throw new RangeError('KDF output must be 1 to 64 bytes');
  const out: Buffer[] = [];
  let have = 0;
  for (let counter = 1; have < length; counter++) {
    const ctr = Buffer.alloc(4);
    ctr.writeUInt32BE(counter);
    const block = createHash(hash).update(z).update(ctr).update(sharedInfo).digest();
    out.push(block);
    have += block.length;
  }
  return Buffer.concat(out).subarray(0, length);
}

/** The uncompressed point (04 ‖ X ‖ Y) of an EC public key. */
export function ecPoint(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  if (!jwk.x || !jwk.y) throw new TypeError('not an EC public key');
  return Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
}

const CURVE_COORD_BYTES: Readonly<Record<EcCurve, number>> = { prime256v1: 32, secp384r1: 48 };

/**
 * The public key of an uncompressed point on `curve`. Throws TypeError for a point of the
 * wrong length or form; node rejects points that are not on the curve.
 */
export function ecPublicKeyFromPoint(curve: EcCurve, point: Buffer): KeyObject {
  const n = CURVE_COORD_BYTES[curve];
  if (point.length !== 1 + 2 * n || point[0] !== 4)
    throw new TypeError('the EC point is not an uncompressed point on the curve');
  const crv = curve === 'prime256v1' ? 'P-256' : 'P-384';
  return createPublicKey({
    key: {
      kty: 'EC',
      crv,
      x: point.subarray(1, 1 + n).toString('base64url'),
      y: point.subarray(1 + n).toString('base64url'),
    },
    format: 'jwk',
  });
}

/** A fresh ephemeral key pair on the curve of `recipient`. */
export function ephemeralKeyFor(recipient: KeyObject): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: ecCurveOf(recipient) });
}

/** The ECDH shared secret Z (the x-coordinate) of a private and a public key on one curve. */
export function ecdhSecret(privateKey: KeyObject, publicKey: KeyObject): Buffer {
  return diffieHellman({ privateKey, publicKey });
}
