/**
 * The floor server of `npm run bench -- --floor` (bench/lib/floor.ts): a bare `node:http`
 * server that does, per request, only the work a SCEP server cannot avoid — no framework, no
 * DER, no log line, no policy. It is the "how cheap could the same answer be in this runtime
 * on this machine" reference that scepter's figures are compared with, in the same run.
 *
 *   node --import tsx bench/lib/floor-server.ts --ca-key FILE [--store DIR | --engines 2]
 *
 * Requests (built by bench/lib/floor.ts, untimed): POST /poll or /enroll, body
 *   [u16 length L][L bytes: the client's RSAPublicKey DER][payload][256-byte signature]
 * where the signature (RSA PKCS#1 v1.5, SHA-256, by the client's key) covers everything
 * before it, and an enroll payload starts with [256-byte RSA block][16-byte IV][AES-128-CBC
 * ciphertext]: the content-encryption key, raw-RSA-encrypted to the CA key as in a pkiMessage.
 *
 * /poll: import the client key, verify the signature, (with --store) read one of 64 pending
 * transactions (with its CSR, as scepter's poll reads its own), one RSA signature with the CA
 * key; reply 1,300 bytes — a PENDING CertRep's work.
 *
 * /enroll: import the client key, verify the signature twice (the message and the CSR), raw
 * RSA decryption of the key block, AES decryption, two RSA signatures (certificate, CertRep),
 * (with --store) one durable issuance through scepter's own SQLite store as the enrollment
 * path makes it (`transactionExists`, then one `recordIssued` that opens the transaction, with
 * its audit record; group commit and WAL fsync), a fresh key, AES encryption and RSA
 * encryption to the client's key; reply 3,600 bytes — a SUCCESS CertRep's work.
 *
 * --engines 2: a worker thread does the same work too, two requests in three, the HTTP thread
 * the third, as with scepter's `--workers 2` (src/server/worker-pool.ts). No store then:
 * scepter's store stays on the HTTP thread and workers reach it by message; the floor measures
 * only what a second isolate and its messages cost.
 *
 * Prints `listening on http://…` once it listens (bench/lib/processes.ts waits for that line).
 */
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  sign,
  verify,
  type KeyObject,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { publicRandomBytes } from '../../src/crypto/random-pool.js';
import { openSqliteStore } from '../../src/store/sqlite.js';
import type { Store } from '../../src/store/index.js';
import { issueSimulated } from './issuance.js';

const SIG = 256;
const POLL_REPLY = 1300;
const ENROLL_REPLY = 3600;
/** Pending transactions the polls read (as `npm run bench -- --poll --pending 64`). */
const PENDING = 64;
let issued = 0;
/** The CA key and, on the HTTP thread with --store, the store (set below, per thread). */
let caKey: KeyObject;
let store: Store | undefined;

/** The parts every request carries: the client's key and its verified signature. */
function clientKey(body: Buffer): { key: KeyObject; payload: Buffer; ok: boolean } {
  const l = body.readUInt16BE(0);
  const key = createPublicKey({ key: body.subarray(2, 2 + l), format: 'der', type: 'pkcs1' });
  const signed = body.subarray(0, body.length - SIG);
  const ok = verify('sha256', signed, key, body.subarray(body.length - SIG));
  return { key, payload: body.subarray(2 + l, body.length - SIG), ok };
}

async function poll(body: Buffer): Promise<Buffer> {
  const { payload, ok } = clientKey(body);
  if (!ok) throw new Error('bad signature');
  // One of the pending transactions made at start, as a poll finds its own.
  if (store && !(await store.getTransaction(`floor-poll-${(payload[0] as number) % PENDING}`))) {
    throw new Error('no such transaction');
  }
  const attrs = Buffer.concat([payload.subarray(0, 64), publicRandomBytes(16)]);
  const s = sign('sha256', attrs, caKey);
  return Buffer.concat([s, attrs, Buffer.alloc(POLL_REPLY - s.length - attrs.length)]);
}

async function enroll(body: Buffer): Promise<Buffer> {
  const { key, payload, ok } = clientKey(body);
  // The CSR's own signature: the same key over (here) the same bytes.
  if (!ok || !verify('sha256', body.subarray(0, body.length - SIG), key, body.subarray(body.length - SIG))) {
    throw new Error('bad signature');
  }
  const block = privateDecrypt({ key: caKey, padding: constants.RSA_NO_PADDING }, payload.subarray(0, SIG));
  const cek = block.subarray(block.length - 16);
  const iv = payload.subarray(SIG, SIG + 16);
  const d = createDecipheriv('aes-128-cbc', cek, iv);
  const csr = Buffer.concat([d.update(payload.subarray(SIG + 16)), d.final()]);
  // Public values (serial, IV, nonce) from scepter's pool, the new key from randomBytes, as
  // scepter takes them (src/crypto/random-pool.ts).
  const tbs = Buffer.concat([csr.subarray(0, 600), publicRandomBytes(16)]);
  const certSig = sign('sha256', tbs, caKey);
  if (store)
    await issueSimulated(store, { id: `floor-${process.pid}-${issued++}`, audit: true, oneWrite: true });
  const cek2 = randomBytes(16);
  const iv2 = publicRandomBytes(16);
  const c = createCipheriv('aes-128-cbc', cek2, iv2);
  const enc = Buffer.concat([c.update(tbs), c.update(certSig), c.final()]);
  const ek = publicEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, cek2);
  const attrs = Buffer.concat([payload.subarray(0, 64), publicRandomBytes(16), enc.subarray(0, 32)]);
  const repSig = sign('sha256', attrs, caKey);
  const head = Buffer.concat([repSig, ek, iv2, enc, attrs]);
  return Buffer.concat([head, Buffer.alloc(Math.max(0, ENROLL_REPLY - head.length))]);
}

