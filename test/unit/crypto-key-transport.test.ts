import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  constants,
  createPublicKey,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { RsaKeyTransport, rsaEncryptOaep, rsaEncryptPkcs1v15 } from '../../src/crypto/key-transport.js';
import { keyHandle, KeyUnavailableError, type PrivateKeyHandle } from '../../src/crypto/private-key.js';
import { pooledRsaKey } from '../helpers/pki.js';

const key = pooledRsaKey(0);
const pub = createPublicKey(key);
const kt = new RsaKeyTransport(key);
const K = 256;

/** Raw RSA of a chosen encoded message (lets tests build any padding, valid or not). */
function rawEncrypt(pk: KeyObject, em: Buffer): Buffer {
  assert.equal(em.length, K);
  return publicEncrypt({ key: pk, padding: constants.RSA_NO_PADDING }, em);
}

/** 00 02 PS 00 M with the given PS length (nonzero random bytes). */
function pkcs1Em(m: Buffer, opts: { type?: number; psZeroAt?: number; sep?: number } = {}): Buffer {
  const em = Buffer.alloc(K);
  em[0] = 0;
  em[1] = opts.type ?? 2;
  const psEnd = K - m.length - 1;
  for (let i = 2; i < psEnd; i++) em[i] = 1 + (randomBytes(1)[0]! % 255);
  if (opts.psZeroAt !== undefined) em[opts.psZeroAt] = 0;
  em[psEnd] = opts.sep ?? 0;
  m.copy(em, psEnd + 1);
  return em;
}

test('PKCS#1 v1.5: a valid key of the expected length comes back exactly', () => {
  for (const L of [16, 24, 32]) {
    const cek = randomBytes(L);
    assert.deepEqual(kt.decryptPkcs1v15(rsaEncryptPkcs1v15(pub, cek), L), cek);
    // and through our own raw encoder, to prove the unpad logic (not OpenSSL's) accepts it
    assert.deepEqual(kt.decryptPkcs1v15(rawEncrypt(pub, pkcs1Em(cek)), L), cek);
  }
});

test('PKCS#1 v1.5: every padding/length error yields the synthetic key, never an exception', () => {
  const cek = randomBytes(16);
  const bad: Record<string, Buffer> = {
    'block type 1': rawEncrypt(pub, pkcs1Em(cek, { type: 1 })),
    'first byte nonzero': (() => {
      const em = pkcs1Em(cek);
      em[0] = 1; // still < n for a 2048-bit modulus whose top byte is >= 0x80
      return rawEncrypt(pub, em);
    })(),
    'zero inside the first 8 padding bytes': rawEncrypt(pub, pkcs1Em(cek, { psZeroAt: 5 })),
    'missing separator': rawEncrypt(pub, pkcs1Em(cek, { sep: 0x55 })),
    'key shorter than expected (16 for 24)': rsaEncryptPkcs1v15(pub, randomBytes(16)),
    'key longer than expected (32 for 24)': rsaEncryptPkcs1v15(pub, randomBytes(32)),
    'ciphertext longer than the modulus': randomBytes(K + 1),
    'ciphertext >= n': Buffer.alloc(K, 0xff),
    'empty ciphertext': Buffer.alloc(0),
    'random bytes': randomBytes(K).fill(0, 0, 1),
  };
  for (const [name, ek] of Object.entries(bad)) {
    const L = name.includes('expected') ? 24 : 16;
    const out = kt.decryptPkcs1v15(ek, L);
    assert.equal(out.length, L, name);
    assert.deepEqual(out, kt.syntheticKey(ek, L), `${name}: synthetic key expected`);
    assert.notDeepEqual(out.subarray(0, 16), cek, name);
    assert.deepEqual(kt.decryptPkcs1v15(ek, L), out, `${name}: deterministic`);
  }
});

test('synthetic keys: per ciphertext, per private key, and not all-zero', () => {
  const e1 = rawEncrypt(pub, pkcs1Em(randomBytes(16), { type: 1 }));
  const e2 = rawEncrypt(pub, pkcs1Em(randomBytes(16), { type: 1 }));
  const s1 = kt.decryptPkcs1v15(e1, 32);
  const s2 = kt.decryptPkcs1v15(e2, 32);
  assert.notDeepEqual(s1, s2);
  assert.notDeepEqual(s1, Buffer.alloc(32));
  // a second transport on the same key derives the same secret; another key a different one
  assert.deepEqual(new RsaKeyTransport(key).decryptPkcs1v15(e1, 32), s1);
  assert.notDeepEqual(new RsaKeyTransport(pooledRsaKey(1)).syntheticKey(e1, 32), s1);
  // lengths beyond one HMAC block still work and prefix-agree
  assert.deepEqual(kt.syntheticKey(e1, 40).subarray(0, 32), kt.syntheticKey(e1, 32));
});

test('OAEP (SHA-1 and SHA-256) decrypts; failures give the synthetic key', () => {
  for (const h of ['sha1', 'sha256'] as const) {
    const cek = randomBytes(32);
    const ek = rsaEncryptOaep(pub, cek, h);
    assert.deepEqual(kt.decryptOaep(ek, h, 32), cek);
    const other = h === 'sha1' ? 'sha256' : 'sha1';
    assert.deepEqual(kt.decryptOaep(ek, other, 32), kt.syntheticKey(ek, 32), 'wrong hash');
    assert.deepEqual(kt.decryptOaep(ek, h, 24), kt.syntheticKey(ek, 24), 'wrong length');
    const t = Buffer.from(ek);
    t[100]! ^= 1;
    assert.deepEqual(kt.decryptOaep(t, h, 32), kt.syntheticKey(t, 32), 'tampered');
    assert.deepEqual(kt.decryptOaep(randomBytes(K + 1), h, 32).length, 32);
  }
});

