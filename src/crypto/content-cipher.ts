/**
 * Symmetric content encryption for CMS EnvelopedData (RFC 5652 §6.3 padding = PKCS#7):
 * AES-CBC, 3DES-CBC, and single DES-CBC computed as 3DES-EDE with K||K||K so that the
 * OpenSSL legacy provider is never needed.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { cipherInfo, type CipherName } from './algorithms.js';
import { publicRandomBytes } from './random-pool.js';

/** Content decryption failed (bad key, IV, length or padding). One message for every cause. */
export class ContentDecryptError extends Error {
  constructor() {
    super('content decryption failed');
    this.name = 'ContentDecryptError';
  }
}

const NODE_CIPHER: Readonly<Record<CipherName, string>> = {
  aes128: 'aes-128-cbc',
  aes192: 'aes-192-cbc',
  aes256: 'aes-256-cbc',
  des3: 'des-ede3-cbc',
  des: 'des-ede3-cbc',
};

function nodeKey(cipher: CipherName, key: Buffer): Buffer {
  return cipher === 'des' ? Buffer.concat([key, key, key]) : key;
}

/**
 * Encrypts with CBC and PKCS#7 padding. A fresh random key and IV are drawn when not given.
 * Throws RangeError when a given key or IV has the wrong length.
 */
export function encryptContent(
  cipher: CipherName,
  plaintext: Buffer,
  key?: Buffer,
  iv?: Buffer,
): { key: Buffer; iv: Buffer; ciphertext: Buffer } {
  const info = cipherInfo(cipher);
  const k = key ?? randomBytes(info.keyLength);
  const v = iv ?? publicRandomBytes(info.ivLength);
  if (k.length !== info.keyLength) throw new RangeError(`${cipher} needs a ${info.keyLength}-byte key`);
  if (v.length !== info.ivLength) throw new RangeError(`${cipher} needs a ${info.ivLength}-byte IV`);
  const c = createCipheriv(NODE_CIPHER[cipher], nodeKey(cipher, k), v);
  const ciphertext = Buffer.concat([c.update(plaintext), c.final()]);
  return { key: k, iv: v, ciphertext };
}

/**
 * Decrypts CBC and checks the PKCS#7 padding without throwing and without branching on the
 * plaintext: OpenSSL's own unpadding is off (its failure path raises an exception and an
 * OpenSSL error, several microseconds slower than success — a CBC padding oracle by timing,
 * Vaudenay 2002), and the last block is checked in a fixed-length, mask-based loop. Returns the
 * unpadded content and `ok`; when `ok` is false `content` is the whole decrypted buffer and
 * must not be used. Lengths of key, IV and ciphertext are public: a wrong one gives `ok` false
 * at once.
 */
export function decryptContentChecked(
  cipher: CipherName,
  key: Buffer,
  iv: Buffer,
  ciphertext: Buffer,
): { content: Buffer; ok: boolean } {
  const info = cipherInfo(cipher);
  const bs = info.blockSize;
  if (
    key.length !== info.keyLength ||
    iv.length !== info.ivLength ||
    ciphertext.length === 0 ||
    ciphertext.length % bs !== 0
  ) {
    return { content: Buffer.alloc(0), ok: false };
  }
  const d = createDecipheriv(NODE_CIPHER[cipher], nodeKey(cipher, key), iv).setAutoPadding(false);
  const pt = Buffer.concat([d.update(ciphertext), d.final()]);
  const n = pt.length;
  const pad = pt[n - 1]!;
  // bad != 0 when pad == 0, pad > bs, or one of the last `pad` bytes differs from pad.
  let bad = ((pad - 1) >> 8) & 1; // pad == 0
  bad |= ((bs - pad) >> 31) & 1; // pad > bs
  for (let i = 1; i <= bs; i++) {
    const inPad = ((i - pad - 1) >> 31) & 1; // i <= pad
    bad |= inPad * (pt[n - i]! ^ pad);
  }
  // strip = pad when valid, else 0 (mask arithmetic, no branch).
  const okMask = ((bad | -bad) >>> 31) - 1; // -1 (all ones) when bad == 0, else 0
  const strip = pad & okMask;
  return { content: pt.subarray(0, n - strip), ok: okMask !== 0 };
}

/**
 * Decrypts CBC with PKCS#7 padding. Every failure (key/IV/ciphertext length, bad padding)
 * throws the same `ContentDecryptError`.
 */
export function decryptContent(cipher: CipherName, key: Buffer, iv: Buffer, ciphertext: Buffer): Buffer {
  const r = decryptContentChecked(cipher, key, iv, ciphertext);
  if (!r.ok) throw new ContentDecryptError();
  return r.content;
}
