import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createCipheriv, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { ContentInfo, EnvelopedData as PEnvelopedData, id_envelopedData } from '@peculiar/asn1-cms';
import * as der from '../../src/asn1/writer.js';
import { OID } from '../../src/asn1/oids.js';
import {
  buildEnvelopedData,
  CmsError,
  DECRYPT_FAILED_MESSAGE,
  decryptEnvelopedData,
  parseEnvelopedData,
  type Decrypter,
  type EnvelopedData,
  type KeyTransport,
} from '../../src/cms/index.js';
import { RsaKeyTransport, rsaEncryptPkcs1v15 } from '../../src/crypto/key-transport.js';
import type { CipherName } from '../../src/crypto/algorithms.js';
import { makeSelfSigned, pooledRsaKey } from '../helpers/pki.js';

const ours = makeSelfSigned({ subject: 'CN=scepter RA', key: pooledRsaKey(0) });
const foreign = makeSelfSigned({ subject: 'CN=somebody else', key: pooledRsaKey(1) });
const decrypters: Decrypter[] = [{ cert: ours.cert, transport: new RsaKeyTransport(ours.key) }];

function cmsCode(code: string, msg?: RegExp) {
  return (e: unknown) => e instanceof CmsError && e.code === code && (!msg || msg.test(e.message));
}

test('build → parse → decrypt for every cipher and key transport', () => {
  const content = randomBytes(300);
  for (const cipher of ['aes128', 'aes192', 'aes256', 'des3'] as CipherName[]) {
    for (const keyTransport of ['rsa', 'oaep-sha1', 'oaep-sha256'] as KeyTransport[]) {
      const env = parseEnvelopedData(
        buildEnvelopedData({ content, recipient: ours.cert, cipher, keyTransport }),
      );
      assert.equal(env.recipients.length, 1);
      assert.equal(env.contentType, OID.data);
      const out = decryptEnvelopedData(env, decrypters);
      assert.equal(out.cipher, cipher);
      assert.deepEqual(out.content, content);
      if (keyTransport !== 'rsa') assert.equal(env.recipients[0]!.oaepHash, keyTransport.slice(5));
    }
  }
});

test('@peculiar/asn1-cms agrees with our EnvelopedData fields', () => {
  const bytes = buildEnvelopedData({
    content: Buffer.from('x'),
    recipient: ours.cert,
    cipher: 'aes256',
    keyTransport: 'oaep-sha256',
  });
  const ci = AsnConvert.parse(bytes, ContentInfo);
  assert.equal(ci.contentType, id_envelopedData);
  const pe = AsnConvert.parse(ci.content, PEnvelopedData);
  const env = parseEnvelopedData(bytes);
  assert.equal(pe.version, 0);
  const ktri = pe.recipientInfos[0]!.ktri!;
  assert.equal(ktri.version, 0);
  assert.deepEqual(Buffer.from(ktri.rid.issuerAndSerialNumber!.serialNumber), ours.cert.serial);
  assert.equal(ktri.keyEncryptionAlgorithm.algorithm, OID.rsaesOaep);
  assert.deepEqual(Buffer.from(ktri.encryptedKey.buffer), env.recipients[0]!.encryptedKey);
  const eci = pe.encryptedContentInfo;
  assert.equal(eci.contentEncryptionAlgorithm.algorithm, OID.aes256Cbc);
  assert.equal(env.contentEncryptionAlgorithm, OID.aes256Cbc);
  assert.equal(env.contentEncryptionParams!.length, 16);
  assert.deepEqual(Buffer.from(eci.encryptedContent!.value!.buffer), env.encryptedContent);
});

test('foreign recipient → badRequest; unsupported algorithms → badAlg', () => {
  const env = parseEnvelopedData(
    buildEnvelopedData({ content: Buffer.from('x'), recipient: foreign.cert, cipher: 'aes128' }),
  );
  assert.throws(() => decryptEnvelopedData(env, decrypters), cmsCode('badRequest'));
  // not for us outranks an algorithm we would refuse
  const foreignDes = parseEnvelopedData(
    buildEnvelopedData({
      content: Buffer.from('x'),
      recipient: foreign.cert,
      cipher: 'des',
      allowSingleDes: true,
    }),
  );
  assert.throws(() => decryptEnvelopedData(foreignDes, decrypters), cmsCode('badRequest'));
  const mine = parseEnvelopedData(
    buildEnvelopedData({ content: Buffer.from('x'), recipient: ours.cert, cipher: 'aes128' }),
  );
  assert.throws(
    () => decryptEnvelopedData({ ...mine, contentEncryptionAlgorithm: OID.rc2Cbc }, decrypters),
    cmsCode('badAlg', /RC2/),
  );
  const r0 = mine.recipients[0]!;
  assert.throws(
    () =>
      decryptEnvelopedData(
        { ...mine, recipients: [{ ...r0, keyEncryptionAlgorithm: '1.2.840.113549.1.1.10' }] },
        decrypters,
      ),
    cmsCode('badAlg', /key transport/),
  );
});

