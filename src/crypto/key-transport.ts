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
 * same as for a wrong key. The PKCS#1 v1.5 unpadding runs here over raw RSA output (RSADP:
 * RSA_NO_PADDING, or CKM_RSA_X_509 on a PKCS#11 token) with a fixed-length loop, no early exit
 * and mask-based selection. OAEP: software keys use OpenSSL's constant-time decoding; token
 * keys are decoded here over raw RSA the same way, so a token never reports a padding error.
 */
import { constants, createHash, createHmac, publicEncrypt, type KeyObject } from 'node:crypto';
import type { DigestName } from './algorithms.js';
import {
  KeyUnavailableError,
  keyHandle,
  type PrivateKeyHandle,
  type PrivateKeyLike,
  type RsaPadding,
} from './private-key.js';

const HASH_BYTES: Record<DigestName, number> = { sha1: 20, sha224: 28, sha256: 32, sha384: 48, sha512: 64 };
/** Hash of the empty OAEP label, per hash. */
const L_HASH: Partial<Record<DigestName, Buffer>> = {};

/** 0xff when `bad` is 0, else 0x00. */
function goodMask(bad: number): number {
  return (((bad | -bad) >>> 31) - 1) & 0xff;
}

/** MGF1 (RFC 8017 §B.2.1). */
function mgf1(hash: DigestName, seed: Uint8Array, length: number): Buffer {
  const hLen = HASH_BYTES[hash];
  const out = Buffer.allocUnsafe(Math.ceil(length / hLen) * hLen);
  const seeded = createHash(hash).update(seed);
  const counter = Buffer.alloc(4);
  for (let i = 0; i * hLen < length; i++) {
    counter.writeUInt32BE(i);
    seeded
      .copy()
      .update(counter)
      .digest()
      .copy(out, i * hLen);
  }
  return out.subarray(0, length);
}

/**
 * Decrypts RSA key-transport blobs with one private key (software or PKCS#11, through the
 * seam in private-key.ts). Both paddings are removed here, over raw RSA output, with the same
 * implicit rejection: a token never gets to report a padding error.
 */
export class RsaKeyTransport {
  private readonly key: PrivateKeyHandle;
  private readonly kdk: Buffer;
  /** Modulus length in bytes. */
  readonly modulusBytes: number;

