/**
 * The one private-key seam. Everything that uses a CA or RA private key — certificate and CRL
 * signing, CertRep SignedData signing, envelope key transport — goes through a
 * `PrivateKeyHandle`: a software key (a node:crypto KeyObject, `keyHandle`) or a key object on
 * a PKCS#11 token (src/crypto/pkcs11/). The handle offers only the private operations we need;
 * what is built around them (padding checks, implicit rejection, DER) stays in our code, once.
 */
import {
  constants,
  createHash,
  createPublicKey,
  KeyObject,
  privateDecrypt,
  sign as cryptoSign,
} from 'node:crypto';
import type { DigestName } from './algorithms.js';

/**
 * The key exists but cannot be used now (token removed, session lost, module failure). The
 * service answers such requests with HTTP 503 and never acts without the key.
 */
export class KeyUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KeyUnavailableError';
  }
}

/** How a token decrypts when it cannot do raw RSA (see `PrivateKeyHandle.rsaDecryptPadded`). */
export type RsaPadding = { scheme: 'pkcs1' } | { scheme: 'oaep'; hash: DigestName };

/** A private key wherever it lives. All operations are synchronous. */
export interface PrivateKeyHandle {
  /** The public half. */
  readonly publicKey: KeyObject;
  /** Key type as node names it: 'rsa', 'ec', 'ed25519', … */
  readonly type: string;
  /** RSA modulus length in bytes; 0 for other key types. */
  readonly modulusBytes: number;
  /** Where the key lives, for messages and logs: 'software key' or a PIN-free PKCS#11 URI. */
  readonly label: string;
  /**
   * Signs `data`: RSASSA-PKCS1-v1_5 with `digest` (RSA), DER ECDSA (EC), Ed25519 (`digest`
   * null). Throws `KeyUnavailableError` when the key cannot be reached.
   */
  sign(digest: DigestName | null, data: Buffer): Buffer;
  /**
   * Raw RSA decryption (RSADP, no padding): exactly `modulusBytes` bytes. Throws for input of
   * the wrong length or not below the modulus, `KeyUnavailableError` when the key cannot be
   * reached. Undefined when the key offers padded decryption only.
   */
  readonly rsaDecryptRaw?: (input: Buffer) => Buffer;
  /**
   * RSAES-OAEP decryption in this process by OpenSSL, whose decoding is constant-time (software
   * keys only: the same work as decoding over raw RSA here, without the JavaScript MGF1). Throws
   * for any bad ciphertext. Never set for a token key, whose error codes and timing would be an
   * oracle; those are decoded in key-transport.ts over `rsaDecryptRaw`.
   */
  readonly rsaDecryptOaep?: (input: Buffer, hash: DigestName) => Buffer;
  /**
   * Fallback for tokens without raw RSA: the token removes the padding itself and reports
   * padding errors (a padding oracle unless the caller hides the outcome; see
   * src/crypto/key-transport.ts and docs/security.md).
   */
  readonly rsaDecryptPadded?: (input: Buffer, padding: RsaPadding) => Buffer;
  /**
   * 32 secret bytes that only the key's holder can compute, the same in every process: the
   * seed of the implicit-rejection key (src/crypto/key-transport.ts).
   */
  rejectionSecret(): Buffer;
}

/** What callers may pass wherever a private key is used. */
export type PrivateKeyLike = KeyObject | PrivateKeyHandle;

const SECRET_LABEL = 'scepter rsa implicit rejection kdk v1';

/** A software key (node:crypto KeyObject) behind the seam. */
class SoftwareKey implements PrivateKeyHandle {
  readonly type: string;
  readonly modulusBytes: number;
  readonly label = 'software key';
  readonly rsaDecryptRaw: ((input: Buffer) => Buffer) | undefined;
  readonly rsaDecryptOaep: ((input: Buffer, hash: DigestName) => Buffer) | undefined;
  private pub: KeyObject | undefined;
  private secret: Buffer | undefined;

  constructor(private readonly key: KeyObject) {
    this.type = key.asymmetricKeyType ?? 'unknown';
    this.modulusBytes = this.type === 'rsa' ? ((key.asymmetricKeyDetails?.modulusLength ?? 0) + 7) >> 3 : 0;
    this.rsaDecryptRaw =
      this.type === 'rsa'
        ? (input) => privateDecrypt({ key: this.key, padding: constants.RSA_NO_PADDING }, input)
        : undefined;
    this.rsaDecryptOaep =
      this.type === 'rsa'
        ? (input, hash) =>
            privateDecrypt(
              { key: this.key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash },
              input,
            )
        : undefined;
  }

  get publicKey(): KeyObject {
    return (this.pub ??= createPublicKey(this.key));
  }

  sign(digest: DigestName | null, data: Buffer): Buffer {
    if (this.type === 'ec') return cryptoSign(digest, data, { key: this.key, dsaEncoding: 'der' });
    return cryptoSign(digest, data, this.key);
  }

  rejectionSecret(): Buffer {
    // The private key DER never leaves this hash.
    return (this.secret ??= createHash('sha256')
      .update(SECRET_LABEL)
      .update(this.key.export({ format: 'der', type: 'pkcs8' }))
      .digest());
  }
}

const handles = new WeakMap<KeyObject, PrivateKeyHandle>();

/** The handle for a private key (a software KeyObject is wrapped once; a handle is itself). */
export function keyHandle(key: PrivateKeyLike): PrivateKeyHandle {
  if (!(key instanceof KeyObject)) return key;
  let h = handles.get(key);
  if (!h) {
    if (key.type !== 'private') throw new TypeError('a private key is needed');
    h = new SoftwareKey(key);
    handles.set(key, h);
  }
  return h;
}

/** SubjectPublicKeyInfo DER of a private key's public half. */
export function handleSpki(key: PrivateKeyLike): Buffer {
  return keyHandle(key).publicKey.export({ format: 'der', type: 'spki' });
}
