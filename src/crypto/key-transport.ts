/**
 * RSA key transport for CMS KeyTransRecipientInfo: RSAES-PKCS1-v1_5 with implicit rejection
 * and RSAES-OAEP.
 *
 * The server is a decryption oracle for anyone holding its certificate (Bleichenbacher,
 * Marvin; RFC 3218, RFC 8017 §7.2.2). So decryption never throws for a bad ciphertext and
 * never returns a length other than the one asked for: on any padding or length error it
 * returns a synthetic key, HMAC-SHA256(kdk, encryptedKey) truncated, where kdk is a secret
 * derived from the private key. The synthetic key is deterministic, so a repeated probe
 * behaves identically, and the caller's later failure (CBC padding, content parse) looks the
 * same as for a wrong key. The PKCS#1 v1.5 unpadding runs over raw RSA output
 * (RSA_NO_PADDING) with a fixed-length loop, no early exit and mask-based selection.
 */
import {
  constants,
  createHmac,
  createHash,
  privateDecrypt,
  publicEncrypt,
  type KeyObject,
} from 'node:crypto';
import type { DigestName } from './algorithms.js';
import { rsaModulusBits } from './keys.js';

const KDK_LABEL = 'scepter rsa implicit rejection kdk v1';

/** Decrypts RSA key-transport blobs with one private key. */
export class RsaKeyTransport {
  private readonly key: KeyObject;
  private readonly kdk: Buffer;
  /** Modulus length in bytes. */
  readonly modulusBytes: number;

  constructor(privateKey: KeyObject) {
    if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'rsa') {
      throw new TypeError('RsaKeyTransport needs an RSA private key');
    }
    this.key = privateKey;
    this.modulusBytes = (rsaModulusBits(privateKey) + 7) >> 3;
    // A per-key secret; the private key DER never leaves this hash.
    this.kdk = createHash('sha256')
      .update(KDK_LABEL)
      .update(privateKey.export({ format: 'der', type: 'pkcs8' }))
      .digest();
  }

  /**
   * The deterministic substitute key for a ciphertext: HMAC-SHA256(kdk, i || encryptedKey)
   * blocks, truncated to `length`.
   */
  syntheticKey(encryptedKey: Buffer, length: number): Buffer {
    const blocks: Buffer[] = [];
    for (let i = 0; blocks.length * 32 < length; i++) {
      const h = createHmac('sha256', this.kdk);
      if (i > 0) h.update(Buffer.from([i]));
      blocks.push(h.update(encryptedKey).digest());
    }
    return Buffer.concat(blocks).subarray(0, length);
  }

  /**
   * RSAES-PKCS1-v1_5 decryption of a `cekLength`-byte key. Always returns `cekLength` bytes:
   * the real key when the padding is valid and the payload has exactly that length, the
   * synthetic key otherwise. Throws only for a `cekLength` that cannot fit the modulus.
   */
  decryptPkcs1v15(encryptedKey: Buffer, cekLength: number): Buffer {
    const k = this.modulusBytes;
    const L = cekLength;
    if (!Number.isInteger(L) || L < 1 || L > k - 11) {
      throw new RangeError(`a ${L}-byte key cannot be transported under a ${k * 8}-bit RSA key`);
    }
    const synth = this.syntheticKey(encryptedKey, L);
    // Public conditions only: input longer than k or >= n makes OpenSSL refuse.
    let em: Uint8Array;
    let bad = 0;
    try {
      em = privateDecrypt({ key: this.key, padding: constants.RSA_NO_PADDING }, encryptedKey);
      if (em.length !== k) {
        em = new Uint8Array(k);
        bad = 1;
      }
    } catch {
      em = new Uint8Array(k);
      bad = 1;
    }
    // EM = 0x00 || 0x02 || PS (>= 8 nonzero octets) || 0x00 || M, with |M| = L.
    const sep = k - L - 1;
    bad |= em[0]! | (em[1]! ^ 2) | em[sep]!;
    for (let i = 2; i < sep; i++) bad |= ((em[i]! - 1) >> 8) & 1;
    // mask = 0xff when bad == 0, else 0x00.
    const mask = (((bad | -bad) >>> 31) - 1) & 0xff;
    const notMask = ~mask & 0xff;
    const out = Buffer.allocUnsafe(L);
    for (let i = 0; i < L; i++) out[i] = (em[sep + 1 + i]! & mask) | (synth[i]! & notMask);
    return out;
  }

  /**
   * RSAES-OAEP decryption (hash and MGF1 hash both `hash`, empty label) of a `cekLength`-byte
   * key. Any failure, including a wrong payload length, yields the synthetic key.
   */
  decryptOaep(encryptedKey: Buffer, hash: DigestName, cekLength: number): Buffer {
    const L = cekLength;
    const synth = this.syntheticKey(encryptedKey, L);
    let pt: Buffer;
    let bad = 0;
    try {
      pt = privateDecrypt(
        { key: this.key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash },
        encryptedKey,
      );
    } catch {
      pt = Buffer.alloc(L);
      bad = 1;
    }
    if (pt.length !== L) {
      pt = Buffer.alloc(L);
      bad = 1;
    }
    const mask = (((bad | -bad) >>> 31) - 1) & 0xff;
    const notMask = ~mask & 0xff;
    const out = Buffer.allocUnsafe(L);
    for (let i = 0; i < L; i++) out[i] = (pt[i]! & mask) | (synth[i]! & notMask);
    return out;
  }
}

/** RSAES-PKCS1-v1_5 encryption of a content-encryption key. */
export function rsaEncryptPkcs1v15(publicKey: KeyObject, cek: Buffer): Buffer {
  return publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, cek);
}

/** RSAES-OAEP encryption (MGF1 with the same hash, empty label). */
export function rsaEncryptOaep(publicKey: KeyObject, cek: Buffer, hash: DigestName): Buffer {
  return publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, cek);
}
