/**
 * Enrollment worker thread: builds its own EnrollmentService (src/server/compose.ts: CA keys
 * loaded from the data directory, the store reached through the main thread) and answers PKIOperations. All the
 * CPU work of an enrollment — decode and signature check, RSA decrypt, certificate signature,
 * CertRep encryption and signature — happens here; the HTTP thread only moves bytes.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { EnrollmentService, ServiceLogger, ServiceStats } from '../ra/service.js';
import { composeEnrollment } from './compose.js';
import { RemoteStore, revive, toWireError, transferable } from './store-rpc.js';
import type { FromWorker, ToWorker, WorkerInit } from './worker-protocol.js';

const port = parentPort;
if (!port) throw new Error('src/server/worker.ts must run in a worker thread');
const send = (m: FromWorker, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer);

/** Error objects may hold anything; logs get only their name, message and stack. */
function plain(obj: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    out[k] = v instanceof Error ? { name: v.name, message: v.message, stack: v.stack } : v;
  }
  return out;
}

const init = workerData as WorkerInit;
const store = new RemoteStore(init.storeKind, (call, transfer) => send(call, transfer));
const logger: ServiceLogger = {
  warn: (obj, msg) => send({ type: 'log', level: 'warn', obj: plain(obj), msg }),
  error: (obj, msg) => send({ type: 'log', level: 'error', obj: plain(obj), msg }),
};

let service: EnrollmentService;
try {
  // The same composition as the HTTP thread's (src/server/compose.ts), so every engine runs
  // the same enrollment path.
  service = composeEnrollment({
    dataDir: init.dataDir,
    ...(init.caPassphrase ? { passphrase: init.caPassphrase } : {}),
    store,
    config: init.config,
    ...(init.lifecycle ? { lifecycle: init.lifecycle } : {}),
    ...(init.caName !== undefined ? { caName: init.caName } : {}),
    ...(init.profile !== undefined ? { profile: init.profile } : {}),
    logger,
  });
} catch (e) {
  send({ type: 'init-failed', error: toWireError(e) });
  throw e;
}

/** Counters reported so far; each answer carries what changed since (usually nothing). */
const reported: ServiceStats = { singleDesAccepted: 0, internalErrors: 0 };
function statDeltas(): { stats?: Partial<ServiceStats> } {
  const d: Partial<ServiceStats> = {};
  for (const k of Object.keys(reported) as Array<keyof ServiceStats>) {
    const delta = service.stats[k] - reported[k];
    if (delta !== 0) {
      d[k] = delta;
      reported[k] = service.stats[k];
    }
  }
  return Object.keys(d).length > 0 ? { stats: d } : {};
}

port.on('message', (m: ToWorker) => {
  if (m.type === 'store-result') {
    store.settle(m);
    return;
  }
  const message = revive(m.message) as Buffer;
  service.pkiOperation(message, m.ctx).then(
    (answer) => {
      const transfer: ArrayBuffer[] = [];
      send({ type: 'answer', id: m.id, answer: transferable(answer, transfer), ...statDeltas() }, transfer);
    },
    // pkiOperation answers every failure itself; this is a last resort.
    (e: unknown) =>
      send({
        type: 'answer',
        id: m.id,
        answer: {
          httpStatus: 500,
          contentType: 'text/plain; charset=utf-8',
          body: Buffer.from('internal server error\n'),
          log: { outcome: 'rejected', detail: `worker: ${toWireError(e).message}` },
        },
      }),
  );
});
send({ type: 'ready' });
