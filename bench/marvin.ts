/**
 * Marvin / Bleichenbacher timing harness — RFC 8894 conformance case 27 (docs/conformance.md §5.3, §6).
 *
 *   node --import tsx bench/marvin.ts [--samples N] [--bits 2048] [--distinct N]
 *
 * Builds PKCSReq envelopes addressed to a fresh CA key, in classes that fail at different
 * points of the RSA PKCS#1 v1.5 key transport:
 *   a   valid padding, valid CEK, valid CBC padding, garbage CSR (fails at the last step)
 *   a2  control: built exactly like a (an A/A comparison shows how often the tests cry wolf)
 *   b   first bytes not 00 02
 *   c   00 02 but no zero separator
 *   d   zero separator at the wrong place (CEK of the wrong length)
 *   e   valid padding and length, wrong CEK (CBC padding fails)
 *   f   00 02, then a zero within the first 8 bytes (PS shorter than 8), the rest well formed
 * Every class has `--distinct` different ciphertexts (cycled), all with the same content length.
 * For b–f the CEK the server will use (real or synthetic) is checked to fail CBC unpadding, so
 * every class but a fails at the same step.
 *
 * Two paths are timed, each with process.hrtime.bigint() around a single call and the classes
 * interleaved in a fresh random order for every sample:
 *   cms      decryptEnvelopedData(parsed envelope, [CA decrypter])
 *   service  EnrollmentService.pkiOperation(signed pkiMessage), built by composeEnrollment as
 *            `scepter serve` builds it — CA-only, in-process, no HTTP
 * Per class: n, median, mean, p10, p90 (µs); against class a (and against e, the reference
 * that matters for an RSA padding oracle): two-sample Kolmogorov–Smirnov p, Mann–Whitney U p
 * (normal approximation with tie correction) and Welch's t (normal approximation; df is large).
 * A class is flagged when the KS or the Mann–Whitney p is below ALPHA and its median differs by
 * at least FLOOR_US; significant smaller shifts are listed apart (compare with the a2 control).
 *
 * Functional uniformity (not timing): every class must get the same HTTP status, content type,
 * body length, pkiStatus, failInfo and failInfoText from the service. Printed as PASS/FAIL; the
 * process exits 1 on FAIL.
 */
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createPublicKey,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { parseArgs } from 'node:util';
import * as der from '../src/asn1/writer.js';
import { OID } from '../src/asn1/oids.js';
import { CertificateAuthority } from '../src/ca/issuer.js';
import {
  buildSignedData,
  decryptEnvelopedData,
  issuerAndSerial,
  parseEnvelopedData,
  wrapContentInfo,
  type Decrypter,
  type EnvelopedData,
} from '../src/cms/index.js';
import { RsaKeyTransport } from '../src/crypto/key-transport.js';
import type { Certificate } from '../src/pkix/certificate.js';
import { buildCsr } from '../src/pkix/csr.js';
import { decodeCertRep, MessageType, scepAttributes } from '../src/scep/index.js';
import { composeEnrollment } from '../src/server/compose.js';
import { openStore } from '../src/store/index.js';
import { makeRsaKey, makeSelfSigned, pooledRsaKey } from '../test/helpers/pki.js';

/** Significance threshold per comparison (KS or Mann–Whitney). */
const ALPHA = 0.001;
/**
 * Shifts smaller than this are reported as "significant, below the floor" rather than flagged:
 * with 10^4 samples the tests resolve a few hundred nanoseconds, and the A/A control (a2, built
 * exactly like a) itself differs by that much (allocation and cache placement of the inputs).
 */
const FLOOR_US = 1;
const CEK_LENGTH = 16; // AES-128, the most common SCEP cipher
const CHALLENGE = 'marvin-challenge';

const { values: args } = parseArgs({
  options: {
    samples: { type: 'string', default: '5000' },
    bits: { type: 'string', default: '2048' },
    distinct: { type: 'string', default: '1000' },
  },
});
const SAMPLES = Number(args.samples);
const BITS = Number(args.bits);
const DISTINCT = Math.min(Number(args.distinct), SAMPLES);
if (!Number.isInteger(SAMPLES) || SAMPLES < 20) throw new RangeError('--samples must be an integer >= 20');
if (!Number.isInteger(BITS) || BITS < 1024) throw new RangeError('--bits must be an integer >= 1024');
if (!Number.isInteger(DISTINCT) || DISTINCT < 1) throw new RangeError('--distinct must be >= 1');

