/**
 * Password-based key wrapping for CMS PasswordRecipientInfo (RFC 3211): PBKDF2 (RFC 8018
 * §5.2) turns the password into a key-encryption key, and the PWRI key wrap (RFC 3211 §2.3)
 * encrypts the content-encryption key twice in CBC mode under it.
 *
 * The PBKDF2 cost is chosen by whoever built the envelope, so a receiver must bound it: an
 * envelope asking for 10^9 iterations would otherwise hold a CPU for minutes. `PWRI_LIMITS`
 * are checked before any work; `pbkdf2Kek` throws a RangeError outside them.
 *
 * Unwrapping never branches on the decrypted bytes: the length byte and the check bytes are
 * tested with masks and one `ok` flag is returned, like `decryptContentChecked`.
 */
import { createCipheriv, createDecipheriv, pbkdf2Sync, randomBytes } from 'node:crypto';
import { cipherInfo, type CipherName, type DigestName } from './algorithms.js';

/** Bounds on what a password recipient may ask of us. */
export const PWRI_LIMITS = {
  /** Most PBKDF2 iterations accepted (OpenSSL writes 2048; scepter writes `PWRI_ITERATIONS`). */
  maxIterations: 200_000,
  minIterations: 1,
  /** Longest PBKDF2 salt accepted, in bytes. */
  maxSaltBytes: 64,
  /** Longest wrapped key accepted, in bytes (a 32-byte key wraps into 48 bytes under AES). */
  maxWrappedKeyBytes: 128,
} as const;

/** PBKDF2 iterations scepter uses when it builds a password recipient. */
export const PWRI_ITERATIONS = 10_000;

/** PBKDF2 PRFs (hmacWith…) accepted. */
export type PbkdfPrf = Extract<DigestName, 'sha1' | 'sha256' | 'sha384' | 'sha512'>;

const NODE_CBC: Readonly<Record<CipherName, string>> = {
  aes128: 'aes-128-cbc',
  aes192: 'aes-192-cbc',
  aes256: 'aes-256-cbc',
  des3: 'des-ede3-cbc',
  des: 'des-ede3-cbc',
};

/**
 * The key-encryption key: PBKDF2(prf, password, salt, iterations, keyLength). Throws a
 * RangeError for an iteration count, salt or key length outside `PWRI_LIMITS`.
 */
export function pbkdf2Kek(
  password: Buffer,
  salt: Buffer,
  iterations: number,
  keyLength: number,
  prf: PbkdfPrf,
): Buffer {
  if (!Number.isSafeInteger(iterations) || iterations < PWRI_LIMITS.minIterations) {
    throw new RangeError('the PBKDF2 iteration count is not a positive integer');
  }
  if (iterations > PWRI_LIMITS.maxIterations) {
    throw new RangeError(
      `the PBKDF2 iteration count ${iterations} is above the limit of ${PWRI_LIMITS.maxIterations}`,
    );
  }
  if (salt.length === 0 || salt.length > PWRI_LIMITS.maxSaltBytes) {
    throw new RangeError(`the PBKDF2 salt must be 1 to ${PWRI_LIMITS.maxSaltBytes} bytes`);
  }
  if (!Number.isInteger(keyLength) || keyLength < 8 || keyLength > 32) {
    throw new RangeError('the PBKDF2 key length must be 8 to 32 bytes');
  }
  return pbkdf2Sync(password, salt, iterations, keyLength, prf);
}

function cbc(decrypt: boolean, cipher: CipherName, key: Buffer, iv: Buffer, data: Buffer): Buffer {
  const c = decrypt
    ? createDecipheriv(NODE_CBC[cipher], key, iv).setAutoPadding(false)
    : createCipheriv(NODE_CBC[cipher], key, iv).setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]);
}

function checkKekShape(cipher: CipherName, kek: Buffer, iv: Buffer): number {
  const info = cipherInfo(cipher);
  if (cipher === 'des') throw new RangeError('single DES is not used for key wrapping');
  if (kek.length !== info.keyLength) throw new RangeError(`${cipher} needs a ${info.keyLength}-byte KEK`);
  if (iv.length !== info.ivLength) throw new RangeError(`${cipher} needs a ${info.ivLength}-byte IV`);
  return info.blockSize;
}

/**
 * RFC 3211 §2.3.1 key wrap: LEN ‖ ~K[0..2] ‖ K ‖ random padding to at least two blocks,
 * CBC-encrypted under (kek, iv), then CBC-encrypted again with the last ciphertext block as IV.
 */
export function pwriWrap(cipher: CipherName, kek: Buffer, iv: Buffer, cek: Buffer): Buffer {
  const bs = checkKekShape(cipher, kek, iv);
  if (cek.length < 3 || cek.length > 255) throw new RangeError('a wrapped key is 3 to 255 bytes');
  const len = Math.max(2 * bs, Math.ceil((4 + cek.length) / bs) * bs);
  const block = Buffer.concat([
    Buffer.from([cek.length, ~cek[0]! & 0xff, ~cek[1]! & 0xff, ~cek[2]! & 0xff]),
    cek,
    randomBytes(len - 4 - cek.length),
  ]);
  const first = cbc(false, cipher, kek, iv, block);
  return cbc(false, cipher, kek, first.subarray(first.length - bs), first);
}

/**
 * RFC 3211 §2.3.2 key unwrap of a `keyLength`-byte key. Always returns `keyLength` bytes and
 * `ok`; `ok` is false (and the key unusable) when the shape is wrong, the length byte differs
 * from `keyLength` or the check bytes do not match. Decided without branching on secret bytes.
 */
export function pwriUnwrap(
  cipher: CipherName,
  kek: Buffer,
  iv: Buffer,
  wrapped: Buffer,
  keyLength: number,
): { key: Buffer; ok: boolean } {
  const bs = checkKekShape(cipher, kek, iv);
  const n = wrapped.length;
  if (n < 2 * bs || n % bs !== 0 || n > PWRI_LIMITS.maxWrappedKeyBytes || keyLength + 4 > n) {
    return { key: Buffer.alloc(keyLength), ok: false };
  }
  // Inner last block: decrypt C[n-1] with C[n-2] as IV; then the head with it as IV.
  const innerLast = cbc(true, cipher, kek, wrapped.subarray(n - 2 * bs, n - bs), wrapped.subarray(n - bs));
  const innerHead = cbc(true, cipher, kek, innerLast, wrapped.subarray(0, n - bs));
  const pt = cbc(true, cipher, kek, iv, Buffer.concat([innerHead, innerLast]));
  let bad = pt[0]! ^ keyLength;
  bad |= pt[1]! ^ pt[4]! ^ 0xff;
  bad |= pt[2]! ^ pt[5]! ^ 0xff;
  bad |= pt[3]! ^ pt[6]! ^ 0xff;
  return { key: pt.subarray(4, 4 + keyLength), ok: bad === 0 };
}
