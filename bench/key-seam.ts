/**
 * `npm run bench:key-seam`: the cost of the private-key seam (src/crypto/private-key.ts) for
 * software keys — each private operation the way the code did it before the seam (node:crypto
 * on the KeyObject) next to the way it does now (through the handle). Rounds alternate between the two so both see
 * the same machine load; the result is the median per-round ratio of CPU time (process.cpuUsage).
 *
 *   npm run bench:key-seam -- [--rounds 15] [--ops 200]
 */
import {
  constants,
  createHash,
  createHmac,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  sign,
} from 'node:crypto';
import { parseArgs } from 'node:util';
import { RsaKeyTransport } from '../src/crypto/key-transport.js';
import { createSigner } from '../src/pkix/signature.js';
import { pooledRsaKey } from '../test/helpers/pki.js';

const { values: args } = parseArgs({
  options: { rounds: { type: 'string', default: '15' }, ops: { type: 'string', default: '200' } },
});
const ROUNDS = Number(args.rounds);
const OPS = Number(args.ops);

const key = pooledRsaKey(0);
const k = 256;
const kt = new RsaKeyTransport(key);
const kdk = createHash('sha256')
  .update('x')
  .update(key.export({ format: 'der', type: 'pkcs8' }))
  .digest();
const tbs = randomBytes(900);
const cek = randomBytes(16);
const pkcs1 = publicEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, cek);
const oaep = publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, cek);

/** The PKCS#1 v1.5 decryption before the seam (same unpad, KeyObject called directly). */
function oldPkcs1(ek: Buffer, L: number): Buffer {
  const synth = createHmac('sha256', kdk).update(ek).digest().subarray(0, L);
  let em: Uint8Array;
  let bad = 0;
  try {
    em = privateDecrypt({ key, padding: constants.RSA_NO_PADDING }, ek);
  } catch {
    em = new Uint8Array(k);
    bad = 1;
  }
  const sep = k - L - 1;
  bad |= em[0]! | (em[1]! ^ 2) | em[sep]!;
  for (let i = 2; i < sep; i++) bad |= ((em[i]! - 1) >> 8) & 1;
  const mask = (((bad | -bad) >>> 31) - 1) & 0xff;
  const out = Buffer.allocUnsafe(L);
  for (let i = 0; i < L; i++) out[i] = (em[sep + 1 + i]! & mask) | (synth[i]! & ~mask & 0xff);
  return out;
}

/** OAEP before the seam: OpenSSL unpads, errors become the synthetic key. */
function oldOaep(ek: Buffer, L: number): Buffer {
  const synth = createHmac('sha256', kdk).update(ek).digest().subarray(0, L);
  try {
    const pt = privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, ek);
    return pt.length === L ? pt : synth;
  } catch {
    return synth;
  }
}

const signer = createSigner(key, 'sha256');
const cases: Array<{ name: string; before: () => unknown; after: () => unknown }> = [
  {
    name: 'certificate/CertRep signature',
    before: () => sign('sha256', tbs, key),
    after: () => signer.sign(tbs),
  },
  {
    name: 'PKCS#1 v1.5 key transport',
    before: () => oldPkcs1(pkcs1, 16),
    after: () => kt.decryptPkcs1v15(pkcs1, 16),
  },
  {
    name: 'OAEP key transport',
    before: () => oldOaep(oaep, 16),
    after: () => kt.decryptOaep(oaep, 'sha256', 16),
  },
];

function cpuMs(f: () => unknown): number {
  const t0 = process.cpuUsage();
  for (let i = 0; i < OPS; i++) f();
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const out: string[] = [`RSA-2048, ${ROUNDS} alternating rounds × ${OPS} operations, CPU time`, ''];
out.push('| operation | before µs/op | after µs/op | after / before (median of rounds) |');
out.push('|---|---:|---:|---:|');
for (const c of cases) {
  c.before();
  c.after();
  const b: number[] = [];
  const a: number[] = [];
  const ratio: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const x = cpuMs(r % 2 ? c.after : c.before);
    const y = cpuMs(r % 2 ? c.before : c.after);
    const [before, after] = r % 2 ? [y, x] : [x, y];
    b.push(before);
    a.push(after);
    ratio.push(after / before);
  }
  out.push(
    `| ${c.name} | ${((median(b) * 1000) / OPS).toFixed(0)} | ${((median(a) * 1000) / OPS).toFixed(0)} | ${median(ratio).toFixed(3)} |`,
  );
}
process.stdout.write(out.join('\n') + '\n');
