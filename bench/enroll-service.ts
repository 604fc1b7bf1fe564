/**
 * CPU time of one enrollment inside the enrollment service (no HTTP): `pkiOperation` on
 * PKCSReqs (RSA-2048 CA, no RA, challenge, SHA-256, AES-128, in-memory SQLite), timed by CPU
 * time (process.cpuUsage) in interleaved rounds, next to the three RSA private-key operations
 * every such enrollment needs (CEK decryption, certificate signature, CertRep signature) timed
 * alone in the same rounds, so "beyond RSA" is a same-run difference.
 *
 * `--replay-rsa`: the CA key is a PrivateKeyHandle that answers every private-key operation
 * from a table filled before timing (the real RSA decryption of each request's CEK; one real
 * signature, reused), so the time is everything BUT the RSA private-key operations — what
 * issue #15 is about — without subtracting two noisy numbers. Replies are then checked for a
 * SUCCESS pkiStatus only (their signatures are not valid).
 *
 * `--store-share`: the store is wrapped to time its calls (CPU time from a call to its settling;
 * enrollments run one at a time), so the table also splits each figure into store / the rest.
 *
 * A/B: `--base DIR` also loads a second copy of the sources (e.g. the base commit's, extracted
 * with `git archive BASE src | tar -x -C .tmp/base`, then `--base .tmp/base/src`) and runs both
 * services alternately, round by round (the order swapping each round), on the same prepared
 * requests (each side gets its own transactionIDs). Every reply is checked afterwards.
 *
 *   node --import tsx bench/enroll-service.ts [--rounds 20] [--per-round 30] [--base DIR] [--replay-rsa] [--store-share]
 */
import { constants, privateDecrypt, publicEncrypt, randomBytes, sign } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { parseCertificate, type Certificate } from '../src/pkix/certificate.js';
import { buildRootCertificate } from '../src/ca/keystore.js';
import { parseSignedData } from '../src/cms/signed-data.js';
import { parseEnvelopedData } from '../src/cms/enveloped-data.js';
import { keyHandle, type PrivateKeyHandle } from '../src/crypto/private-key.js';
import { readScepAttributes } from '../src/scep/attributes.js';
import { decodePkiRequest } from '../src/scep/request.js';
import { PkiStatus } from '../src/scep/types.js';
import { checkReply, makeEnrollment, type PreparedEnrollment } from '../test/helpers/enrollment.js';
import { pooledRsaKey } from '../test/helpers/pki.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '20' },
    'per-round': { type: 'string', default: '30' },
    warmup: { type: 'string', default: '40' },
    base: { type: 'string' },
    keys: { type: 'string', default: '16' },
    'replay-rsa': { type: 'boolean', default: false },
    'store-share': { type: 'boolean', default: false },
  },
});
const ROUNDS = Number(args.rounds);
const PER = Number(args['per-round']);
const WARMUP = Number(args.warmup);
const CHALLENGE = 'bench-enroll-challenge';

interface Service {
  pkiOperation(bytes: Buffer, ctx: { remoteAddress?: string }): Promise<{ httpStatus: number; body: Buffer }>;
}
interface Side {
  name: string;
  service: Service;
  close: () => Promise<void>;
  caCert: Certificate;
  requests: PreparedEnrollment[];
  replies: Array<{ status: number; body: Buffer }>;
  cpuMicros: number;
  /** CPU time while a store call was outstanding (call → settle), timed rounds only. */
  storeMicros: number;
  timing: boolean;
  done: number;
}

const caKey = pooledRsaKey(40);
const caDer = buildRootCertificate(caKey, 'CN=bench enroll-service CA', 30);
const caCert = parseCertificate(caDer);
const REPLAY = args['replay-rsa'] === true;
const STORE_SHARE = args['store-share'] === true;

