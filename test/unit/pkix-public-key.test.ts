/**
 * publicKeyFromSpki: RSA keys imported through their RSAPublicKey (the fast path) are the same
 * keys node's SPKI import gives; other key types take the SPKI path; results are shared.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { publicKeyFromSpki } from '../../src/pkix/public-key.js';
import { pooledRsaKey } from '../helpers/pki.js';

test('an RSA SPKI imports to the same key, verifies signatures and is cached', () => {
  const priv = pooledRsaKey(0);
  const spki = createPublicKey(priv).export({ type: 'spki', format: 'der' });
  const key = publicKeyFromSpki(spki);
  assert.equal(key.asymmetricKeyType, 'rsa');
  assert.ok(key.export({ type: 'spki', format: 'der' }).equals(spki));
  const sig = sign('sha256', Buffer.from('hello'), priv);
  assert.ok(verify('sha256', Buffer.from('hello'), key, sig));
  assert.equal(publicKeyFromSpki(Buffer.from(spki)), key, 'the same KeyObject for the same SPKI');
});

test('EC and malformed SPKIs: EC through the SPKI import, garbage throws', () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
  const spki = ec.export({ type: 'spki', format: 'der' });
  assert.equal(publicKeyFromSpki(spki).asymmetricKeyType, 'ec');
  assert.throws(() => publicKeyFromSpki(Buffer.from('3003020100', 'hex')));
  const rsaSpki = createPublicKey(pooledRsaKey(1)).export({ type: 'spki', format: 'der' });
  const broken = Buffer.from(rsaSpki);
  const at = broken.length - 40; // inside the modulus: still DER, no longer the same key
  broken[at] = broken[at]! ^ 0xff;
  const other = publicKeyFromSpki(broken);
  assert.ok(!other.export({ type: 'spki', format: 'der' }).equals(rsaSpki));
});
