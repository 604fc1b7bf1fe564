/**
 * `--workers N`: a ScepService that spreads PKIOperations over N worker threads
 * (src/server/worker.ts), each with its own EnrollmentService and CA key objects. The cheap
 * operations (GetCACaps, GetCACert, GetNextCACert) are answered on the HTTP thread by `local`.
 *
 * One coherent store: workers do not open the database; their store calls run here, on the
 * one store of this process (see store-rpc.ts). With SQLite that keeps a single connection
 * whose group commit is shared by every worker (several connections would take turns on the
 * write lock, and better-sqlite3 waits for it synchronously, stalling a worker's event loop);
 * with PostgreSQL it keeps one pool. Idempotency needs nothing new: two workers racing on one
 * transactionID meet in the store exactly like two instances do (`recordIssued` admits one
 * certificate, the other answers with it).
 *
 * A request goes to the worker with the fewest requests in flight. A worker that dies has its
 * in-flight requests answered with HTTP 500 and is replaced. Messages to and from a worker are
 * coalesced per event-loop turn (message-batch.ts): one postMessage per turn and direction.
 *
 * With `inProcess` (what `--workers N` uses: N − 1 threads) the HTTP thread is one of the N
 * engines: on N cores a pool of N threads left the HTTP thread half idle, cost a V8 heap per
 * thread (≈55 MiB) and 6 postMessage hops for every enrollment, where the HTTP thread's own
 * share has none.
 */
import { Worker } from 'node:worker_threads';
import type { ChallengeLock, RequestContext, ScepAnswer, ScepService, HttpAnswer } from '../ra/types.js';
import type { ServiceLogger, ServiceStats } from '../ra/service.js';
import type { Store } from '../store/index.js';
import { fromWireError, revive, runStoreCall, toWireError, transferable } from './store-rpc.js';
import type { FromWorker, ToWorker, WorkerInit } from './worker-protocol.js';
import { MessageBatcher, unbatch, type Batch } from './message-batch.js';
import { pkcs11SharedState } from '../crypto/pkcs11.js';

export interface WorkerPoolOptions {
  /** Number of worker threads (≥ 0; at least 1 unless `inProcess`). */
  workers: number;
  /**
   * The HTTP thread runs enrollments too, on `local`, as one more engine (see LOCAL_WEIGHT for
   * which requests it takes). `--workers N` uses N − 1 threads plus this thread: N engines on
   * N cores without a half-idle HTTP thread (docs/benchmarks.md).
   */
  inProcess?: boolean;
  /**
   * Answers the non-PKIOperation requests on this thread (usually an EnrollmentService). When it
   * has `stats`, the workers' counters (single-DES requests, internal errors) are added to them,
   * so metrics read one place whatever the number of workers.
   */
  local: ScepService & { readonly stats?: ServiceStats };
  /** The store the workers' calls run on. */
  store: Store;
  /** What each worker builds its service from. */
  init: Omit<WorkerInit, 'storeKind' | 'challengeLock'>;
  /** The challenge-failure throttle the workers ask (`lock` messages); absent: none. */
  challengeLock?: ChallengeLock;
  logger?: ServiceLogger;
}

interface Pending {
  resolve(a: ScepAnswer): void;
}

interface Slot {
  worker: Worker;
  /** Everything posted to this worker, coalesced per event-loop turn (message-batch.ts). */
  out: MessageBatcher<ToWorker>;
  inflight: Map<number, Pending>;
}

const FROM_SOURCE = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(FROM_SOURCE ? './worker.ts' : './worker.js', import.meta.url);

/**
 * The worker's entry. Built code runs worker.js directly. Running from the TypeScript sources
 * (tests, `npm run scepter`, benchmarks) the `--import tsx` hooks of the main thread do not
 * reach workers on Node 20, so a tiny bootstrap registers tsx in the worker first.
 */
function workerEntry(): { file: URL | string; eval: boolean } {
  if (!FROM_SOURCE) return { file: WORKER_URL, eval: false };
  const tsx = import.meta.resolve('tsx/esm/api');
  const code =
    `import(${JSON.stringify(tsx)})` +
    `.then((m) => { m.register(); return import(${JSON.stringify(WORKER_URL.href)}); })`;
  return { file: code, eval: true };
}

/**
 * `inProcess`: the HTTP thread takes a PKIOperation itself only while it has fewer than
 * 1/LOCAL_WEIGHT of the least-loaded worker's requests in flight. It also does the HTTP, the
 * log line and every store write of ALL requests, and relays the workers' store calls, so it
 * is the hub: given an even split it saturated while the worker idled (2 cores, RSA-2048, C=16:
 * HTTP thread 75–92% busy, worker 48–63% at weight 2; 66–84% / 60–77% and +1.5% enrollments/s
 * at 4; 8 no better than 4).
 */
const LOCAL_WEIGHT = 4;

function internalError(detail: string): ScepAnswer {
  return {
    httpStatus: 500,
    contentType: 'text/plain; charset=utf-8',
    body: Buffer.from('internal server error\n'),
    log: { outcome: 'rejected', detail },
  };
}

export class WorkerPoolService implements ScepService {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private closing = false;
  /** PKIOperations running on the HTTP thread (`inProcess`). */
  private localInflight = 0;

  private constructor(private readonly o: WorkerPoolOptions) {}

