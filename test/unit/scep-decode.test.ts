import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as der from '../../src/asn1/writer.js';
import { OID } from '../../src/asn1/oids.js';
import {
  decodeGetMessage,
  decodePkiRequest,
  encodeGetMessage,
  FailInfo,
  MessageType,
  openEnvelope,
  openEnvelopeAs,
  ScepError,
  ENVELOPE_FAILURE_TEXT,
  type PkiRequest,
} from '../../src/scep/index.js';
import { RsaKeyTransport } from '../../src/crypto/key-transport.js';
import { makeSelfSigned, pooledRsaKey } from '../helpers/pki.js';
import {
  attr,
  envelope,
  fixture,
  makeRequest,
  rawSignedData,
  requestAttrs,
  toBer,
} from '../helpers/scep-fixtures.js';

function undecodable(fn: () => unknown, re?: RegExp): void {
  assert.throws(
    fn,
    (e: unknown) => e instanceof ScepError && e.kind === 'undecodable' && (!re || re.test(e.message)),
  );
}

function failed(req: PkiRequest, fi: FailInfo, re?: RegExp): void {
  assert.ok(req.failure, 'expected a failure');
  assert.equal(req.failure.failInfo, fi, req.failure.text);
  if (re) assert.match(req.failure.text, re);
  // A CertRep can still be built: the echo fields are there.
  assert.ok(req.transactionId.length > 0);
  assert.ok(req.senderNonce.length >= 8);
}

test('case 14: indefinite-length BER outer with a chunked constructed eContent decodes', () => {
  const f = fixture();
  const { der: d, senderNonce } = makeRequest({ transactionId: 'ber-1' });
  const ber = toBer(d, 97);
  assert.equal(ber[1], 0x80, 'outer is indefinite');
  const req = decodePkiRequest(ber);
  assert.equal(req.failure, undefined, req.failure?.text);
  assert.ok(req.senderNonce.equals(senderNonce));
  assert.ok(openEnvelope(req, [f.caRecipient]).content.equals(f.csr));
});

test('case 15: trailing bytes, empty input, garbage and truncation are undecodable', () => {
  const { der: d } = makeRequest();
  undecodable(() => decodePkiRequest(Buffer.concat([d, Buffer.from([0])])));
  undecodable(() => decodePkiRequest(Buffer.alloc(0)));
  undecodable(() => decodePkiRequest(Buffer.from('not a pki message')));
  undecodable(() => decodePkiRequest(d.subarray(0, d.length - 1)));
  undecodable(() => decodePkiRequest(Buffer.alloc(300 * 1024, 0x30)), /larger/);
});

test('case 19: foreign signature, bad messageDigest, content-type mismatch → badMessageCheck', () => {
  const content = envelope();
  const other = pooledRsaKey(2);
  failed(
    decodePkiRequest(rawSignedData({ attrs: requestAttrs(), content, signingKey: other })),
    FailInfo.badMessageCheck,
  );
  failed(
    decodePkiRequest(rawSignedData({ attrs: requestAttrs(), content, messageDigest: Buffer.alloc(32) })),
    FailInfo.badMessageCheck,
    /digest/,
  );
  // eContentType ≠ id-data (with a consistent content-type attribute, so only our check fires).
  failed(
    decodePkiRequest(rawSignedData({ attrs: requestAttrs(), content, eContentType: OID.envelopedData })),
    FailInfo.badMessageCheck,
    /id-data/,
  );
  // Tampered envelope byte: messageDigest no longer matches.
  const { der: d } = makeRequest();
  const env = decodePkiRequest(d).envelope!;
  const i = d.indexOf(env) + env.length - 5; // inside the encrypted content
  const t = Buffer.from(d);
  t[i] = t[i]! ^ 0x01;
  const req = decodePkiRequest(t);
  failed(req, FailInfo.badMessageCheck);
  assert.throws(
    () => openEnvelope(req, [fixture().caRecipient]),
    (e: unknown) => e instanceof ScepError && e.failInfo === FailInfo.badMessageCheck,
  );
});