test('OAEP with a hash/MGF1 mix or a label → badAlg', () => {
  const sha256 = der.algorithm(OID.sha256);
  const sha1 = der.algorithm(OID.sha1);
  const paramsCases = {
    'SHA-256 with MGF1-SHA-1': der.seq(
      der.explicit(0, sha256),
      der.explicit(1, der.algorithm(OID.mgf1, sha1)),
    ),
    'SHA-256 with default MGF1 (SHA-1)': der.seq(der.explicit(0, sha256)),
    'non-empty label': der.seq(
      der.explicit(2, der.algorithm(OID.pSpecified, der.octetString(Buffer.from('L')))),
    ),
  };
  for (const [name, params] of Object.entries(paramsCases)) {
    const bytes = oaepEnvelope(params);
    const env = parseEnvelopedData(bytes);
    assert.equal(env.recipients[0]!.oaepHash, undefined, name);
    assert.throws(() => decryptEnvelopedData(env, decrypters), cmsCode('badAlg', /OAEP/), name);
  }
  // explicit defaults (SHA-1 / MGF1-SHA-1 / empty label) are fine
  const explicitDefaults = der.seq(
    der.explicit(0, der.algorithm(OID.sha1, der.nul())),
    der.explicit(1, der.algorithm(OID.mgf1, der.algorithm(OID.sha1, der.nul()))),
    der.explicit(2, der.algorithm(OID.pSpecified, der.octetString(Buffer.alloc(0)))),
  );
  const env = parseEnvelopedData(oaepEnvelope(explicitDefaults, 'sha1'));
  assert.equal(env.recipients[0]!.oaepHash, 'sha1');
  assert.deepEqual(decryptEnvelopedData(env, decrypters).content, Buffer.from('oaep content'));
});

/** An EnvelopedData to `ours` whose OAEP parameters are `params` (key wrapped with `wrapHash`). */
function oaepEnvelope(params: der.Der, wrapHash: 'sha1' | 'sha256' = 'sha256'): Buffer {
  const cek = randomBytes(16);
  const iv = randomBytes(16);
  const c = createCipheriv('aes-128-cbc', cek, iv);
  const ct = Buffer.concat([c.update('oaep content'), c.final()]);
  const ek = publicEncrypt(
    { key: createPublicKey(ours.key), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: wrapHash },
    cek,
  );
  const ktri = der.seq(
    der.int(0),
    der.seq(ours.cert.issuerRaw, der.intRaw(ours.cert.serial)),
    der.algorithm(OID.rsaesOaep, params),
    der.octetString(ek),
  );
  const env = der.seq(
    der.int(0),
    der.set(ktri),
    der.seq(
      der.oid(OID.data),
      der.algorithm(OID.aes128Cbc, der.octetString(iv)),
      der.implicitPrimitive(0, ct),
    ),
  );
  return der.encode(der.seq(der.oid(OID.envelopedData), der.explicit(0, env)));
}

test('single DES: badAlg by default, decrypts with allowSingleDes; never built by accident', () => {
  assert.throws(
    () => buildEnvelopedData({ content: Buffer.from('x'), recipient: ours.cert, cipher: 'des' }),
    cmsCode('badAlg'),
  );
  const bytes = buildEnvelopedData({
    content: Buffer.from('legacy'),
    recipient: ours.cert,
    cipher: 'des',
    allowSingleDes: true,
  });
  const env = parseEnvelopedData(bytes);
  assert.equal(env.contentEncryptionAlgorithm, OID.desCbc);
  assert.throws(
    () => decryptEnvelopedData(env, decrypters),
    cmsCode(
      'badAlg',
      /^single DES \(1\.3\.14\.3\.2\.7\) is refused by default: start the server with --allow-single-des /,
    ),
  );
  const out = decryptEnvelopedData(env, decrypters, { allowSingleDes: true });
  assert.equal(out.cipher, 'des');
  assert.deepEqual(out.content, Buffer.from('legacy'));
});

