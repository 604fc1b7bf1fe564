/**
 * Server CPU time per enrollment: an EC P-384 CA behind an RSA-2048 RA against RSA CAs.
 *
 *   npm run bench -- --ec-ca [-n 600] [--rounds 12] [--keys 64]
 *   node --import tsx bench/ec-ca.ts [-n 600] [--rounds 12] [--keys 64]
 *
 * Three services built by `composeEnrollment` (the path `scepter serve` runs), in-process, no
 * HTTP, each with its own in-memory store:
 *   rsa-ca-only  RSA-2048 CA, no RA: CEK decryption, certificate and CertRep signature are
 *                three RSA private-key operations
 *   rsa-ca+ra    RSA-2048 CA behind an RSA-2048 RA: still three RSA operations
 *   p384-ca+ra   EC P-384 CA behind an RSA-2048 RA: one RSA decryption and one RSA signature
 *                (the RA), the certificate signed with ECDSA P-384 (SHA-384)
 *   p256-ca+ra   the same with an EC P-256 CA (ECDSA P-256, SHA-256)
 * Clients: RSA-2048 keys (a pool, round-robin), AES-128, SHA-256, one PKCSReq each with its own
 * CSR and transactionID, all built before timing.
 *
 * What is measured: the process CPU time (user + system, `process.cpuUsage`) spent in
 * `pkiOperation` — not wall-clock throughput, because the machine is shared and wall time
 * counts other processes' work. The configurations run interleaved in `--rounds` rounds (the
 * order rotating each round) so that a change in machine load hits all of them alike; the
 * ratios are from the same run. Every reply is checked afterwards (SUCCESS, signed by the
 * CA/RA, opens, certificate for the requested key, verifies under the CA).
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { parseArgs } from 'node:util';
import { CertificateAuthority } from '../src/ca/issuer.js';
import { buildRaCertificate, buildRootCertificate } from '../src/ca/keystore.js';
import { parseCertificate, verifyCertificateSignature, type Certificate } from '../src/pkix/certificate.js';
import type { EnrollmentService } from '../src/ra/service.js';
import { composeEnrollment } from '../src/server/compose.js';
import { openStore, type Store } from '../src/store/index.js';
import { checkReply, makeEnrollment, type PreparedEnrollment } from '../test/helpers/enrollment.js';
import { pooledRsaKey } from '../test/helpers/pki.js';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', short: 'n', default: '600' },
    rounds: { type: 'string', default: '12' },
    keys: { type: 'string', default: '32' },
    warmup: { type: 'string', default: '30' },
    'ec-ca': { type: 'boolean', default: false },
  },
  allowPositionals: true,
  strict: false,
});
const N = Number(args.n);
const ROUNDS = Number(args.rounds);
const KEYS = Number(args.keys);
const WARMUP = Number(args.warmup);
const CHALLENGE = 'bench-ec-ca-challenge';

interface Config {
  name: string;
  service: EnrollmentService;
  store: Store;
  recipient: Certificate;
  trusted: Certificate[];
  caCert: Certificate;
  requests: PreparedEnrollment[];
  replies: Array<{ status: number; body: Buffer }>;
  cpuMicros: number;
  done: number;
}

async function config(name: string, caKey: KeyObject, raKey: KeyObject | undefined): Promise<Config> {
  const caCert = parseCertificate(
    buildRootCertificate(caKey, `CN=bench ${name.replace('+', ' with ')} CA`, 30),
  );
  const ca = new CertificateAuthority({ cert: caCert, key: caKey, chain: [] });
  const ra = raKey
    ? {
        cert: parseCertificate(
          buildRaCertificate(ca, raKey, `CN=bench ${name.replace('+', ' with ')} RA`, 30),
        ),
        key: raKey,
      }
    : undefined;
  const store = await openStore(':memory:');
  const service = composeEnrollment({
    ca,
    ...(ra ? { ra } : {}),
    store,
    config: { challenges: [CHALLENGE] },
  });
  const recipient = ra?.cert ?? caCert;
  return {
    name,
    service,
    store,
    recipient,
    trusted: ra ? [ra.cert, caCert] : [caCert],
    caCert,
    requests: [],
    replies: [],
    cpuMicros: 0,
    done: 0,
  };
}

// Fixture RSA keys (test/fixtures/keys): CA and RA 2048-bit, clients from the pool.
const clientKeys = Array.from({ length: KEYS }, (_, i) => pooledRsaKey(i % 32));
const ec384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey;
const ec256 = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
const configs = [
  await config('rsa-ca-only', pooledRsaKey(40), undefined),
  await config('rsa-ca+ra', pooledRsaKey(41), pooledRsaKey(42)),
  await config('p384-ca+ra', ec384, pooledRsaKey(43)),
  await config('p256-ca+ra', ec256, pooledRsaKey(44)),
];

console.log(
  `EC CA benchmark: Node ${process.version}, OpenSSL ${process.versions.openssl}; ${N} enrollments per ` +
    `configuration in ${ROUNDS} interleaved rounds (+${WARMUP} warm-up), ${KEYS} RSA-2048 client keys`,
);
for (const c of configs) {
  for (let i = 0; i < N + WARMUP; i++) {
    c.requests.push(
      makeEnrollment({
        key: clientKeys[i % clientKeys.length]!,
        recipient: c.recipient,
        challenge: CHALLENGE,
        cn: `${c.name.replace('+', '-')}-${i}`,
      }),
    );
  }
}

const ctx = { remoteAddress: '127.0.0.1' };
async function run(c: Config, from: number, to: number, timed: boolean): Promise<void> {
  for (let i = from; i < to; i++) {
    const e = c.requests[i]!;
    const t0 = process.cpuUsage();
    const a = await c.service.pkiOperation(e.der, ctx);
    const d = process.cpuUsage(t0);
    if (timed) {
      c.cpuMicros += d.user + d.system;
      c.done++;
    }
    c.replies[i] = { status: a.httpStatus, body: a.body };
  }
}

for (const c of configs) await run(c, 0, WARMUP, false);
const chunk = Math.ceil(N / ROUNDS);
for (let r = 0; r < ROUNDS; r++) {
  const order = configs.map((_, i) => configs[(i + r) % configs.length]!);
  for (const c of order) {
    const from = WARMUP + r * chunk;
    await run(c, from, Math.min(WARMUP + N, from + chunk), true);
  }
}

let failed = 0;
for (const c of configs) {
  for (let i = WARMUP; i < WARMUP + N; i++) {
    const rep = c.replies[i]!;
    const check = checkReply(rep.status, rep.body, c.requests[i]!, c.trusted);
    if (!check.ok) {
      failed++;
      if (failed < 5) console.error(`${c.name} #${i}: ${check.reason}`);
      continue;
    }
    if (!verifyCertificateSignature(parseCertificate(check.certDer), c.caCert.publicKey())) {
      failed++;
      if (failed < 5) console.error(`${c.name} #${i}: the certificate does not verify under the CA`);
    }
  }
  await c.store.close();
}

const per = (c: Config) => c.cpuMicros / c.done;
const base = configs[1]!;
console.log('\nconfiguration   enrollments   server CPU µs/enrollment   vs rsa-ca+ra');
for (const c of configs) {
  console.log(
    `${c.name.padEnd(15)} ${String(c.done).padStart(11)}   ${per(c).toFixed(0).padStart(24)}   ${(per(c) / per(base)).toFixed(2).padStart(11)}`,
  );
}
for (const [ec, label] of [
  [configs[2]!, 'EC P-384'],
  [configs[3]!, 'EC P-256'],
] as const) {
  console.log(
    `${label} CA + RSA-2048 RA: ${(per(ec) / per(base)).toFixed(2)}× the server CPU per enrollment of an ` +
      `RSA-2048 CA + RA (${(per(base) / per(ec)).toFixed(2)}× the enrollments per CPU-second), ` +
      `${(per(ec) / per(configs[0]!)).toFixed(2)}× that of an RSA-2048 CA alone.`,
  );
}
if (failed > 0) {
  console.error(`FAIL: ${failed} replies did not check out`);
  process.exit(1);
}
console.log(
  'all replies checked: SUCCESS, signed by the CA/RA, certificate for the requested key, verifies under the CA',
);
