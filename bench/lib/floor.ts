/**
 * The floor: the same load against a bare `node:http` server that does only a SCEP answer's
 * unavoidable work (bench/lib/floor-server.ts), in the same run as scepter, so that scepter's
 * CPU per request can be split into what this runtime on this machine costs anyway and what
 * scepter's own code adds (`npm run bench -- --floor`, docs/benchmarks.md).
 */
import {
  constants,
  createCipheriv,
  createPublicKey,
  publicEncrypt,
  randomBytes,
  sign,
  type KeyObject,
} from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { CheckedLoad, LoadItem, LoadResult } from './load.js';
import { startListening, type ServerProcess } from './processes.js';

export type FloorKind = 'poll' | 'enroll';

/** As large as the pkiMessages of `npm run bench` (a PKCSReq is ≈2.6 KB, a CertPoll ≈2.2 KB). */
const CSR_BYTES = 1100;
const POLL_PAYLOAD = 1600;

/**
 * `count` floor requests (the layout is in floor-server.ts); request i is signed by key
 * (first + i) mod keys, round-robin like the SCEP requests.
 */
export function floorRequests(
  kind: FloorKind,
  keys: readonly KeyObject[],
  caPublic: KeyObject,
  count: number,
  first = 0,
): LoadItem[] {
  return Array.from({ length: count }, (_, i) => {
    const key = keys[(first + i) % keys.length] as KeyObject;
    const pub = createPublicKey(key).export({ format: 'der', type: 'pkcs1' });
    const len = Buffer.alloc(2);
    len.writeUInt16BE(pub.length);
    let payload: Buffer;
    if (kind === 'enroll') {
      const cek = randomBytes(16);
      const iv = randomBytes(16);
      const c = createCipheriv('aes-128-cbc', cek, iv);
      const block = publicEncrypt({ key: caPublic, padding: constants.RSA_PKCS1_PADDING }, cek);
      payload = Buffer.concat([block, iv, c.update(randomBytes(CSR_BYTES)), c.final()]);
    } else {
      payload = randomBytes(POLL_PAYLOAD);
    }
    const signed = Buffer.concat([len, pub, payload]);
    return { der: Buffer.concat([signed, sign('sha256', signed, key)]) };
  });
}

/** Starts the floor server with the CA key in `caKeyFile` (PEM, unencrypted). */
export function startFloor(o: {
  caKeyFile: string;
  /** A directory for its SQLite store; without it the floor has no store. */
  storeDir?: string;
  /** 2: a worker thread too, as scepter's `--workers 2` (no store then). */
  engines?: number;
  logFile: string;
  cpus?: string;
  nodeFlags?: string[];
}): Promise<ServerProcess> {
  const script = fileURLToPath(new URL('./floor-server.ts', import.meta.url));
  return startListening(
    [
      ...(o.nodeFlags ?? []),
      '--import',
      'tsx',
      script,
      '--ca-key',
      o.caKeyFile,
      ...(o.storeDir ? ['--store', o.storeDir] : []),
      ...(o.engines ? ['--engines', String(o.engines)] : []),
    ],
    { logFile: o.logFile, ...(o.cpus ? { cpus: o.cpus } : {}) },
  );
}

/** The URL of one kind of floor request. */
export function floorUrl(server: ServerProcess, kind: FloorKind): string {
  return `${server.url}/${kind}`;
}

/** The floor's check of a run: a 200 reply of at least 1,000 bytes is a success. */
export function checkFloor(r: LoadResult): CheckedLoad {
  const reasons = new Map<string, number>();
  let ok = 0;
  for (const reply of r.replies) {
    const reason =
      reply === undefined
        ? 'no reply'
        : 'error' in reply
          ? `transport: ${reply.error}`
          : reply.status !== 200 || reply.body.length < 1000
            ? `HTTP ${reply.status}: ${reply.body.toString('utf8', 0, 80)}`
            : undefined;
    if (reason === undefined) ok++;
    else reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  }
  return { ok, failures: r.replies.length - ok, reasons, serials: [], duplicateSerials: 0 };
}