test('IV missing or of the wrong length → malformed (public), before any RSA work', () => {
  const env = parseEnvelopedData(
    buildEnvelopedData({ content: Buffer.from('x'), recipient: ours.cert, cipher: 'aes128' }),
  );
  assert.throws(
    () => decryptEnvelopedData({ ...env, contentEncryptionParams: undefined }, decrypters),
    cmsCode('malformed'),
  );
  assert.throws(
    () => decryptEnvelopedData({ ...env, contentEncryptionParams: Buffer.alloc(8) }, decrypters),
    cmsCode('malformed'),
  );
});

/**
 * Decrypts, expecting the uniform failure. A synthetic key decrypts to valid CBC padding with
 * probability ~1/256; such an input is re-made (at most 8 times) rather than counted.
 */
function uniformFailure(make: () => EnvelopedData): CmsError {
  for (let i = 0; i < 8; i++) {
    const env = make();
    try {
      const out = decryptEnvelopedData(env, decrypters);
      assert.notDeepEqual(out.content, PLAINTEXT, 'a failure case must never yield the real plaintext');
    } catch (e) {
      assert.ok(e instanceof CmsError);
      return e;
    }
  }
  assert.fail('decryption kept succeeding for a broken envelope');
}

const PLAINTEXT = Buffer.from('the real request, 40 bytes long ........');

/** Base envelope for our cert, plus the pieces to rebuild it. */
function parts(cipher: CipherName = 'aes256') {
  return parseEnvelopedData(buildEnvelopedData({ content: PLAINTEXT, recipient: ours.cert, cipher }));
}

function withKey(env: EnvelopedData, encryptedKey: Buffer): EnvelopedData {
  return { ...env, recipients: [{ ...env.recipients[0]!, encryptedKey }] };
}

test('implicit rejection: every post-recipient failure gives the identical error (code and message)', () => {
  const pub = createPublicKey(ours.key);
  const K = 256;
  const badPadding = (): EnvelopedData => {
    const em = randomBytes(K);
    em[0] = 0;
    em[1] = 1; // block type 1: invalid for encryption
    return withKey(parts(), publicEncrypt({ key: pub, padding: constants.RSA_NO_PADDING }, em));
  };
  const wrongCekLength = (): EnvelopedData =>
    withKey(parts('aes256'), rsaEncryptPkcs1v15(pub, randomBytes(16)));
  const wrongKey = (): EnvelopedData => {
    // an envelope really encrypted to another key, relabelled with our issuer+serial
    const env = parseEnvelopedData(
      buildEnvelopedData({ content: PLAINTEXT, recipient: foreign.cert, cipher: 'aes256' }),
    );
    return {
      ...env,
      recipients: [
        { ...env.recipients[0]!, rid: { issuerRaw: ours.cert.issuerRaw, serial: ours.cert.serial } },
      ],
    };
  };
  const badCbcPadding = (): EnvelopedData => {
    const env = parts('aes256');
    const cek = randomBytes(32);
    const iv = env.contentEncryptionParams!;
    const c = createCipheriv('aes-256-cbc', cek, iv).setAutoPadding(false);
    const block = Buffer.concat([PLAINTEXT.subarray(0, 31), Buffer.from([0])]); // pad byte 0: invalid
    const ct = Buffer.concat([c.update(block), c.final()]);
    return { ...withKey(env, rsaEncryptPkcs1v15(pub, cek)), encryptedContent: ct };
  };
  const truncatedContent = (): EnvelopedData => {
    const env = parts();
    return { ...env, encryptedContent: env.encryptedContent.subarray(0, env.encryptedContent.length - 5) };
  };
  const oaepTampered = (): EnvelopedData => {
    const env = parseEnvelopedData(
      buildEnvelopedData({
        content: PLAINTEXT,
        recipient: ours.cert,
        cipher: 'aes128',
        keyTransport: 'oaep-sha256',
      }),
    );
    const ek = Buffer.from(env.recipients[0]!.encryptedKey);
    ek[7]! ^= 0x40;
    return withKey(env, ek);
  };
  const errors = Object.entries({
    badPadding,
    wrongCekLength,
    wrongKey,
    badCbcPadding,
    truncatedContent,
    oaepTampered,
  }).map(([name, make]) => ({ name, e: uniformFailure(make) }));
  for (const { name, e } of errors) {
    assert.equal(e.code, 'badMessageCheck', name);
    assert.equal(e.message, DECRYPT_FAILED_MESSAGE, name);
    assert.equal(e.name, 'CmsError', name);
    assert.deepEqual(Object.keys(e), Object.keys(errors[0]!.e), name);
  }
});

