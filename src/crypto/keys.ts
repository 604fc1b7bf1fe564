/**
 * KeyObject construction with a cache. Parsing a PEM/DER key per operation costs ~4x the RSA
 * work it serves (docs/design-notes.md), so keys are parsed once and looked up by a hash of their input.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { digestHex } from './hash.js';

const MAX_ENTRIES = 128;
const privateCache = new Map<string, KeyObject>();
const publicCache = new Map<string, KeyObject>();

function cacheKey(input: string | Buffer, extra?: string): string {
  const h = createHash('sha256');
  h.update(typeof input === 'string' ? Buffer.from(input, 'utf8') : input);
  if (extra !== undefined) h.update('\0').update(extra, 'utf8');
  return h.digest('base64');
}

function remember(cache: Map<string, KeyObject>, k: string, v: KeyObject): KeyObject {
  if (cache.size >= MAX_ENTRIES) {
    const oldest = cache.keys().next();
    if (!oldest.done) cache.delete(oldest.value);
  }
  cache.set(k, v);
  return v;
}

function isPem(input: string | Buffer): boolean {
  const s = typeof input === 'string' ? input : input.subarray(0, 64).toString('latin1');
  return s.includes('-----BEGIN ');
}

/**
 * A private key from PEM (PKCS#8, PKCS#1, SEC1, encrypted PKCS#8) or DER (PKCS#8, then
 * PKCS#1). Cached; throws node's error for unusable input (message never contains key data).
 */
export function privateKeyFrom(pemOrDer: string | Buffer, passphrase?: string): KeyObject {
  const k = cacheKey(pemOrDer, passphrase);
  const hit = privateCache.get(k);
  if (hit) return hit;
  let key: KeyObject;
  if (isPem(pemOrDer)) {
    key = createPrivateKey(passphrase === undefined ? { key: pemOrDer } : { key: pemOrDer, passphrase });
  } else {
    const der = typeof pemOrDer === 'string' ? Buffer.from(pemOrDer, 'base64') : pemOrDer;
    try {
      key = createPrivateKey(
        passphrase === undefined
          ? { key: der, format: 'der', type: 'pkcs8' }
          : { key: der, format: 'der', type: 'pkcs8', passphrase },
      );
    } catch {
      key = createPrivateKey({ key: der, format: 'der', type: 'pkcs1' });
    }
  }
  return remember(privateCache, k, key);
}

/** A public key from SubjectPublicKeyInfo DER or PEM (a certificate PEM works too). Cached. */
export function publicKeyFrom(spkiDerOrPem: string | Buffer): KeyObject {
  const k = cacheKey(spkiDerOrPem);
  const hit = publicCache.get(k);
  if (hit) return hit;
  const key = isPem(spkiDerOrPem)
    ? createPublicKey(spkiDerOrPem)
    : createPublicKey({
        key: typeof spkiDerOrPem === 'string' ? Buffer.from(spkiDerOrPem, 'base64') : spkiDerOrPem,
        format: 'der',
        type: 'spki',
      });
  return remember(publicCache, k, key);
}

/** SHA-256 (lower-case hex) of a SubjectPublicKeyInfo DER: scepter's "key hash". */
export function spkiHash(spkiDer: Buffer): string {
  return digestHex('sha256', spkiDer);
}

/** SubjectPublicKeyInfo DER of a public or private key. */
export function spkiOf(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return pub.export({ format: 'der', type: 'spki' });
}

/** RSA modulus size in bits; 0 for a key that is not RSA. */
export function rsaModulusBits(key: KeyObject): number {
  if (key.asymmetricKeyType !== 'rsa') return 0;
  return key.asymmetricKeyDetails?.modulusLength ?? 0;
}
