import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { publicRandomBytes } from '../../src/crypto/random-pool.js';
import { digestHex, digestOf } from '../../src/crypto/hash.js';
import { randomSerial } from '../../src/ca/serial.js';

test('publicRandomBytes: the requested length, never the same bytes twice, across pool refills', () => {
  const seen = new Set<string>();
  // 4 KiB pool: 2,000 × 16 bytes is several refills, plus odd sizes that straddle the end.
  for (let i = 0; i < 2000; i++) {
    const n = i % 7 === 0 ? 13 : 16;
    const b = publicRandomBytes(n);
    assert.equal(b.length, n);
    const k = b.toString('hex');
    assert.ok(!seen.has(k), 'a value was handed out twice');
    seen.add(k);
  }
  // Larger requests bypass the pool.
  assert.equal(publicRandomBytes(100).length, 100);
  assert.notDeepEqual(publicRandomBytes(100), publicRandomBytes(100));
});

test('publicRandomBytes: each result is a copy (changing it changes nothing handed out later)', () => {
  const a = publicRandomBytes(16);
  const before = Buffer.from(a);
  const b = publicRandomBytes(16);
  b.fill(0);
  assert.deepEqual(a, before);
  const c = publicRandomBytes(16);
  assert.notDeepEqual(c, Buffer.alloc(16));
  assert.notDeepEqual(c, a);
});

test('randomSerial from the pool: 16 octets, top bit clear, not all zero, distinct', () => {
  const serials = new Set<string>();
  for (let i = 0; i < 500; i++) {
    const s = randomSerial();
    assert.equal(s.length, 16);
    assert.equal(s[0]! & 0x80, 0);
    assert.ok(s.some((x) => x !== 0));
    serials.add(s.toString('hex'));
  }
  assert.equal(serials.size, 500);
});

test('digestOf / digestHex equal createHash for every digest an enrollment uses', () => {
  const data = Buffer.from('scepter one-shot digest');
  for (const alg of ['sha1', 'sha256', 'sha384', 'sha512']) {
    assert.deepEqual(digestOf(alg, data), createHash(alg).update(data).digest());
    assert.equal(digestHex(alg, data), createHash(alg).update(data).digest('hex'));
  }
  assert.deepEqual(digestOf('sha256', Buffer.alloc(0)), createHash('sha256').digest());
});