/** The CA key with its private operations answered from a table (`--replay-rsa`). */
const real = keyHandle(caKey);
const oneSignature = real.sign('sha256', Buffer.from('bench'));
const decryptions = new Map<string, Buffer>();
const replayKey: PrivateKeyHandle = {
  publicKey: real.publicKey,
  type: real.type,
  modulusBytes: real.modulusBytes,
  label: 'bench: replayed RSA',
  sign: () => Buffer.from(oneSignature),
  rsaDecryptRaw: (input: Buffer) => {
    const k = input.toString('latin1');
    let v = decryptions.get(k);
    if (!v) {
      v = real.rsaDecryptRaw!(input);
      decryptions.set(k, v);
    }
    return Buffer.from(v);
  },
  rejectionSecret: () => real.rejectionSecret(),
};

async function side(name: string, srcDir: string): Promise<Side> {
  const url = (p: string) => pathToFileURL(resolve(srcDir, p)).href;
  const issuer = (await import(url('ca/issuer.ts'))) as typeof import('../src/ca/issuer.js');
  const cert = (await import(url('pkix/certificate.ts'))) as typeof import('../src/pkix/certificate.js');
  const compose = (await import(url('server/compose.ts'))) as typeof import('../src/server/compose.js');
  const stores = (await import(url('store/index.ts'))) as typeof import('../src/store/index.js');
  const opened = await stores.openStore(':memory:');
  // Enrollments run one at a time, so the CPU time from a store call to its settling (the
  // outermost of nested or overlapping calls) is the store's work: its share of pkiOperation.
  let active = 0;
  let since: NodeJS.CpuUsage | undefined;
  const enter = () => {
    if (active++ === 0) since = process.cpuUsage();
  };
  const leave = () => {
    if (--active === 0 && since && me.timing) {
      const d = process.cpuUsage(since);
      me.storeMicros += d.user + d.system;
    }
  };
  const timed = new Proxy(opened, {
    get(target, prop, receiver) {
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function' || prop === 'close') return v;
      return (...a: unknown[]) => {
        enter();
        let out: unknown;
        try {
          out = (v as (...x: unknown[]) => unknown).apply(receiver, a);
        } catch (e) {
          leave();
          throw e;
        }
        if (out instanceof Promise) return out.finally(leave);
        leave();
        return out;
      };
    },
  });
  const store = STORE_SHARE ? timed : opened;
  const ca = new issuer.CertificateAuthority({
    cert: cert.parseCertificate(caDer),
    key: REPLAY ? replayKey : caKey,
    chain: [],
  });
  const service = compose.composeEnrollment({ ca, store, config: { challenges: [CHALLENGE] } });
  const me: Side = {
    name,
    service,
    close: () => opened.close(),
    caCert,
    requests: [],
    replies: [],
    cpuMicros: 0,
    storeMicros: 0,
    timing: false,
    done: 0,
  };
  return me;
}

const sides: Side[] = [await side('this tree', resolve('src'))];
if (args.base) sides.push(await side(`base (${args.base})`, resolve(args.base)));

const keys = Array.from({ length: Number(args.keys) }, (_, i) => pooledRsaKey(i));
const total = WARMUP + ROUNDS * PER;
for (const s of sides)
  for (let i = 0; i < total; i++)
    s.requests.push(
      makeEnrollment({
        key: keys[i % keys.length]!,
        recipient: caCert,
        challenge: CHALLENGE,
        cn: `enroll-${s.name.length}-${i}`,
      }),
    );

if (REPLAY)
  for (const s of sides)
    for (const e of s.requests)
      replayKey.rsaDecryptRaw!(
        parseEnvelopedData(decodePkiRequest(e.der).envelope!).recipients[0]!.encryptedKey,
      );

// The RSA reference: what the three private-key operations of one enrollment cost alone.
const tbs = randomBytes(600);
const encCek = publicEncrypt(
  { key: caCert.publicKey(), padding: constants.RSA_PKCS1_PADDING },
  randomBytes(16),
);
function rsaOps(): void {
  privateDecrypt({ key: caKey, padding: constants.RSA_NO_PADDING }, encCek);
  sign('sha256', tbs, caKey);
  sign('sha256', tbs, caKey);
}
let rsaMicros = 0;
let rsaDone = 0;