test('the same broken envelope fails the same way every time (deterministic synthetic key)', () => {
  const pub = createPublicKey(ours.key);
  const em = randomBytes(256);
  em[0] = 0;
  em[1] = 1;
  const env = withKey(parts('aes128'), publicEncrypt({ key: pub, padding: constants.RSA_NO_PADDING }, em));
  const outcome = () => {
    try {
      return decryptEnvelopedData(env, decrypters).content.toString('hex');
    } catch (e) {
      return (e as Error).message;
    }
  };
  const first = outcome();
  for (let i = 0; i < 3; i++) assert.equal(outcome(), first);
});

test('hostile EnvelopedData input is CmsError malformed; BER constructed content is joined', () => {
  const bytes = buildEnvelopedData({ content: Buffer.from('abc'), recipient: ours.cert, cipher: 'aes128' });
  for (let n = 0; n < bytes.length; n += 5) {
    assert.throws(() => parseEnvelopedData(bytes.subarray(0, n)), cmsCode('malformed'));
  }
  // Re-encode the encryptedContent as a constructed [0] of two OCTET STRING segments, indefinite length.
  const env = parseEnvelopedData(bytes);
  const ct = env.encryptedContent;
  const seg = (b: Buffer) => der.encode(der.octetString(b));
  const constructedContent = Buffer.concat([
    Buffer.from([0xa0, 0x80]),
    seg(ct.subarray(0, 5)),
    seg(ct.subarray(5)),
    Buffer.from([0, 0]),
  ]);
  const r0 = env.recipients[0]!;
  const ktri = der.seq(
    der.int(0),
    der.seq(ours.cert.issuerRaw, der.intRaw(ours.cert.serial)),
    der.algorithm(OID.rsaEncryption, der.nul()),
    der.octetString(r0.encryptedKey),
  );
  const eciHead = der.encode(
    der.seq(der.oid(OID.data), der.algorithm(OID.aes128Cbc, der.octetString(env.contentEncryptionParams!))),
  );
  // splice: SEQUENCE(indef) { oid, alg, constructed [0] } built by hand
  const eci = Buffer.concat([
    Buffer.from([0x30, 0x80]),
    eciHead.subarray(2),
    constructedContent,
    Buffer.from([0, 0]),
  ]);
  const body = Buffer.concat([
    Buffer.from([0x30, 0x80]),
    der.encode(der.int(0)),
    der.encode(der.set(ktri)),
    eci,
    Buffer.from([0, 0]),
  ]);
  const ber = Buffer.concat([
    Buffer.from([0x30, 0x80]),
    der.oid(OID.envelopedData),
    Buffer.from([0xa0, 0x80]),
    body,
    Buffer.from([0, 0, 0, 0]),
  ]);
  const back = parseEnvelopedData(ber);
  assert.deepEqual(back.encryptedContent, ct);
  assert.deepEqual(decryptEnvelopedData(back, decrypters).content, Buffer.from('abc'));
});

test('too many recipients → malformed', () => {
  const bytes = buildEnvelopedData({ content: Buffer.from('abc'), recipient: ours.cert, cipher: 'aes128' });
  const env = parseEnvelopedData(bytes);
  const r0 = env.recipients[0]!;
  const ktri = der.seq(
    der.int(0),
    der.seq(ours.cert.issuerRaw, der.intRaw(ours.cert.serial)),
    der.algorithm(OID.rsaEncryption, der.nul()),
    der.octetString(r0.encryptedKey),
  );
  const make = (n: number) =>
    der.encode(
      der.seq(
        der.oid(OID.envelopedData),
        der.explicit(
          0,
          der.seq(
            der.int(0),
            der.set(...Array.from({ length: n }, () => ktri)),
            der.seq(
              der.oid(OID.data),
              der.algorithm(OID.aes128Cbc, der.octetString(env.contentEncryptionParams!)),
              der.implicitPrimitive(0, env.encryptedContent),
            ),
          ),
        ),
      ),
    );
  assert.equal(parseEnvelopedData(make(16)).recipients.length, 16);
  assert.throws(() => parseEnvelopedData(make(17)), cmsCode('malformed', /recipients/));
});
