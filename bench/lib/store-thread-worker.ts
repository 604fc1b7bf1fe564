/**
 * Worker side of bench/store-threads.ts: runs N simulated enrollments (CPU work standing in
 * for the RSA operations, then beginTransaction + recordIssued) with C in flight, against its
 * own store connection ('own') or the main thread's store through store-rpc ('rpc').
 */
import { randomBytes } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { RemoteStore, type StoreResult } from '../../src/server/store-rpc.js';
import { openStore, type NewCertificate, type Store } from '../../src/store/index.js';

interface Init {
  mode: 'own' | 'rpc';
  url: string;
  n: number;
  c: number;
  cpuMs: number;
  tag: string;
}

const init = workerData as Init;
const port = parentPort!;

function burn(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // CPU work standing in for decrypt / sign
  }
}

function cert(i: number): NewCertificate {
  const now = Date.now();
  return {
    serial: '7f' + randomBytes(15).toString('hex'),
    issuer: 'ab'.repeat(32),
    subject: `CN=t-${i}`,
    commonName: `t-${i}`,
    sans: [`dns:t-${i}.bench.test`],
    der: randomBytes(1100),
    notBefore: new Date(now),
    notAfter: new Date(now + 86_400_000),
    keyHash: randomBytes(32).toString('hex'),
    transactionId: null,
  };
}

async function main(): Promise<void> {
  let store: Store;
  if (init.mode === 'rpc') {
    const remote = new RemoteStore('sqlite', (call) => port.postMessage(call));
    port.on('message', (r: StoreResult) => remote.settle(r));
    store = remote;
  } else {
    store = await openStore(init.url);
  }
  let next = 0;
  let stalls = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: init.c }, async () => {
      for (let i = next++; i < init.n; i = next++) {
        const id = `${init.tag}-${i}`;
        burn(init.cpuMs * 0.6);
        const a = performance.now();
        await store.beginTransaction({
          transactionId: id,
          signerKeyHash: 'ab',
          messageType: 19,
          state: 'approved',
        });
        burn(init.cpuMs * 0.4);
        await store.recordIssued({ transactionId: id, cert: cert(i) });
        stalls += performance.now() - a;
      }
    }),
  );
  const ms = performance.now() - t0;
  if (init.mode === 'own') await store.close();
  port.postMessage({ type: 'done', ms, waitMs: stalls / init.n });
}

void main();