const ctx = { remoteAddress: '192.0.2.1' };
async function run(s: Side, from: number, to: number, timed: boolean): Promise<void> {
  for (let i = from; i < to; i++) {
    s.timing = timed;
    const t0 = process.cpuUsage();
    const a = await s.service.pkiOperation(s.requests[i]!.der, ctx);
    const d = process.cpuUsage(t0);
    if (timed) {
      s.cpuMicros += d.user + d.system;
      s.done++;
    }
    s.replies[i] = { status: a.httpStatus, body: a.body };
  }
}

for (const s of sides) await run(s, 0, WARMUP, false);
for (let i = 0; i < WARMUP; i++) rsaOps();
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 === 0 ? sides : [...sides].reverse();
  const from = WARMUP + r * PER;
  for (const s of order) await run(s, from, from + PER, true);
  const t0 = process.cpuUsage();
  for (let i = 0; i < PER; i++) rsaOps();
  const d = process.cpuUsage(t0);
  rsaMicros += d.user + d.system;
  rsaDone += PER;
}

let failed = 0;
for (const s of sides) {
  for (let i = 0; i < total; i++) {
    const rep = s.replies[i]!;
    if (REPLAY) {
      const si = rep.status === 200 ? parseSignedData(rep.body).signerInfos[0] : undefined;
      if (!si || readScepAttributes(si.signedAttrs).pkiStatus !== PkiStatus.SUCCESS) {
        failed++;
        if (failed < 5) console.error(`${s.name} #${i}: not a SUCCESS CertRep`);
      }
      continue;
    }
    const check = checkReply(rep.status, rep.body, s.requests[i]!, [s.caCert]);
    if (!check.ok) {
      failed++;
      if (failed < 5) console.error(`${s.name} #${i}: ${check.reason}`);
    }
  }
  await s.close();
}

const rsa = rsaMicros / rsaDone;
console.log(
  `\nenrollment in the service (pkiOperation), RSA-2048 CA${REPLAY ? ' (private-key operations replayed)' : ''}, ` +
    `in-memory SQLite; Node ${process.version}; ` +
    `${ROUNDS} rounds × ${PER}, alternating, CPU time\n`,
);
if (REPLAY) {
  console.log('| measurement | CPU µs per enrollment (no RSA private-key operation) |');
  console.log('|---|---:|');
  for (const s of sides) console.log(`| pkiOperation, ${s.name} | ${(s.cpuMicros / s.done).toFixed(0)} |`);
  if (STORE_SHARE)
    for (const s of sides) {
      const st = s.storeMicros / s.done;
      console.log(`| … of which in store calls, ${s.name} | ${st.toFixed(0)} |`);
      console.log(`| … outside the store, ${s.name} | ${(s.cpuMicros / s.done - st).toFixed(0)} |`);
    }
  console.log(
    `| (for scale) the 3 RSA private ops the replay skips, run for real: 1 raw decrypt + 2 signatures | ${rsa.toFixed(0)} |`,
  );
  if (sides.length === 2) {
    const [a, b] = sides.map((s) => s.cpuMicros / s.done) as [number, number];
    console.log(`\nthis tree / base: ${(a / b).toFixed(2)}`);
  }
} else {
  console.log('| measurement | CPU µs per enrollment | beyond the 3 RSA private ops |');
  console.log('|---|---:|---:|');
  for (const s of sides) {
    const per = s.cpuMicros / s.done;
    console.log(`| pkiOperation, ${s.name} | ${per.toFixed(0)} | ${(per - rsa).toFixed(0)} |`);
  }
  console.log(`| 3 RSA private ops alone (1 raw decrypt + 2 signatures) | ${rsa.toFixed(0)} | |`);
  if (sides.length === 2) {
    const [a, b] = sides.map((s) => s.cpuMicros / s.done - rsa) as [number, number];
    console.log(`\nbeyond RSA, this tree / base: ${(a / b).toFixed(2)}`);
  }
}
if (failed > 0) {
  console.error(`FAIL: ${failed} replies did not check out`);
  process.exit(1);
}
console.log(
  REPLAY
    ? 'all replies checked: SUCCESS CertReps'
    : 'all replies checked: SUCCESS, signed by the CA, certificate for the requested key',
);