type ClassId = 'a' | 'a2' | 'b' | 'c' | 'd' | 'e' | 'f';
const CLASSES: Array<{ id: ClassId; what: string }> = [
  { id: 'a', what: 'valid padding + CEK + CBC, garbage CSR' },
  { id: 'a2', what: 'control: same construction as a' },
  { id: 'b', what: 'first bytes not 00 02' },
  { id: 'c', what: 'no zero separator' },
  { id: 'd', what: 'separator misplaced (wrong CEK length)' },
  { id: 'e', what: 'valid padding, wrong CEK (bad CBC padding)' },
  { id: 'f', what: 'PS shorter than 8 bytes' },
];

// ---------------------------------------------------------------------------------------------
// Keys, CA, service

console.log(
  `Marvin harness: Node ${process.version}, OpenSSL ${process.versions.openssl}, RSA-${BITS}, ` +
    `${SAMPLES} samples/class/path, ${DISTINCT} distinct ciphertexts/class`,
);
const caKey = makeRsaKey(BITS);
const ca = makeSelfSigned({ subject: 'CN=Marvin Test CA,O=Scepter', key: caKey, ca: true, days: 30 });
const caPub = createPublicKey(caKey);
const transport = new RsaKeyTransport(caKey);
const K = transport.modulusBytes;
const ours: Decrypter[] = [{ cert: ca.cert, transport }];

const clientKey: KeyObject = pooledRsaKey(0);
const client = makeSelfSigned({ subject: 'CN=marvin-client', key: clientKey, days: 1 });
const realCsr = buildCsr({
  subject: 'CN=marvin-client',
  key: clientKey,
  publicKey: createPublicKey(clientKey),
  challengePassword: CHALLENGE,
});
const CONTENT_LENGTH = realCsr.length;

const store = await openStore(':memory:');
// The production composition (src/server/compose.ts), so the harness times the path `serve` runs.
const service = composeEnrollment({
  ca: new CertificateAuthority({ cert: ca.cert, key: caKey, chain: [] }),
  store,
  config: { challenges: [CHALLENGE] },
});
const caCerts: Certificate[] = [ca.cert];

// ---------------------------------------------------------------------------------------------
// Crafting the encrypted keys

const rawEncrypt = (em: Buffer): Buffer =>
  publicEncrypt({ key: caPub, padding: constants.RSA_NO_PADDING }, em);
const nonZero = (n: number): Buffer => {
  const b = randomBytes(n);
  for (let i = 0; i < n; i++) while (b[i] === 0) b[i] = randomBytes(1)[0]!;
  return b;
};
const randInt = (lo: number, hi: number): number => lo + Math.floor(Math.random() * (hi - lo + 1));
/** The modulus' first byte: an EM whose first byte is below it is still < n. */
const modulusTop = Buffer.from(caPub.export({ format: 'jwk' }).n ?? '', 'base64url')[0] ?? 0;

/** EM = 00 02 PS 00 M with |M| = L (a well-formed block). */
function goodEm(cek: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0, 2]), nonZero(K - 3 - cek.length), Buffer.from([0]), cek]);
}

