/**
 * Mutation fuzzing of the CMS decoders: random byte flips, truncations and insertions in
 * real messages must only ever produce CmsError (or a successful parse), and a decrypt of a
 * parsed envelope only CmsError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import * as der from '../../src/asn1/writer.js';
import { OID } from '../../src/asn1/oids.js';
import { PWRI_LIMITS } from '../../src/crypto/pwri.js';
import {
  buildDegenerate,
  buildEnvelopedData,
  buildSignedData,
  CmsError,
  decryptEnvelopedData,
  decryptEnvelopedDataAs,
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

// ---- EC recipients: PasswordRecipientInfo (RFC 3211) and KeyAgreeRecipientInfo (RFC 5753) ----

const ecKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
const ecMe = makeSelfSigned({ subject: 'CN=fuzz ec', key: ecKey });
const PASSWORD = Buffer.from('fuzz-challenge');

/** An EnvelopedData with one hand-made PasswordRecipientInfo (PBKDF2 parameters as given). */
function pwriEnvelope(o: { iterations: der.Der; salt?: Buffer; wrapped?: Buffer; prf?: string }): Buffer {
  const pbkdf2 = der.seq(
    der.octetString(o.salt ?? Buffer.alloc(8, 1)),
    o.iterations,
    ...(o.prf ? [der.algorithm(o.prf, der.nul())] : []),
  );
  const pwri = der.implicitConstructed(3, [
    der.int(0),
    der.implicitConstructed(0, [der.oid(OID.pbkdf2), pbkdf2]),
    der.algorithm(OID.pwriKek, der.algorithm(OID.aes256Cbc, der.octetString(Buffer.alloc(16)))),
    der.octetString(o.wrapped ?? Buffer.alloc(48)),
  ]);
  const env = der.seq(
    der.int(3),
    der.set(pwri),
    der.seq(
      der.oid(OID.data),
      der.algorithm(OID.aes256Cbc, der.octetString(Buffer.alloc(16))),
      der.implicitPrimitive(0, Buffer.alloc(32)),
    ),
  );
  return der.encode(der.seq(der.oid(OID.envelopedData), der.explicit(0, env)));
}

function openAs(input: Buffer, password: Buffer | null = PASSWORD) {
  return decryptEnvelopedDataAs(parseEnvelopedData(input), {
    cert: ecMe.cert,
    key: ecMe.key,
    ...(password ? { password } : {}),
  });
}

function cmsError(code: string, text?: RegExp) {
  return (e: unknown) =>
    e instanceof CmsError && e.code === code && (text === undefined || text.test(e.message));
}

test('PWRI: an iteration count above the bound is refused before any PBKDF2 work', () => {
  // 10^9 iterations would hold a CPU for minutes; 2^64 does not even fit a number.
  for (const iterations of [
    der.int(1_000_000_000),
    der.int(2n ** 64n),
    der.int(PWRI_LIMITS.maxIterations + 1),
  ]) {
    assert.throws(() => openAs(pwriEnvelope({ iterations })), cmsError('badAlg', /iteration count/));
  }
  assert.throws(
    () => openAs(pwriEnvelope({ iterations: der.int(0) })),
    cmsError('badAlg', /iteration count/),
  );
  assert.throws(
    () => openAs(pwriEnvelope({ iterations: der.int(-5) })),
    cmsError('badAlg', /iteration count/),
  );
});

test('PWRI: bounded salt and wrapped-key lengths, known PRFs only, a password needed', () => {
  const iterations = der.int(1);
  assert.throws(
    () => openAs(pwriEnvelope({ iterations, salt: Buffer.alloc(PWRI_LIMITS.maxSaltBytes + 1) })),
    cmsError('malformed', /salt/),
  );
  assert.throws(
    () => openAs(pwriEnvelope({ iterations, wrapped: Buffer.alloc(PWRI_LIMITS.maxWrappedKeyBytes + 16) })),
    cmsError('malformed', /wrapped key/),
  );
  assert.throws(() => openAs(pwriEnvelope({ iterations, prf: OID.md5 })), cmsError('badAlg', /PRF/));
  assert.throws(() => openAs(pwriEnvelope({ iterations }), null), cmsError('badRequest', /password/));
  // Garbage wrapped key under a valid shape: the one uniform decryption failure.
  assert.throws(() => openAs(pwriEnvelope({ iterations })), cmsError('badMessageCheck'));
});

test('PWRI and KARI: a wrong password or a wrong key gives the one uniform failure', () => {
  const pw = buildEnvelopedData({ content: Buffer.from('x'), password: PASSWORD, cipher: 'aes128' });
  assert.equal(openAs(pw).content.toString(), 'x');
  assert.throws(() => openAs(pw, Buffer.from('wrong')), cmsError('badMessageCheck'));
  const other = makeSelfSigned({
    subject: 'CN=fuzz ec',
    key: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey,
  });
  const kari = buildEnvelopedData({ content: Buffer.from('y'), recipient: ecMe.cert, cipher: 'aes256' });
  assert.equal(openAs(kari, null).content.toString(), 'y');
  // Another certificate (same subject, other key) is not named by the recipient.
  assert.throws(
    () => decryptEnvelopedDataAs(parseEnvelopedData(kari), { cert: other.cert, key: other.key }),
    cmsError('badRequest'),
  );
});

test('KARI: an originator point off the curve or of the wrong size is refused', () => {
  const kari = buildEnvelopedData({ content: Buffer.from('z'), recipient: ecMe.cert, cipher: 'aes128' });
  const env = parseEnvelopedData(kari);
  const ri = env.agreeRecipients[0]!;
  const bad = [
    Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 1)]), // not on P-256
    Buffer.alloc(33, 2), // compressed form
    Buffer.alloc(200, 4),
  ];
  for (const point of bad) {
    ri.originatorPoint = point;
    assert.throws(
      () => decryptEnvelopedDataAs(env, { cert: ecMe.cert, key: ecMe.key }),
      cmsError('malformed'),
    );
  }
  // A recipient key on a refused curve (P-521): badAlg, no ECDH.
  const p521 = generateKeyPairSync('ec', { namedCurve: 'secp521r1' }).privateKey;
  const fresh = parseEnvelopedData(kari);
  assert.throws(
    () => decryptEnvelopedDataAs(fresh, { cert: ecMe.cert, key: p521 }),
    cmsError('badAlg', /P-256 or P-384/),
  );
});

test('mutated PWRI and KARI envelopes: parse and decrypt throw only CmsError', () => {
  const seeds = [
    pwriEnvelope({ iterations: der.int(3) }),
    buildEnvelopedData({ content: Buffer.from('fuzz kari'), recipient: ecMe.cert, cipher: 'aes128' }),
  ];
  const next = rng(0xec0c);
  for (let i = 0; i < 400; i++) {
    const input = mutate(seeds[i % seeds.length]!, next);
    try {
      openAs(input);
    } catch (e) {
      assert.ok(e instanceof CmsError, `iteration ${i}: ${String(e)}`);
    }
  }
});
