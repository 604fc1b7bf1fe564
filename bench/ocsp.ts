/**
 * `npm run bench -- --ocsp [--ocsp-seconds 3] [--ocsp-prefill 10000] [--ocsp-concurrency 16]`:
 * OCSP responder throughput in process (src/ca/ocsp-responder.ts `respond`: DER parse, store
 * read, response build and signature; no HTTP), on a SQLite store pre-filled with certificates
 * (1 in 10 revoked), C requests in flight. The CA key is the committed RSA-2048 test fixture.
 *
 * Rates are per CPU second of this process (the machine may be shared: CPU time is what other
 * programs disturb least); wall-clock rates are printed too. Each answer costs at most one
 * signature, so the baseline, measured in the same process right before and after each case
 * (averaged), is node:crypto signing a 300-byte body with the signing key: the CA key
 * (RSA-2048, PKCS#1 v1.5 SHA-256) or a P-256 key (the delegated responder):
 *  - good / revoked with a nonce, and unknown serials: signed every time (ratio ≈ 1 means the
 *    signature is the whole cost);
 *  - good without a nonce: the cached response (RFC 5019 clients, the common case; a hot set of
 *    1000 certificates answered once before timing), so the store read is the whole cost;
 *  - the same with a delegated P-256 responder certificate.
 */
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as der from '../src/asn1/writer.js';
import * as r from '../src/asn1/reader.js';
import { OID } from '../src/asn1/oids.js';
import { CaSet } from '../src/ca/authorities.js';
import { CertificateAuthority } from '../src/ca/issuer.js';
import { OcspResponder } from '../src/ca/ocsp-responder.js';
import { randomSerial } from '../src/ca/serial.js';
import { parseCertificate } from '../src/pkix/certificate.js';
import { buildRootCertificate } from '../src/ca/keystore.js';
import { normalizeSerial, openStore, type NewCertificate, type Store } from '../src/store/index.js';
import { pooledRsaKey } from '../test/helpers/pki.js';

const { values: args } = parseArgs({
  options: {
    ocsp: { type: 'boolean', default: true },
    'ocsp-seconds': { type: 'string', default: '3' },
    'ocsp-prefill': { type: 'string', default: '10000' },
    'ocsp-concurrency': { type: 'string', default: '16' },
  },
  strict: false,
});
const SECONDS = Number(args['ocsp-seconds']);
const PREFILL = Number(args['ocsp-prefill']);
const C = Number(args['ocsp-concurrency']);

const log = (s: string) => process.stdout.write(s + '\n');

let silent = false;
function quiet<T>(f: () => T): T {
  silent = true;
  try {
    return f();
  } finally {
    silent = false;
  }
}

/** CPU seconds this process has used (user + system). */
function cpuNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/**
 * Operations per CPU second of this process (and per wall second, printed): CPU time is what
 * other programs on a shared machine disturb least.
 */
function rate(name: string, fn: () => unknown): number {
  for (let i = 0; i < 100; i++) fn();
  let n = 0;
  const t0 = performance.now();
  const c0 = cpuNow();
  let t = t0;
  while (t - t0 < SECONDS * 1000) {
    for (let i = 0; i < 20; i++) fn();
    n += 20;
    t = performance.now();
  }
  return report(name, n, (t - t0) / 1000, cpuNow() - c0);
}

function report(name: string, n: number, wallS: number, cpuS: number): number {
  const perCpu = n / cpuS;
  if (!silent)
    log(
      `${name.padEnd(50)} ${Math.round(perCpu).toLocaleString('en-US').padStart(9)} /CPU s ${Math.round(
        n / wallS,
      )
        .toLocaleString('en-US')
        .padStart(9)} /s`,
    );
  return perCpu;
}

async function rateAsync(name: string, next: () => Promise<unknown>): Promise<number> {
  const runFor = async (ms: number): Promise<{ n: number; wallS: number; cpuS: number }> => {
    let n = 0;
    const t0 = performance.now();
    const c0 = cpuNow();
    const deadline = t0 + ms;
    const worker = async () => {
      while (performance.now() < deadline) {
        await next();
        n++;
      }
    };
    await Promise.all(Array.from({ length: C }, worker));
    return { n, wallS: (performance.now() - t0) / 1000, cpuS: cpuNow() - c0 };
  };
  await runFor(300); // warm-up
  const { n, wallS, cpuS } = await runFor(SECONDS * 1000);
  return report(name, n, wallS, cpuS);
}

function spkiBits(spki: Buffer): Buffer {
  const c = new r.Cursor(r.parse(spki));
  c.next();
  return r.bitString(c.next()).bytes;
}