test('RsaKeyTransport refuses non-RSA or public keys and impossible key lengths', () => {
  assert.throws(() => new RsaKeyTransport(pub), TypeError);
  assert.throws(() => kt.decryptPkcs1v15(Buffer.alloc(K), K - 10), RangeError);
  assert.throws(() => kt.decryptPkcs1v15(Buffer.alloc(K), 0), RangeError);
});

/** The software key behind the seam, with its private operations replaced as a token's would be. */
function tokenLike(over: Partial<PrivateKeyHandle>): PrivateKeyHandle {
  const h = keyHandle(key);
  return {
    publicKey: h.publicKey,
    type: h.type,
    modulusBytes: h.modulusBytes,
    label: 'token-like',
    sign: (d, data) => h.sign(d, data),
    rejectionSecret: () => h.rejectionSecret(),
    ...over,
  };
}

test('OAEP decoded here over raw RSA (token keys) agrees with OpenSSL (software keys)', () => {
  const rawOnly = new RsaKeyTransport(
    tokenLike({ rsaDecryptRaw: (c) => privateDecrypt({ key, padding: constants.RSA_NO_PADDING }, c) }),
  );
  for (const h of ['sha1', 'sha256', 'sha384', 'sha512'] as const) {
    for (const L of [16, 24, 32]) {
      const cek = randomBytes(L);
      const ek = rsaEncryptOaep(pub, cek, h);
      assert.deepEqual(rawOnly.decryptOaep(ek, h, L), cek, `${h}/${L}`);
      // A valid OAEP block of another length, another hash, a tampered block: synthetic, as in OpenSSL's path.
      const other = L === 16 ? 24 : 16;
      assert.deepEqual(rawOnly.decryptOaep(ek, h, other), rawOnly.syntheticKey(ek, other));
      assert.deepEqual(rawOnly.decryptOaep(ek, h, other), kt.decryptOaep(ek, h, other));
      assert.deepEqual(rawOnly.decryptOaep(ek, h === 'sha1' ? 'sha256' : 'sha1', L), kt.syntheticKey(ek, L));
      const t = Buffer.from(ek);
      t[10]! ^= 1;
      assert.deepEqual(rawOnly.decryptOaep(t, h, L), kt.decryptOaep(t, h, L));
    }
  }
  // A length that can never fit (public): synthetic, without touching the key.
  const ek = rsaEncryptOaep(pub, randomBytes(16), 'sha512');
  assert.deepEqual(rawOnly.decryptOaep(ek, 'sha512', K - 2 * 64 - 1), kt.syntheticKey(ek, K - 2 * 64 - 1));
  assert.deepEqual(rawOnly.decryptOaep(randomBytes(K + 1), 'sha256', 16).length, 16);
});

test('a key that cannot be reached is not a decryption outcome: KeyUnavailableError propagates', () => {
  const gone = new RsaKeyTransport(
    tokenLike({
      rsaDecryptRaw: () => {
        throw new KeyUnavailableError('token removed');
      },
    }),
  );
  const ek = rsaEncryptPkcs1v15(pub, randomBytes(16));
  assert.throws(() => gone.decryptPkcs1v15(ek, 16), KeyUnavailableError);
  assert.throws(
    () => gone.decryptOaep(rsaEncryptOaep(pub, randomBytes(16), 'sha256'), 'sha256', 16),
    KeyUnavailableError,
  );
  // A refused ciphertext (the handle throws anything else) is: the synthetic key, no throw.
  const refusing = new RsaKeyTransport(
    tokenLike({
      rsaDecryptRaw: () => {
        throw new RangeError('ciphertext not below the modulus');
      },
    }),
  );
  assert.deepEqual(refusing.decryptPkcs1v15(ek, 16), refusing.syntheticKey(ek, 16));
});

test('fallback for tokens without raw RSA: the token unpads, every failure gives the synthetic key', () => {
  const padded = new RsaKeyTransport(
    tokenLike({
      rsaDecryptPadded: (input, p) => {
        assert.equal(p.scheme, 'oaep');
        return privateDecrypt(
          { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: p.scheme === 'oaep' ? p.hash : 'sha1' },
          input,
        );
      },
    }),
  );
  const cek = randomBytes(32);
  const ek = rsaEncryptOaep(pub, cek, 'sha256');
  assert.deepEqual(padded.decryptOaep(ek, 'sha256', 32), cek);
  assert.deepEqual(padded.decryptOaep(ek, 'sha1', 32), padded.syntheticKey(ek, 32), 'padding error');
  assert.deepEqual(padded.decryptOaep(ek, 'sha256', 16), padded.syntheticKey(ek, 16), 'wrong length');
  // Same kdk as the software path: the secret comes from the key, not from the mechanism.
  assert.deepEqual(padded.syntheticKey(ek, 32), kt.syntheticKey(ek, 32));
});
