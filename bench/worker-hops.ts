/**
 * `node --import tsx bench/worker-hops.ts BUILD` (BUILD: a tree compiled with
 * `npx tsc -p tsconfig.build.json --outDir BUILD`): counts the postMessage calls, and the
 * messages inside them, between the HTTP thread and the worker of a `--workers 2` server per
 * PKIOperation, at C=16 (600 enrollments after 200 of warm-up). Run it pinned to one core
 * (`taskset -c 0`) to compare builds under the same scheduling. Reads the pool's private
 * `slots` to listen on its worker: a measuring tool, not an API.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { generateRsaKeys, makeEnrollment, postPkiMessage, checkReply } from '../test/helpers/enrollment.js';
import { seeded } from '../test/helpers/scep-server.js';

const tree = resolve(process.argv[2]!);
const { startServer } = (await import(
  join(tree, 'server/index.js')
)) as typeof import('../src/server/index.js');
const down = { posts: 0, msgs: {} as Record<string, number> };
const up = { posts: 0, msgs: {} as Record<string, number> };
const count = (c: typeof down, data: unknown) => {
  c.posts++;
  for (const m of Array.isArray(data) ? data : [data]) {
    const k =
      (m as { type: string; method?: string }).type +
      ((m as { method?: string }).method ? ':' + (m as { method: string }).method : '');
    c.msgs[k] = (c.msgs[k] ?? 0) + 1;
  }
};
const orig = Worker.prototype.postMessage;
let on = false;
Worker.prototype.postMessage = function (this: Worker, v: unknown, t?: never) {
  if (on) count(down, v);
  return orig.call(this, v, t);
};
const dir = mkdtempSync(join(tmpdir(), 'hops-'));
const challenge = 'hops-challenge';
const server = await startServer(
  seeded({ dataDir: dir, keySize: 2048, challenge, workers: 2, logLevel: 'silent' }),
);
const worker = (server.service as unknown as { slots: Array<{ worker: Worker }> }).slots[0]!.worker;
worker.on('message', (d: unknown) => on && count(up, d));
const ca = server.dataDir!.loaded.caCert;
const keys = await generateRsaKeys(16);
const run = async (n: number, tag: string) => {
  const reqs = Array.from({ length: n }, (_, i) =>
    makeEnrollment({ key: keys[i % 16]!, recipient: ca, challenge, cn: `${tag}-${i}` }),
  );
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < reqs.length) {
        const e = reqs[next++]!;
        const r = await postPkiMessage(server.url, e.der);
        const c = checkReply(r.status, r.body, e, [ca]);
        if (!c.ok) throw new Error(c.reason);
      }
    }),
  );
};
await run(200, 'warm');
on = true;
const N = 600;
await run(N, 'm');
on = false;
await server.close();
rmSync(dir, { recursive: true, force: true });
const ops = down.msgs['op'] ?? 0;
const msgs = (c: typeof down) => Object.values(c.msgs).reduce((a, b) => a + b, 0);
console.log(`${process.argv[2]}: ${N} enrollments, ${ops} to the worker`);
console.log(`  HTTP→worker: ${down.posts} postMessage, ${msgs(down)} messages ${JSON.stringify(down.msgs)}`);
console.log(`  worker→HTTP: ${up.posts} postMessage, ${msgs(up)} messages ${JSON.stringify(up.msgs)}`);
console.log(
  `  per worker enrollment: ${((down.posts + up.posts) / ops).toFixed(2)} postMessage, ${((msgs(down) + msgs(up)) / ops).toFixed(2)} messages`,
);