test('case 20: missing transactionID or senderNonce → undecodable; duplicates → badRequest', () => {
  const content = envelope();
  const [mt, tid, nonce] = requestAttrs();
  undecodable(() => decodePkiRequest(rawSignedData({ attrs: [mt!, nonce!], content })), /transactionID/);
  undecodable(() => decodePkiRequest(rawSignedData({ attrs: [mt!, tid!], content })), /senderNonce/);
  // No signer certificate in the message.
  const stranger = makeSelfSigned({ subject: 'CN=stranger', key: pooledRsaKey(2) });
  const noCert = rawSignedData({
    attrs: requestAttrs(),
    content,
    signerCert: stranger,
    certificates: [fixture().client.certDer],
  });
  undecodable(() => decodePkiRequest(noCert), /signer certificate/);
  // Duplicate attribute (two attributes) and two values in one attribute.
  failed(
    decodePkiRequest(
      rawSignedData({ attrs: [...requestAttrs(), attr(OID.scepMessageType, der.printable('19'))], content }),
    ),
    FailInfo.badRequest,
    /duplicate/,
  );
  failed(
    decodePkiRequest(
      rawSignedData({
        attrs: [mt!, nonce!, attr(OID.scepTransactionId, der.printable('a'), der.printable('b'))],
        content,
      }),
    ),
    FailInfo.badRequest,
    /one value/,
  );
  // transactionID too long, nonce out of range → undecodable (documented decision).
  undecodable(() =>
    decodePkiRequest(rawSignedData({ attrs: requestAttrs({ transactionId: 'x'.repeat(129) }), content })),
  );
  undecodable(() =>
    decodePkiRequest(rawSignedData({ attrs: requestAttrs({ nonce: Buffer.alloc(4) }), content })),
  );
  undecodable(() =>
    decodePkiRequest(rawSignedData({ attrs: requestAttrs({ nonce: Buffer.alloc(65) }), content })),
  );
});

test('case 21: UTF8String/IA5String transactionID and 8/32/64-byte nonces are accepted verbatim', () => {
  const content = envelope();
  for (const v of [der.utf8('tx-ütf8'), der.ia5('tx-ia5')]) {
    const req = decodePkiRequest(
      rawSignedData({
        attrs: [
          attr(OID.scepMessageType, der.printable('19')),
          attr(OID.scepTransactionId, v),
          attr(OID.scepSenderNonce, der.octetString(Buffer.alloc(16, 1))),
        ],
        content,
      }),
    );
    assert.equal(req.failure, undefined);
    assert.match(req.transactionId, /^tx-(ütf8|ia5)$/);
  }
  for (const n of [8, 32, 64]) {
    const nonce = Buffer.alloc(n, n);
    const req = decodePkiRequest(rawSignedData({ attrs: requestAttrs({ nonce }), content }));
    assert.equal(req.failure, undefined);
    assert.ok(req.senderNonce.equals(nonce));
  }
});

test('case 22: messageType 18, 99, abc, 3 → badRequest', () => {
  const content = envelope();
  for (const mt of ['18', '99', 'abc', '3']) {
    failed(
      decodePkiRequest(rawSignedData({ attrs: requestAttrs({ messageType: mt }), content })),
      FailInfo.badRequest,
    );
  }
  const ok = decodePkiRequest(rawSignedData({ attrs: requestAttrs({ messageType: '20' }), content }));
  assert.equal(ok.messageType, MessageType.CertPoll);
});

test('case 23: MD5 or an unknown digest → badAlg, reply digest falls back to sha256', () => {
  const content = envelope();
  const md5 = decodePkiRequest(
    rawSignedData({ attrs: requestAttrs(), content, hash: 'md5', digestOid: OID.md5 }),
  );
  failed(md5, FailInfo.badAlg, /MD5/);
  assert.equal(md5.digest, 'sha256');
  failed(
    decodePkiRequest(rawSignedData({ attrs: requestAttrs(), content, digestOid: '1.2.3.4' })),
    FailInfo.badAlg,
  );
});

test('case 23: single-DES envelope → badAlg naming --allow-single-des; decrypts when allowed', () => {
  const f = fixture();
  const req = decodePkiRequest(rawSignedData({ attrs: requestAttrs(), content: envelope('des') }));
  assert.equal(req.failure, undefined);
  assert.throws(
    () => openEnvelope(req, [f.caRecipient]),
    (e: unknown) =>
      e instanceof ScepError && e.failInfo === FailInfo.badAlg && /--allow-single-des/.test(e.message),
  );
  const out = openEnvelope(req, [f.caRecipient], { allowSingleDes: true });
  assert.equal(out.cipher, 'des');
  assert.ok(out.content.equals(f.csr));
});

