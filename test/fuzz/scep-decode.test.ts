/**
 * Mutation fuzzing of the SCEP codecs at high volume, without a server: the client's
 * decodeCertRep (what `ScepClient` runs on every reply) and the server's first steps,
 * decodePkiRequest and openEnvelopeAs(parseCsr) as EnrollmentService uses them. They may only
 * ever throw ScepError and must not leak memory. The whole server path (policies, issuance,
 * HTTP) is fuzzed by scep-production.test.ts. Reproduce a run with SCEPTER_FUZZ_SEED=<seed>
 * (printed); SCEPTER_FUZZ_ITERATIONS overrides the count (default 30,000).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  buildIssuerAndSubject,
  decodeCertRep,
  decodePkiRequest,
  encodeCertRep,
  MessageType,
  openEnvelopeAs,
  PkiStatus,
  ScepError,
} from '../../src/scep/index.js';
import { parseCsr } from '../../src/pkix/csr.js';
import { makeIssued } from '../helpers/pki.js';
import { fixture, makeRequest, toBer } from '../helpers/scep-fixtures.js';

/** xorshift32: small, fast, reproducible. */
function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

function mutate(src: Buffer, next: () => number): Buffer {
  const rnd = (n: number) => next() % Math.max(1, n);
  let b = Buffer.from(src);
  const rounds = 1 + rnd(3);
  for (let k = 0; k < rounds; k++) {
    switch (rnd(7)) {
      case 0: {
        // bit flip
        const i = rnd(b.length);
        b[i] = b[i]! ^ (1 << rnd(8));
        break;
      }
      case 1: {
        // byte set to an interesting value
        const vals = [0x00, 0xff, 0x80, 0x7f, 0x30, 0xa0, 0x04, 0x24, 0x81, 0x82, 0x84];
        b[rnd(b.length)] = vals[rnd(vals.length)]!;
        break;
      }
      case 2:
        b = b.subarray(0, rnd(b.length));
        break;
      case 3: {
        // insertion
        const i = rnd(b.length + 1);
        const ins = Buffer.alloc(1 + rnd(8));
        for (let j = 0; j < ins.length; j++) ins[j] = rnd(256);
        b = Buffer.concat([b.subarray(0, i), ins, b.subarray(i)]);
        break;
      }
      case 4: {
        // length-byte tweak: find a length octet after a tag and nudge it
        for (let tries = 0; tries < 8; tries++) {
          const i = rnd(b.length - 1);
          const tag = b[i]!;
          if (tag === 0x30 || tag === 0x31 || tag === 0x04 || (tag & 0xe0) === 0xa0 || tag === 0x02) {
            const l = i + 1;
            const delta = [1, -1, 2, -2, 0x80, 0x7f][rnd(6)]!;
            b[l] = (b[l]! + delta) & 0xff;
            break;
          }
        }
        break;
      }
      case 5: {
        // chunk duplication
        const i = rnd(b.length);
        const len = 1 + rnd(64);
        const chunk = b.subarray(i, i + len);
        const at = rnd(b.length + 1);
        b = Buffer.concat([b.subarray(0, at), chunk, b.subarray(at)]);
        break;
      }
      default: {
        // chunk deletion
        const i = rnd(b.length);
        b = Buffer.concat([b.subarray(0, i), b.subarray(i + 1 + rnd(32))]);
      }
    }
  }
  return b;
}

test('SCEP decoders only throw ScepError on mutated input', () => {
  const seed = process.env.SCEPTER_FUZZ_SEED
    ? Number(process.env.SCEPTER_FUZZ_SEED)
    : randomBytes(4).readUInt32BE(0);
  const iterations = Number(process.env.SCEPTER_FUZZ_ITERATIONS ?? 30_000);
  console.log(`# fuzz seed ${seed} (reproduce with SCEPTER_FUZZ_SEED=${seed}), ${iterations} iterations`);
  const next = prng(seed);
  const f = fixture();
  const issued = makeIssued({ subject: 'CN=device-1', issuer: f.ca, key: f.client.key });
  const nonce = Buffer.alloc(16, 9);
  const pkcsReq = makeRequest({ transactionId: 'fz' }).der;
  const certPoll = makeRequest({
    messageType: MessageType.CertPoll,
    transactionId: 'fz',
    content: buildIssuerAndSubject({ issuerRaw: f.ca.cert.subjectRaw, subjectRaw: f.client.cert.subjectRaw }),
  }).der;
  const rep = (status: PkiStatus) =>
    encodeCertRep({
      transactionId: 'fz',
      recipientNonce: nonce,
      status,
      certificates: [issued.certDer],
      recipientCert: f.client.cert,
      cipher: 'aes128',
      signer: { cert: f.ca.cert, key: f.ca.key },
      digest: 'sha256',
    });
  const requests = [pkcsReq, toBer(pkcsReq, 50), certPoll, toBer(certPoll, 33)];
  const replies = [
    rep(PkiStatus.SUCCESS),
    toBer(rep(PkiStatus.SUCCESS), 70),
    rep(PkiStatus.FAILURE),
    rep(PkiStatus.PENDING),
  ];
  const repOpts = {
    transactionId: 'fz',
    senderNonce: nonce,
    trustedSigners: [f.ca.cert],
    decrypt: { cert: f.client.cert, key: f.client.key },
  };
  // Sanity: the corpus itself decodes.
  for (const q of requests) assert.equal(decodePkiRequest(q).failure, undefined);
  for (const p of replies) decodeCertRep(p, repOpts);

  const counts = { undecodable: 0, failure: 0, ok: 0, opened: 0 };
  const started = Date.now();
  let heapAtWarm = 0;
  for (let i = 0; i < iterations; i++) {
    if (i === Math.floor(iterations / 10)) heapAtWarm = process.memoryUsage().heapUsed;
    const isReq = (i & 1) === 0;
    const corpus = isReq ? requests : replies;
    const input = mutate(corpus[next() % corpus.length]!, next);
    try {
      if (isReq) {
        const req = decodePkiRequest(input);
        if (req.failure) counts.failure++;
        else {
          counts.ok++;
          openEnvelopeAs(req, [f.caRecipient], parseCsr);
          counts.opened++;
        }
      } else {
        decodeCertRep(input, repOpts);
        counts.ok++;
      }
    } catch (e) {
      if (!(e instanceof ScepError)) {
        assert.fail(
          `seed ${seed} iteration ${i}: non-ScepError ${(e as Error)?.name}: ${(e as Error)?.message}\ninput ${input.toString('base64')}`,
        );
      }
      if (e.kind === 'undecodable') counts.undecodable++;
      else counts.failure++;
      assert.ok(!/\n/.test(e.message), 'one-line messages');
    }
  }
  const heapGrowth = process.memoryUsage().heapUsed - heapAtWarm;
  const secs = (Date.now() - started) / 1000;
  console.log(
    `# ${iterations} inputs in ${secs.toFixed(1)} s; undecodable ${counts.undecodable}, failure ${counts.failure}, ` +
      `ok ${counts.ok} (opened ${counts.opened}); heap growth ${(heapGrowth / 1e6).toFixed(1)} MB`,
  );
  assert.ok(counts.undecodable > iterations / 10, 'mutations reach the undecodable paths');
  assert.ok(counts.failure > 0, 'mutations reach the FAILURE paths');
  assert.ok(heapGrowth < 96e6, `heap grew by ${(heapGrowth / 1e6).toFixed(1)} MB`);
});
