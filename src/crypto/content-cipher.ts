/**
 * Symmetric content encryption for CMS EnvelopedData (RFC 5652 §6.3 padding = PKCS#7):
 * AES-CBC, 3DES-CBC, and single DES-CBC computed as 3DES-EDE with K||K||K so that the
 * OpenSSL legacy provider is never needed.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { cipherInfo, type CipherName } from './algorithms.js';

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
  const v = iv ?? randomBytes(info.ivLength);
  if (k.length !== info.keyLength) throw new RangeError(`${cipher} needs a ${info.keyLength}-byte key`);
  if (v.length !== info.ivLength) throw new RangeError(`${cipher} needs a ${info.ivLength}-byte IV`);
  const c = createCipheriv(NODE_CIPHER[cipher], nodeKey(cipher, k), v);
  const ciphertext = Buffer.concat([c.update(plaintext), c.final()]);
  return { key: k, iv: v, ciphertext };
}

/**
 * Decrypts CBC with PKCS#7 padding. Every failure (key/IV/ciphertext length, bad padding)
 * throws the same `ContentDecryptError`.
 */
export function decryptContent(cipher: CipherName, key: Buffer, iv: Buffer, ciphertext: Buffer): Buffer {
  const info = cipherInfo(cipher);
  if (
    key.length !== info.keyLength ||
    iv.length !== info.ivLength ||
    ciphertext.length === 0 ||
    ciphertext.length % info.blockSize !== 0
  ) {
    throw new ContentDecryptError();
  }
  try {
    const d = createDecipheriv(NODE_CIPHER[cipher], nodeKey(cipher, key), iv);
    return Buffer.concat([d.update(ciphertext), d.final()]);
  } catch {
    throw new ContentDecryptError();
  }
}