  constructor(privateKey: PrivateKeyLike) {
    let h: PrivateKeyHandle;
    try {
      h = keyHandle(privateKey);
    } catch {
      throw new TypeError('RsaKeyTransport needs an RSA private key');
    }
    if (h.type !== 'rsa') throw new TypeError('RsaKeyTransport needs an RSA private key');
    this.key = h;
    this.modulusBytes = h.modulusBytes;
    // A per-key secret only the key's holder can compute (private-key.ts).
    this.kdk = h.rejectionSecret();
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
   * The raw RSA output, or k zero bytes and bad=1 when the input is refused (longer than k or
   * not below n: public conditions). A key that cannot be reached is not a decryption outcome:
   * `KeyUnavailableError` propagates (the request is answered 503, nothing is revealed).
   */
  private raw(encryptedKey: Buffer, raw: (c: Buffer) => Buffer): { em: Uint8Array; bad: number } {
    const k = this.modulusBytes;
    try {
      const em = raw(encryptedKey);
      if (em.length === k) return { em, bad: 0 };
    } catch (e) {
      if (e instanceof KeyUnavailableError) throw e;
    }
    return { em: new Uint8Array(k), bad: 1 };
  }

  /** Software keys: OpenSSL's constant-time OAEP decoding; every failure gives the synthetic key. */
  private inProcessOaep(
    own: (input: Buffer, hash: DigestName) => Buffer,
    encryptedKey: Buffer,
    hash: DigestName,
    L: number,
  ): Buffer {
    const synth = this.syntheticKey(encryptedKey, L);
    let pt: Buffer;
    let bad = 0;
    try {
      pt = own(encryptedKey, hash);
    } catch {
      pt = Buffer.alloc(L);
      bad = 1;
    }
    if (pt.length !== L) {
      pt = Buffer.alloc(L);
      bad = 1;
    }
    return select(pt, 0, synth, L, goodMask(bad));
  }

  /** Fallback for tokens without raw RSA: the token unpads; every failure looks the same. */
  private padded(encryptedKey: Buffer, L: number, padding: RsaPadding): Buffer {
    const synth = this.syntheticKey(encryptedKey, L);
    let pt: Buffer;
    let bad = 0;
    try {
      pt = this.key.rsaDecryptPadded!(encryptedKey, padding);
    } catch (e) {
      if (e instanceof KeyUnavailableError) throw e;
      pt = Buffer.alloc(L);
      bad = 1;
    }
    if (pt.length !== L) {
      pt = Buffer.alloc(L);
      bad = 1;
    }
    return select(pt, 0, synth, L, goodMask(bad));
  }

  /**
   * RSAES-PKCS1-v1_5 decryption of a `cekLength`-byte key. Always returns `cekLength` bytes:
   * the real key when the padding is valid and the payload has exactly that length, the
   * synthetic key otherwise. Throws only for a `cekLength` that cannot fit the modulus, and
   * `KeyUnavailableError`.
   */
  decryptPkcs1v15(encryptedKey: Buffer, cekLength: number): Buffer {
    const k = this.modulusBytes;
    const L = cekLength;
    if (!Number.isInteger(L) || L < 1 || L > k - 11) {
      throw new RangeError(`a ${L}-byte key cannot be transported under a ${k * 8}-bit RSA key`);
    }
    const rawFn = this.key.rsaDecryptRaw;
    if (!rawFn) return this.padded(encryptedKey, L, { scheme: 'pkcs1' });
    const synth = this.syntheticKey(encryptedKey, L);
    const r = this.raw(encryptedKey, rawFn);
    const em = r.em;
    let bad = r.bad;
    // EM = 0x00 || 0x02 || PS (>= 8 nonzero octets) || 0x00 || M, with |M| = L.
    const sep = k - L - 1;
    bad |= em[0]! | (em[1]! ^ 2) | em[sep]!;
    for (let i = 2; i < sep; i++) bad |= ((em[i]! - 1) >> 8) & 1;
    return select(em, sep + 1, synth, L, goodMask(bad));
  }

  /**
   * RSAES-OAEP decryption (hash and MGF1 hash both `hash`, empty label) of a `cekLength`-byte
   * key, decoded here (RFC 8017 §7.1.2) over raw RSA output with no early exit. Any failure,
   * including a wrong payload length, yields the synthetic key.
   */
  decryptOaep(encryptedKey: Buffer, hash: DigestName, cekLength: number): Buffer {
    const k = this.modulusBytes;
    const L = cekLength;
    const own = this.key.rsaDecryptOaep;
    if (own) return this.inProcessOaep(own, encryptedKey, hash, L);
    const rawFn = this.key.rsaDecryptRaw;
    if (!rawFn) return this.padded(encryptedKey, L, { scheme: 'oaep', hash });
    const synth = this.syntheticKey(encryptedKey, L);
    const hLen = HASH_BYTES[hash];
    const dbLen = k - hLen - 1;
    // DB = lHash || PS (zeros) || 0x01 || M with |M| = L: the 0x01 is at a known place.
    const sepAt = dbLen - L - 1;
    // Public: this length can never decode under this key and hash.
    if (!Number.isInteger(L) || L < 1 || sepAt < hLen) return synth;
    const r = this.raw(encryptedKey, rawFn);
    const em = r.em;
    let bad = r.bad | em[0]!;
    const maskedSeed = em.subarray(1, 1 + hLen);
    const maskedDb = em.subarray(1 + hLen, k);
    const seedMask = mgf1(hash, maskedDb, hLen);
    for (let i = 0; i < hLen; i++) seedMask[i]! ^= maskedSeed[i]!;
    const db = mgf1(hash, seedMask, dbLen);
    for (let i = 0; i < dbLen; i++) db[i]! ^= maskedDb[i]!;
    const lHash = (L_HASH[hash] ??= createHash(hash).digest());
    for (let i = 0; i < hLen; i++) bad |= db[i]! ^ lHash[i]!;
    for (let i = hLen; i < sepAt; i++) bad |= db[i]!;
    bad |= db[sepAt]! ^ 1;
    return select(db, sepAt + 1, synth, L, goodMask(bad));
  }
}

/** `L` bytes from `src` at `at` when mask is 0xff, from `synth` when 0x00; no branch. */
function select(src: Uint8Array, at: number, synth: Buffer, L: number, mask: number): Buffer {
  const notMask = ~mask & 0xff;
  const out = Buffer.allocUnsafe(L);
  for (let i = 0; i < L; i++) out[i] = (src[at + i]! & mask) | (synth[i]! & notMask);
  return out;
}

/** RSAES-PKCS1-v1_5 encryption of a content-encryption key. */
export function rsaEncryptPkcs1v15(publicKey: KeyObject, cek: Buffer): Buffer {
  return publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, cek);
}

/** RSAES-OAEP encryption (MGF1 with the same hash, empty label). */
export function rsaEncryptOaep(publicKey: KeyObject, cek: Buffer, hash: DigestName): Buffer {
  return publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, cek);
}