/** An encrypted key of `cls` and the CEK the server will end up using with it. */
function craftKey(cls: ClassId): { ek: Buffer; cek: Buffer; paddingValid: boolean } {
  const sep = K - CEK_LENGTH - 1; // where the separator must be for a 16-byte CEK
  switch (cls) {
    case 'a':
    case 'a2':
    case 'e': {
      const cek = randomBytes(CEK_LENGTH);
      return { ek: rawEncrypt(goodEm(cek)), cek, paddingValid: true };
    }
    case 'b': {
      const em = goodEm(randomBytes(CEK_LENGTH));
      if (Math.random() < 0.5 || modulusTop < 2) {
        em[1] = randInt(0, 255);
        while (em[1] === 2) em[1] = randInt(0, 255); // 00 xx, xx != 02
      } else {
        em[0] = randInt(1, modulusTop - 1); // first byte nonzero, still below n
      }
      return { ek: rawEncrypt(em), cek: Buffer.alloc(0), paddingValid: false };
    }
    case 'c': {
      const em = Buffer.concat([Buffer.from([0, 2]), nonZero(K - 2)]);
      return { ek: rawEncrypt(em), cek: Buffer.alloc(0), paddingValid: false };
    }
    case 'd': {
      let m = randInt(1, 48);
      while (m === CEK_LENGTH) m = randInt(1, 48);
      const em = Buffer.concat([Buffer.from([0, 2]), nonZero(K - 3 - m), Buffer.from([0]), nonZero(m)]);
      if (em[sep] === 0) throw new Error('d: separator landed in the right place');
      return { ek: rawEncrypt(em), cek: Buffer.alloc(0), paddingValid: false };
    }
    case 'f': {
      const em = goodEm(randomBytes(CEK_LENGTH));
      em[2 + randInt(0, 7)] = 0; // a separator 0–7 bytes into PS
      return { ek: rawEncrypt(em), cek: Buffer.alloc(0), paddingValid: false };
    }
  }
}

/** True when `key` unpads `ct` (CBC + PKCS#7) without error. */
function cbcOpens(key: Buffer, iv: Buffer, ct: Buffer): boolean {
  try {
    const d = createDecipheriv('aes-128-cbc', key, iv);
    d.update(ct);
    d.final();
    return true;
  } catch {
    return false;
  }
}

interface Probe {
  /** ContentInfo(EnvelopedData) DER. */
  envelope: Buffer;
  parsed: EnvelopedData;
}

