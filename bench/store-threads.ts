/**
 * Why the enrollment workers reach the store through the main thread (src/server/store-rpc.ts)
 * instead of opening SQLite themselves: W worker threads run simulated enrollments (busy CPU
 * standing in for the RSA work, then beginTransaction + recordIssued, C in flight each)
 * against (a) the main thread's one store, (b) one SQLite connection per worker.
 *
 *   node --import tsx bench/store-threads.ts [--workers 2] [--n 3000] [--c 8] [--cpu-ms 1]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { runStoreCall, type StoreCall } from '../src/server/store-rpc.js';
import { openStore } from '../src/store/index.js';

const { values: args } = parseArgs({
  options: {
    workers: { type: 'string', default: '2' },
    n: { type: 'string', default: '3000' },
    c: { type: 'string', default: '8' },
    'cpu-ms': { type: 'string', default: '1' },
  },
});
const W = Number(args.workers);
const N = Number(args.n);

function spawnWorker(
  mode: 'own' | 'rpc',
  url: string,
  tag: string,
  onCall?: (w: Worker, c: StoreCall) => void,
) {
  const file = new URL('./lib/store-thread-worker.ts', import.meta.url).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(file)}); })`;
  const w = new Worker(code, {
    eval: true,
    workerData: { mode, url, n: N / W, c: Number(args.c), cpuMs: Number(args['cpu-ms']), tag },
  });
  return new Promise<{ ms: number; waitMs: number }>((resolve, reject) => {
    w.on('message', (m: StoreCall | { type: 'done'; ms: number; waitMs: number }) => {
      if (m.type === 'done') {
        resolve(m);
        void w.terminate();
      } else onCall?.(w, m);
    });
    w.on('error', reject);
  });
}

async function run(mode: 'own' | 'rpc', url: string): Promise<void> {
  const store = mode === 'rpc' ? await openStore(url) : undefined;
  const t0 = performance.now();
  const results = await Promise.all(
    Array.from({ length: W }, (_, i) =>
      spawnWorker(mode, url, `${mode}-${i}`, (w, call) => {
        void runStoreCall(store!, call).then((r) => w.postMessage(r));
      }),
    ),
  );
  const sec = (performance.now() - t0) / 1000;
  const wait = results.reduce((a, r) => a + r.waitMs, 0) / results.length;
  const stats = store?.stats();
  await store?.close();
  console.log(
    `${mode === 'rpc' ? 'one store on the main thread' : 'a connection per worker'}: ${(N / sec).toFixed(0)} enrollments/s, ` +
      `store wait per enrollment ${wait.toFixed(2)} ms${stats ? `, ${(stats.writes / stats.commits).toFixed(1)} writes/commit` : ''}`,
  );
}

const dir = mkdtempSync(join(tmpdir(), 'store-threads-'));
try {
  console.log(`${W} workers × C=${args.c}, ${args['cpu-ms']} ms CPU per enrollment, n=${N}`);
  await run('rpc', `sqlite:${join(dir, 'rpc.db')}`);
  await run('own', `sqlite:${join(dir, 'own.db')}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