test('case 28/29: foreign recipient → badRequest; plaintext CSR content → badRequest', () => {
  const f = fixture();
  const other = makeSelfSigned({ subject: 'CN=Other CA', key: pooledRsaKey(2), ca: true });
  const { der: d } = makeRequest({ recipient: other.cert });
  assert.throws(
    () => openEnvelope(decodePkiRequest(d), [f.caRecipient]),
    (e: unknown) => e instanceof ScepError && e.failInfo === FailInfo.badRequest,
  );
  failed(
    decodePkiRequest(rawSignedData({ attrs: requestAttrs(), content: f.csr })),
    FailInfo.badRequest,
    /EnvelopedData/,
  );
  failed(decodePkiRequest(rawSignedData({ attrs: requestAttrs() })), FailInfo.badRequest, /missing/);
});

test('wrong-key decryption gives the uniform badMessageCheck text', () => {
  const f = fixture();
  const req = decodePkiRequest(makeRequest().der);
  // Same certificate, different private key: the recipient matches but the key is wrong.
  const wrong = { cert: f.ca.cert, transport: new RsaKeyTransport(pooledRsaKey(2)) };
  assert.throws(
    () => openEnvelope(req, [wrong]),
    (e: unknown) =>
      e instanceof ScepError &&
      e.failInfo === FailInfo.badMessageCheck &&
      e.message === ENVELOPE_FAILURE_TEXT,
  );
});

test('GET message decoding tolerates real-client mangling and refuses garbage', () => {
  const { der: d } = makeRequest();
  const b64 = d.toString('base64');
  assert.ok(decodeGetMessage(decodeURIComponent(encodeGetMessage(d))).equals(d));
  assert.ok(decodeGetMessage(b64.replace(/\+/g, ' ')).equals(d), '+ arrived as space');
  assert.ok(decodeGetMessage(b64.replace(/.{64}/g, '$&\n')).equals(d), 'newlines');
  assert.ok(decodeGetMessage(b64.replace(/.{64}/g, '$&%0A')).equals(d), '%0A leftovers');
  assert.ok(decodeGetMessage(b64.replace(/.{64}/g, '$&\r\n')).equals(d), 'CRLF');
  assert.ok(decodeGetMessage(d.toString('base64url')).equals(d), 'base64url without padding');
  assert.ok(decodeGetMessage(b64.replace(/=+$/, '')).equals(d), 'missing padding');
  const odd = Buffer.from([1, 2, 3, 4]);
  assert.ok(decodeGetMessage('AQIDBA').equals(odd));
  assert.ok(decodeGetMessage('AQIDBA==').equals(odd));
  for (const bad of ['', '!!!!', 'AQID*A==', 'A', 'AQIDBA===', 'AQ=DBA==', 'x'.repeat(800_000)]) {
    undecodable(() => decodeGetMessage(bad));
  }
});

test('every envelope failure of openEnvelopeAs is the one prepared error, built without a stack trace', () => {
  const f = fixture();
  const req = decodePkiRequest(makeRequest().der);
  const wrong = { cert: f.ca.cert, transport: new RsaKeyTransport(pooledRsaKey(2)) };
  const limit = Error.stackTraceLimit;
  const thrown: unknown[] = [];
  // A wrong key (garbage CEK) and a good key with a content parser that refuses: same error.
  for (const [ours, parse] of [
    [[wrong], (b: Buffer) => b],
    [
      [{ cert: f.ca.cert, transport: new RsaKeyTransport(f.ca.key) }],
      () => {
        throw new Error('unparsable');
      },
    ],
  ] as const) {
    try {
      openEnvelopeAs(req, [...ours], parse);
    } catch (e) {
      thrown.push(e);
    }
  }
  assert.equal(thrown.length, 2);
  for (const e of thrown) {
    assert.ok(e instanceof ScepError);
    assert.equal(e.kind, 'failure');
    assert.equal(e.failInfo, FailInfo.badMessageCheck);
    assert.equal(e.message, ENVELOPE_FAILURE_TEXT);
    // No captured frames: the stack is the first line only.
    assert.equal(e.stack, `ScepError: ${ENVELOPE_FAILURE_TEXT}`);
  }
  assert.equal(Error.stackTraceLimit, limit, 'the stack trace limit is restored');
  // Other ScepErrors keep their stack.
  assert.match(ScepError.failure(FailInfo.badRequest, 'x').stack ?? '', /\n\s+at /);
});