function request(ca: CertificateAuthority, serial: Buffer, nonce: boolean): Buffer {
  const id = der.seq(
    der.algorithm(OID.sha1, der.nul()),
    der.octetString(createHash('sha1').update(ca.cert.subjectRaw).digest()),
    der.octetString(createHash('sha1').update(spkiBits(ca.cert.spki)).digest()),
    der.int(serial),
  );
  const tbs: der.Der[] = [der.seq(der.seq(id))];
  if (nonce)
    tbs.push(
      der.explicit(
        2,
        der.seq(
          der.seq(der.oid(OID.ocspNonce), der.octetString(der.encode(der.octetString(randomBytes(16))))),
        ),
      ),
    );
  return der.encode(der.seq(der.seq(...tbs)));
}

async function prefill(
  store: Store,
  ca: CertificateAuthority,
): Promise<{ good: Buffer[]; revoked: Buffer[] }> {
  const good: Buffer[] = [];
  const revoked: Buffer[] = [];
  const now = new Date();
  const rows: NewCertificate[] = [];
  for (let i = 0; i < PREFILL; i++) {
    const serial = randomSerial();
    (i % 10 === 0 ? revoked : good).push(serial);
    rows.push({
      serial: normalizeSerial(serial.toString('hex')),
      issuer: ca.cert.fingerprint,
      subject: `CN=bench-${i}`,
      commonName: `bench-${i}`,
      sans: [],
      der: Buffer.from([0x30, 0x00]),
      notBefore: now,
      notAfter: new Date(now.getTime() + 86_400_000),
      keyHash: i.toString(16),
      transactionId: null,
    });
  }
  await store.bulkInsertCertificates(rows);
  for (const s of revoked) await store.revoke(normalizeSerial(s.toString('hex')), 1, now);
  return { good, revoked };
}

const dir = mkdtempSync(join(tmpdir(), 'scepter-bench-ocsp-'));
try {
  log(
    `OCSP responder, in process, one core; Node ${process.version}; ${PREFILL} certificates, C=${C}, ${SECONDS} s each`,
  );
  const caKey = pooledRsaKey(0, 2048);
  const ca = new CertificateAuthority({
    cert: parseCertificate(buildRootCertificate(caKey, 'CN=OCSP bench CA', 365)),
    key: caKey,
    chain: [],
  });
  const store = await openStore(`sqlite:${join(dir, 'ocsp.db')}`);
  const { good, revoked } = await prefill(store, ca);
  const body = randomBytes(300);
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const signRsa = () => sign('sha256', body, caKey);
  const signP256 = () => sign('sha256', body, ec);

  const pick = (xs: Buffer[]) => xs[(Math.random() * xs.length) | 0]!;
  // The cached case asks about a hot set of certificates, answered once before it is timed.
  const hot = good.slice(0, 1000);
  const results: Array<[string, number, number, number]> = [];
  for (const mode of ['ca', 'delegated'] as const) {
    const responder = new OcspResponder({ store, cas: new CaSet(ca), signer: mode });
    const label = mode === 'ca' ? 'CA key (RSA-2048)' : 'delegated (P-256)';
    const check = async (req: Buffer) => {
      const a = await responder.respond(req);
      if (a.status !== 0) throw new Error(`unexpected OCSP status ${a.status}`);
      return a;
    };
    // Requests are built before timing (2000 per case, used round-robin).
    const pool = (make: () => Buffer) => {
      const reqs = Array.from({ length: 2000 }, make);
      let i = 0;
      return () => check(reqs[i++ % reqs.length]!);
    };
    const cases: Array<[string, () => Promise<unknown>]> = [
      ['good, nonce', pool(() => request(ca, pick(good), true))],
      ['revoked, nonce', pool(() => request(ca, pick(revoked), true))],
      ['unknown serial', pool(() => request(ca, randomSerial(), false))],
      ['good, no nonce (cached)', pool(() => request(ca, pick(hot), false))],
    ];
    for (const s of hot) await check(request(ca, s, false));
    for (const [name, fn] of cases) {
      // The machine is shared: the baseline brackets each case (before and after, averaged).
      const before = quiet(() => rate('', mode === 'ca' ? signRsa : signP256));
      const ops = await rateAsync(`${label}: ${name}`, fn);
      const after = quiet(() => rate('', mode === 'ca' ? signRsa : signP256));
      const base = (before + after) / 2;
      results.push([`${label}: ${name}`, ops, ops / base, base]);
    }
  }
  log('');
  log('| answer | responses per CPU second | signs per CPU second, that key, same run | ratio |');
  log('|---|---:|---:|---:|');
  for (const [name, ops, ratio, base] of results)
    log(
      `| ${name} | ${Math.round(ops).toLocaleString('en-US')} | ${Math.round(base).toLocaleString('en-US')} | ${ratio.toFixed(2)} |`,
    );
  await store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
