/**
 * Mutation fuzzing of the CMS decoders: random byte flips, truncations and insertions in
 * real messages must only ever produce CmsError (or a successful parse), and a decrypt of a
 * parsed envelope only CmsError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildDegenerate,
  buildEnvelopedData,
  buildSignedData,
  CmsError,
  decryptEnvelopedData,
  findSignerCertificate,
  parseEnvelopedData,
  parseSignedData,
  verifySignerInfo,
} from '../../src/cms/index.js';
import { RsaKeyTransport } from '../../src/crypto/key-transport.js';
import { makeSelfSigned, pooledRsaKey } from '../helpers/pki.js';

/** xorshift32: reproducible mutations (the seed is printed on failure via the message). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function mutate(src: Buffer, next: () => number): Buffer {
  const b = Buffer.from(src);
  const kind = next() % 4;
  const at = next() % b.length;
  if (kind === 0) {
    b[at] = next() & 0xff;
    return b;
  }
  if (kind === 1) return b.subarray(0, at);
  if (kind === 2) return Buffer.concat([b.subarray(0, at), Buffer.from([next() & 0xff]), b.subarray(at)]);
  // length-byte style damage: set a byte to a long-form length marker
  b[at] = 0x80 | (next() % 5);
  return b;
}

const me = makeSelfSigned({ subject: 'CN=fuzz', key: pooledRsaKey(0) });
const decrypters = [{ cert: me.cert, transport: new RsaKeyTransport(me.key) }];
const ITER = 1500;

test('mutated SignedData: parse and verify throw only CmsError', () => {
  const seeds = [
    buildSignedData({
      signerCert: me.cert,
      signerKey: me.key,
      digest: 'sha256',
      content: Buffer.from('fuzz me'),
    }),
    buildDegenerate({ certificates: [me.certDer] }),
  ];
  const next = rng(0x5eed);
  let parsed = 0;
  for (let i = 0; i < ITER; i++) {
    const input = mutate(seeds[i % seeds.length]!, next);
    try {
      const sd = parseSignedData(input);
      parsed++;
      for (const si of sd.signerInfos) {
        const c = findSignerCertificate(sd, si);
        if (c) verifySignerInfo(sd, si, c);
      }
    } catch (e) {
      assert.ok(e instanceof CmsError, `iteration ${i}: ${String(e)}`);
    }
  }
  assert.ok(parsed > 0);
});

test('mutated EnvelopedData: parse and decrypt throw only CmsError', () => {
  const seed = buildEnvelopedData({
    content: Buffer.from('fuzz me too'),
    recipient: me.cert,
    cipher: 'aes128',
  });
  const next = rng(0xe7e7);
  for (let i = 0; i < ITER; i++) {
    const input = mutate(seed, next);
    try {
      decryptEnvelopedData(parseEnvelopedData(input), decrypters);
    } catch (e) {
      assert.ok(e instanceof CmsError, `iteration ${i}: ${String(e)}`);
    }
  }
});