  /** Starts the workers; resolves when every one has loaded its keys and is ready. */
  static async start(o: WorkerPoolOptions): Promise<WorkerPoolService> {
    if (!Number.isInteger(o.workers) || o.workers < (o.inProcess ? 0 : 1))
      throw new RangeError(o.inProcess ? 'workers must be an integer ≥ 0' : 'workers must be an integer ≥ 1');
    const pool = new WorkerPoolService(o);
    try {
      await Promise.all(Array.from({ length: o.workers }, (_, i) => pool.spawn(i)));
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  /** Number of worker threads. */
  get size(): number {
    return this.slots.length;
  }

  /** Number of threads doing enrollment work: the worker threads, plus the HTTP thread with `inProcess`. */
  get engines(): number {
    return this.slots.length + (this.o.inProcess ? 1 : 0);
  }

  private spawn(index: number): Promise<void> {
    const entry = workerEntry();
    const worker = new Worker(entry.file, {
      eval: entry.eval,
      workerData: Object.assign({}, this.o.init, {
        storeKind: this.o.store.kind,
        pkcs11Lock: pkcs11SharedState(),
        ...(this.o.challengeLock ? { challengeLock: true } : {}),
      }) satisfies WorkerInit,
    });
    const out = new MessageBatcher<ToWorker>((batch, transfer) => worker.postMessage(batch, transfer));
    const slot: Slot = { worker, out, inflight: new Map() };
    this.slots[index] = slot;
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      const onMessage = (m: FromWorker): void => {
        switch (m.type) {
          case 'ready':
            ready = true;
            resolve();
            break;
          case 'init-failed':
            reject(fromWireError(m.error));
            break;
          case 'answer': {
            const p = slot.inflight.get(m.id);
            if (m.stats && this.o.local.stats) {
              const into = this.o.local.stats;
              for (const [k, v] of Object.entries(m.stats) as Array<[keyof ServiceStats, number]>)
                into[k] += v;
            }
            if (p) {
              slot.inflight.delete(m.id);
              p.resolve(revive(m.answer));
            }
            break;
          }
          case 'store':
            void runStoreCall(this.o.store, m).then((r) => {
              if (this.slots[index] !== slot) return;
              const transfer: ArrayBuffer[] = [];
              out.send(transferable(r, transfer) satisfies ToWorker, transfer);
            });
            break;
          case 'log':
            this.o.logger?.[m.level](m.obj, m.msg);
            break;
          case 'lock': {
            // A failing check (store down) fails the request in the worker, as it would here.
            const ask = this.o.challengeLock?.(m.address) ?? Promise.resolve(false);
            void ask
              .then(
                (locked) => ({ type: 'lock-result', id: m.id, locked }) satisfies ToWorker,
                (e: unknown) =>
                  ({
                    type: 'lock-result',
                    id: m.id,
                    locked: false,
                    error: toWireError(e),
                  }) satisfies ToWorker,
              )
              .then((r) => {
                if (this.slots[index] === slot) out.send(r);
              });
            break;
          }
        }
      };
      worker.on('message', (data: FromWorker | Batch<FromWorker>) => {
        for (const m of unbatch(data)) onMessage(m);
      });
      worker.on('error', (e) => {
        this.o.logger?.error({ err: e }, 'enrollment worker failed');
        if (!ready) reject(e);
      });
      worker.on('exit', (code) => {
        for (const p of slot.inflight.values()) p.resolve(internalError(`worker exited (${code})`));
        slot.inflight.clear();
        if (!ready) reject(new Error(`enrollment worker exited (${code}) while starting`));
        if (ready && !this.closing && this.slots[index] === slot) {
          this.spawn(index).catch((e: unknown) =>
            this.o.logger?.error({ err: e }, 'cannot restart an enrollment worker'),
          );
        }
      });
    });
  }

  capabilities(): readonly string[] {
    return this.o.local.capabilities();
  }

  getCaCaps(): HttpAnswer {
    return this.o.local.getCaCaps();
  }

  getCaCert(message?: string): HttpAnswer {
    return this.o.local.getCaCert(message);
  }

  getNextCaCert(message?: string): HttpAnswer | undefined {
    return this.o.local.getNextCaCert?.(message);
  }

  pkiOperation(message: Buffer, ctx: RequestContext): Promise<ScepAnswer> {
    if (this.closing) return Promise.resolve(internalError('shutting down'));
    let slot: Slot | undefined;
    for (const s of this.slots) if (!slot || s.inflight.size < slot.inflight.size) slot = s;
    if (this.o.inProcess && (!slot || this.localInflight * LOCAL_WEIGHT < slot.inflight.size))
      return this.runLocal(message, ctx);
    if (!slot) return Promise.resolve(internalError('shutting down'));
    const id = this.nextId++;
    return new Promise<ScepAnswer>((resolve) => {
      slot.inflight.set(id, { resolve });
      const transfer: ArrayBuffer[] = [];
      slot.out.send(
        { type: 'op', id, message: transferable(message, transfer), ctx } satisfies ToWorker,
        transfer,
      );
    });
  }

  private async runLocal(message: Buffer, ctx: RequestContext): Promise<ScepAnswer> {
    this.localInflight++;
    try {
      return await this.o.local.pkiOperation(message, ctx);
    } finally {
      this.localInflight--;
    }
  }

  /** Stops the workers (call after the HTTP server drained its requests). */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