/** One envelope of `cls`, verified to fail where the class says it does. */
function craftProbe(cls: ClassId): Probe {
  for (;;) {
    const { ek, cek, paddingValid } = craftKey(cls);
    // The key the server will decrypt the content with: the CEK, or the synthetic key.
    const used = transport.decryptPkcs1v15(ek, CEK_LENGTH);
    const expect = paddingValid ? cek : transport.syntheticKey(ek, CEK_LENGTH);
    if (!used.equals(expect)) throw new Error(`class ${cls}: key transport did not behave as crafted`);
    const iv = randomBytes(16);
    let ct: Buffer;
    if (cls === 'a' || cls === 'a2') {
      const garbage = randomBytes(CONTENT_LENGTH); // not a CSR; CBC padding is valid
      const c = createCipheriv('aes-128-cbc', cek, iv);
      ct = Buffer.concat([c.update(garbage), c.final()]);
    } else {
      // Content under an unrelated key: with the key the server uses, the CBC padding fails.
      const c = createCipheriv('aes-128-cbc', randomBytes(16), iv);
      ct = Buffer.concat([c.update(randomBytes(CONTENT_LENGTH)), c.final()]);
      if (cbcOpens(used, iv, ct)) continue; // ~1/256: would fail one step later; redraw
    }
    const ktri = der.seq(
      der.int(0),
      issuerAndSerial(ca.cert),
      der.algorithm(OID.rsaEncryption, der.nul()),
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
    const envelope = wrapContentInfo(OID.envelopedData, env);
    return { envelope, parsed: parseEnvelopedData(envelope) };
  }
}

interface Message {
  der: Buffer;
  transactionId: string;
  senderNonce: Buffer;
}

function pkiMessage(envelope: Buffer): Message {
  const transactionId = randomBytes(16).toString('hex');
  const senderNonce = randomBytes(16);
  const msg = buildSignedData({
    signerCert: client.cert,
    signerKey: clientKey,
    digest: 'sha256',
    content: envelope,
    attributes: scepAttributes({ messageType: MessageType.PKCSReq, transactionId, senderNonce }),
  });
  return { der: msg, transactionId, senderNonce };
}

const t0 = Date.now();
const probes = new Map<ClassId, Probe[]>();
const messages = new Map<ClassId, Message[]>();
for (const { id } of CLASSES) {
  const ps: Probe[] = [];
  for (let i = 0; i < DISTINCT; i++) ps.push(craftProbe(id));
  probes.set(id, ps);
  messages.set(
    id,
    ps.map((p) => pkiMessage(p.envelope)),
  );
}
const lengths = new Set([...probes.values()].flat().map((p) => p.parsed.encryptedContent.length));
console.log(
  `built ${CLASSES.length} classes × ${DISTINCT} envelopes (content ${[...lengths].join(',')} bytes) in ` +
    `${((Date.now() - t0) / 1000).toFixed(1)} s`,
);

// ---------------------------------------------------------------------------------------------
// Functional uniformity (not timing)

interface Shape {
  httpStatus: number;
  contentType: string;
  bodyLength: number;
  pkiStatus: string;
  failInfo: string;
  failInfoText: string;
}

async function shapeOf(m: Message): Promise<Shape> {
  const a = await service.pkiOperation(m.der, { remoteAddress: '192.0.2.27' });
  let pkiStatus = '-';
  let failInfo = '-';
  let failInfoText = '-';
  if (a.httpStatus === 200) {
    const rep = decodeCertRep(a.body, {
      transactionId: m.transactionId,
      senderNonce: m.senderNonce,
      trustedSigners: caCerts,
      decrypt: { cert: client.cert, key: clientKey },
    });
    pkiStatus = String(rep.status);
    failInfo = String(rep.failInfo);
    failInfoText = rep.failInfoText ?? '-';
  }
  return {
    httpStatus: a.httpStatus,
    contentType: a.contentType,
    bodyLength: a.body.length,
    pkiStatus,
    failInfo,
    failInfoText,
  };
}

const CHECKS_PER_CLASS = Math.min(DISTINCT, 50);
const shapes = new Map<ClassId, Set<string>>();
const cmsOutcomes = new Map<ClassId, Set<string>>();
for (const { id } of CLASSES) {
  const s = new Set<string>();
  const o = new Set<string>();
  for (let i = 0; i < CHECKS_PER_CLASS; i++) {
    s.add(JSON.stringify(await shapeOf(messages.get(id)![i]!)));
    try {
      decryptEnvelopedData(probes.get(id)![i]!.parsed, ours);
      o.add('decrypted');
    } catch (e) {
      o.add(`${(e as Error).name}: ${(e as Error).message}`);
    }
  }
  shapes.set(id, s);
  cmsOutcomes.set(id, o);
}
const allShapes = new Set([...shapes.values()].flatMap((s) => [...s]));
const uniform = allShapes.size === 1;
console.log('\nFunctional uniformity (service answer per class, first', CHECKS_PER_CLASS, 'messages each):');
for (const { id } of CLASSES) {
  console.log(`  ${id.padEnd(2)} ${[...shapes.get(id)!].join(' | ')}`);
  console.log(`     cms: ${[...cmsOutcomes.get(id)!].join(' | ')}`);
}
console.log(
  uniform
    ? `FUNCTIONAL UNIFORMITY: PASS (identical HTTP status, content type, body length, pkiStatus, failInfo, failInfoText across ${CLASSES.length} classes)`
    : `FUNCTIONAL UNIFORMITY: FAIL (${allShapes.size} different answers)`,
);

// ---------------------------------------------------------------------------------------------
// Timing

function shuffled<T>(xs: readonly T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

function timeCms(id: ClassId, i: number): number {
  const env = probes.get(id)![i % DISTINCT]!.parsed;
  const s = process.hrtime.bigint();
  try {
    decryptEnvelopedData(env, ours);
  } catch {
    // the uniform CmsError
  }
  return Number(process.hrtime.bigint() - s) / 1000;
}

async function timeService(id: ClassId, i: number): Promise<number> {
  const m = messages.get(id)![i % DISTINCT]!.der;
  const s = process.hrtime.bigint();
  await service.pkiOperation(m, { remoteAddress: '192.0.2.27' });
  return Number(process.hrtime.bigint() - s) / 1000;
}

async function run(
  name: string,
  one: (id: ClassId, i: number) => number | Promise<number>,
): Promise<Map<ClassId, Float64Array>> {
  const out = new Map<ClassId, Float64Array>(CLASSES.map((c) => [c.id, new Float64Array(SAMPLES)]));
  const warm = Math.min(200, SAMPLES);
  for (let i = 0; i < warm; i++) for (const c of CLASSES) await one(c.id, i);
  const start = Date.now();
  for (let i = 0; i < SAMPLES; i++) {
    for (const c of shuffled(CLASSES)) out.get(c.id)![i] = await one(c.id, i);
  }
  console.log(
    `\n[${name}] ${SAMPLES} samples × ${CLASSES.length} classes in ${((Date.now() - start) / 1000).toFixed(1)} s`,
  );
  return out;
}

// ---------------------------------------------------------------------------------------------
// Statistics

function quantile(sorted: Float64Array, q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

function meanVar(x: Float64Array): { mean: number; variance: number } {
  let m = 0;
  for (const v of x) m += v;
  m /= x.length;
  let s = 0;
  for (const v of x) s += (v - m) ** 2;
  return { mean: m, variance: s / (x.length - 1) };
}

/** Upper tail of the standard normal. */
function normalSf(z: number): number {
  return 0.5 * erfc(z / Math.SQRT2);
}

function erfc(x: number): number {
  // Numerical Recipes erfcc (fractional error < 1.2e-7 everywhere).
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** Two-sample Kolmogorov–Smirnov: D and the asymptotic p-value. */
function ks(xs: Float64Array, ys: Float64Array): { d: number; p: number } {
  const n = xs.length;
  const m = ys.length;
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < n && j < m) {
    const v = Math.min(xs[i]!, ys[j]!);
    while (i < n && xs[i]! <= v) i++;
    while (j < m && ys[j]! <= v) j++;
    d = Math.max(d, Math.abs(i / n - j / m));
  }
  const ne = Math.sqrt((n * m) / (n + m));
  const lambda = (ne + 0.12 + 0.11 / ne) * d;
  let p = 0;
  for (let k = 1; k <= 100; k++) {
    const term = 2 * (k % 2 ? 1 : -1) * Math.exp(-2 * k * k * lambda * lambda);
    p += term;
    if (Math.abs(term) < 1e-12) break;
  }
  return { d, p: Math.min(1, Math.max(0, p)) };
}

/** Mann–Whitney U (two-sided, normal approximation with tie correction); inputs sorted. */
function mannWhitney(xs: Float64Array, ys: Float64Array): { z: number; p: number; auc: number } {
  const n = xs.length;
  const m = ys.length;
  const N = n + m;
  let i = 0;
  let j = 0;
  let rank = 1;
  let rx = 0;
  let tie = 0;
  while (i < n || j < m) {
    const v = Math.min(i < n ? xs[i]! : Infinity, j < m ? ys[j]! : Infinity);
    let cx = 0;
    let cy = 0;
    while (i < n && xs[i] === v) {
      i++;
      cx++;
    }
    while (j < m && ys[j] === v) {
      j++;
      cy++;
    }
    const t = cx + cy;
    const avg = rank + (t - 1) / 2;
    rx += cx * avg;
    rank += t;
    tie += t ** 3 - t;
  }
  const u = rx - (n * (n + 1)) / 2;
  const mu = (n * m) / 2;
  const sigma = Math.sqrt(((n * m) / 12) * (N + 1 - tie / (N * (N - 1))));
  const z = sigma > 0 ? (u - mu) / sigma : 0;
  return { z, p: Math.min(1, 2 * normalSf(Math.abs(z))), auc: u / (n * m) };
}

/** Welch's t (two-sided p by the normal approximation; df is in the thousands here). */
function welch(x: Float64Array, y: Float64Array): { t: number; df: number; p: number } {
  const a = meanVar(x);
  const b = meanVar(y);
  const sa = a.variance / x.length;
  const sb = b.variance / y.length;
  const t = (a.mean - b.mean) / Math.sqrt(sa + sb);
  const df = (sa + sb) ** 2 / (sa ** 2 / (x.length - 1) + sb ** 2 / (y.length - 1));
  return { t, df, p: Math.min(1, 2 * normalSf(Math.abs(t))) };
}

const fmt = (v: number, d = 1): string => v.toFixed(d);
const fmtP = (p: number): string => (p < 1e-300 ? '<1e-300' : p < 0.001 ? p.toExponential(1) : p.toFixed(3));

interface Flag {
  path: string;
  cls: ClassId;
  ref: ClassId;
  dMedian: number;
  pKs: number;
  pMw: number;
}

function report(path: string, data: Map<ClassId, Float64Array>): Flag[] {
  const sorted = new Map<ClassId, Float64Array>();
  for (const [id, x] of data) sorted.set(id, Float64Array.from(x).sort());
  const flags: Flag[] = [];
  console.log(
    `\n${path}:\n\n| class | probe | n | median µs | mean µs | p10 µs | p90 µs | Δmedian vs a µs | KS D | KS p | MW p | Welch t | Welch p | vs e: KS p | vs e: MW p |`,
  );
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const refA = sorted.get('a')!;
  const refE = sorted.get('e')!;
  for (const { id, what } of CLASSES) {
    const s = sorted.get(id)!;
    const { mean } = meanVar(s);
    const med = quantile(s, 0.5);
    const cells = [
      id,
      what,
      String(s.length),
      fmt(med),
      fmt(mean),
      fmt(quantile(s, 0.1)),
      fmt(quantile(s, 0.9)),
    ];
    if (id === 'a') {
      cells.push('—', '—', '—', '—', '—', '—');
    } else {
      const k = ks(s, refA);
      const u = mannWhitney(s, refA);
      const w = welch(s, refA);
      cells.push(
        fmt(med - quantile(refA, 0.5), 2),
        k.d.toFixed(3),
        fmtP(k.p),
        fmtP(u.p),
        fmt(w.t, 2),
        fmtP(w.p),
      );
      if (k.p < ALPHA || u.p < ALPHA)
        flags.push({ path, cls: id, ref: 'a', dMedian: med - quantile(refA, 0.5), pKs: k.p, pMw: u.p });
    }
    if (id === 'e') {
      cells.push('—', '—');
    } else {
      const k = ks(s, refE);
      const u = mannWhitney(s, refE);
      cells.push(fmtP(k.p), fmtP(u.p));
      if (id !== 'a' && id !== 'a2' && (k.p < ALPHA || u.p < ALPHA))
        flags.push({ path, cls: id, ref: 'e', dMedian: med - quantile(refE, 0.5), pKs: k.p, pMw: u.p });
    }
    console.log(`| ${cells.join(' | ')} |`);
  }
  return flags;
}

const cmsData = await run('cms decryptEnvelopedData', timeCms);
const serviceData = await run('service pkiOperation', timeService);
await store.close();

console.log(
  `\nThreshold: flagged when the KS or Mann–Whitney p < ${ALPHA} (per comparison) and |Δmedian| >= ${FLOOR_US} µs.`,
);
const significant = [...report('cms', cmsData), ...report('service', serviceData)];
const flags = significant.filter((f) => Math.abs(f.dMedian) >= FLOOR_US);
console.log('');
for (const f of significant.filter((x) => Math.abs(x.dMedian) < FLOOR_US)) {
  console.log(
    `significant but below the ${FLOOR_US} µs floor [${f.path}] ${f.cls} vs ${f.ref}: ` +
      `Δmedian ${f.dMedian >= 0 ? '+' : ''}${f.dMedian.toFixed(2)} µs, KS p ${fmtP(f.pKs)}, MW p ${fmtP(f.pMw)}`,
  );
}
if (flags.length === 0) {
  console.log(`TIMING: PASS — no class differs from a (or b–f from e) by >= ${FLOOR_US} µs at p < ${ALPHA}`);
} else {
  for (const f of flags) {
    console.log(
      `TIMING FLAG [${f.path}] ${f.cls} vs ${f.ref}: Δmedian ${f.dMedian >= 0 ? '+' : ''}${f.dMedian.toFixed(2)} µs, ` +
        `KS p ${fmtP(f.pKs)}, MW p ${fmtP(f.pMw)}`,
    );
  }
  console.log(`TIMING: FAIL — ${flags.length} comparison(s) flagged`);
}
console.log(uniform ? 'FUNCTIONAL UNIFORMITY: PASS' : 'FUNCTIONAL UNIFORMITY: FAIL');
process.exitCode = uniform ? 0 : 1;