type Kind = 'poll' | 'enroll';
const work = (kind: Kind, body: Buffer): Promise<Buffer> => (kind === 'enroll' ? enroll(body) : poll(body));

/** What crosses to and from the worker: a request, and its answer or error. */
interface ToWorker {
  id: number;
  kind: Kind;
  body: Uint8Array;
}
interface FromWorker {
  id: number;
  out?: Uint8Array;
  error?: string;
}

/** An exact-size copy in its own ArrayBuffer, to move (not clone) across threads. */
function movable(b: Buffer): { u: Uint8Array; buffer: ArrayBuffer } {
  const buffer = new ArrayBuffer(b.length);
  const u = new Uint8Array(buffer);
  u.set(b);
  return { u, buffer };
}

function respond(res: ServerResponse, status: number, body: Buffer | string): void {
  res.writeHead(status, {
    'content-type': 'application/x-pki-message',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** The second engine: a worker thread running this same file. */
function startWorker(caKeyPem: string): (kind: Kind, body: Buffer) => Promise<Buffer> {
  const tsx = import.meta.resolve('tsx/esm/api');
  const self = import.meta.url;
  const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(self)}); })`;
  const worker = new Worker(code, { eval: true, workerData: { caKeyPem } });
  worker.unref();
  const waiting = new Map<number, { resolve(b: Buffer): void; reject(e: Error): void }>();
  let next = 0;
  worker.on('message', (m: FromWorker) => {
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (m.out) w?.resolve(Buffer.from(m.out.buffer, m.out.byteOffset, m.out.byteLength));
    else w?.reject(new Error(m.error ?? 'worker error'));
  });
  return (kind, body) => {
    const id = next++;
    const { u, buffer } = movable(body);
    const run = new Promise<Buffer>((resolve, reject) => waiting.set(id, { resolve, reject }));
    worker.postMessage({ id, kind, body: u } satisfies ToWorker, [buffer]);
    return run;
  };
}

if (!isMainThread) {
  // The worker: the same work on requests posted by the HTTP thread.
  const port = parentPort as NonNullable<typeof parentPort>;
  caKey = createPrivateKey((workerData as { caKeyPem: string }).caKeyPem);
  port.on('message', (m: ToWorker) => {
    work(m.kind, Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength)).then(
      (out) => {
        const { u, buffer } = movable(out);
        port.postMessage({ id: m.id, out: u } satisfies FromWorker, [buffer]);
      },
      (e: unknown) =>
        port.postMessage({ id: m.id, error: e instanceof Error ? e.message : 'error' } satisfies FromWorker),
    );
  });
} else {
  const { values: args } = parseArgs({
    options: {
      'ca-key': { type: 'string' },
      store: { type: 'string' },
      engines: { type: 'string', default: '1' },
    },
  });
  if (!args['ca-key']) throw new Error('floor-server: --ca-key FILE is required');
  if (args.engines !== '1' && args.engines !== '2') throw new Error('floor-server: --engines 1 or 2');
  if (args.engines === '2' && args.store) throw new Error('floor-server: --engines 2 has no store');
  const pem = readFileSync(args['ca-key'], 'utf8');
  caKey = createPrivateKey(pem);
  store = args.store ? openSqliteStore(join(args.store, 'floor.db')) : undefined;
  // The pending transactions the polls read, in one group commit.
  const seeded = store;
  if (seeded) {
    await Promise.all(
      Array.from({ length: PENDING }, (_, i) =>
        seeded.beginTransaction({
          transactionId: `floor-poll-${i}`,
          signerKeyHash: 'ab'.repeat(32),
          messageType: 19,
          state: 'pending',
          csr: randomBytes(700),
          subject: `CN=floor-poll-${i},O=Example`,
          expiresAt: new Date(Date.now() + 86_400_000),
        }),
      ),
    );
  }
  const toWorker = args.engines === '2' ? startWorker(pem) : undefined;
  const served = { here: 0, worker: 0 };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      const kind: Kind = req.url?.startsWith('/enroll') ? 'enroll' : 'poll';
      // One request in three on the HTTP thread, as scepter's HTTP thread took 35–44% of them
      // (docs/benchmarks.md). Its rule (fewer than a quarter of the worker's in flight) does
      // not carry over: the floor's own requests never wait, so it would keep nearly all.
      const here = !toWorker || served.here * 2 < served.worker;
      served[here ? 'here' : 'worker']++;
      const run = here || !toWorker ? work(kind, body) : toWorker(kind, body);
      run.then(
        (out) => respond(res, 200, out),
        (e: unknown) => respond(res, 400, e instanceof Error ? e.message : 'error'),
      );
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    const a = server.address();
    if (a && typeof a === 'object') console.log(`listening on http://127.0.0.1:${a.port}`);
  });
  process.on('SIGTERM', () => {
    console.log(`served: ${served.here} on the HTTP thread, ${served.worker} on the worker`);
    server.close();
    server.closeAllConnections();
    void Promise.resolve(store?.close()).then(() => process.exit(0));
  });
}
