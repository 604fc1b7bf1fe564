/**
 * Enrollment worker thread: builds its own EnrollmentService (src/server/compose.ts: CA keys
 * loaded from the data directory, the store reached through the main thread) and answers PKIOperations. All the
 * CPU work of an enrollment — decode and signature check, RSA decrypt, certificate signature,
 * CertRep encryption and signature — happens here; the HTTP thread only moves bytes.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { EnrollmentService, ServiceLogger, ServiceStats } from '../ra/service.js';
import type { ScepService } from '../ra/types.js';
import { composeEnrollment } from './compose.js';
import { usePkcs11SharedState } from '../crypto/pkcs11.js';
import { caLookup, composeProfiles, ProfileRouter } from './profiles.js';
import { fromWireError, RemoteStore, revive, toWireError, transferable } from './store-rpc.js';
import type { FromWorker, ToWorker, WorkerInit } from './worker-protocol.js';
import { MessageBatcher, unbatch, type Batch } from './message-batch.js';

const port = parentPort;
if (!port) throw new Error('src/server/worker.ts must run in a worker thread');
// Everything but `ready`/`init-failed` leaves coalesced per event-loop turn (message-batch.ts).
const out = new MessageBatcher<FromWorker>((batch, transfer) => port.postMessage(batch, transfer));
const send = (m: FromWorker, transfer?: ArrayBuffer[]) => out.send(m, transfer);

/** Error objects may hold anything; logs get only their name, message and stack. */
function plain(obj: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    out[k] = v instanceof Error ? { name: v.name, message: v.message, stack: v.stack } : v;
  }
  return out;
}

const init = workerData as WorkerInit;
// Before any key is opened: one PKCS#11 lock for every thread of the process.
usePkcs11SharedState(init.pkcs11Lock);
const store = new RemoteStore(init.storeKind, (call, transfer) => send(call, transfer));
const logger: ServiceLogger = {
  warn: (obj, msg) => send({ type: 'log', level: 'warn', obj: plain(obj), msg }),
  error: (obj, msg) => send({ type: 'log', level: 'error', obj: plain(obj), msg }),
};

// The challenge-failure throttle is the HTTP thread's: asked by message, only where a
// challenge is checked.
const locks = new Map<number, { resolve(locked: boolean): void; reject(e: Error): void }>();
let nextLock = 0;
const challengeLock = (address: string | undefined): Promise<boolean> =>
  new Promise((resolve, reject) => {
    const id = nextLock++;
    locks.set(id, { resolve, reject });
    send({ type: 'lock', id, address });
  });

let service: ScepService;
/** Every enrollment service of this worker (one per profile). */
let services: EnrollmentService[];
try {
  // The same composition as the HTTP thread's (src/server/compose.ts, profiles.ts), so every
  // engine runs the same enrollment path.
  if (init.profiles) {
    const byName = composeProfiles(init.profiles, {
      cas: caLookup(init.dataDir),
      ...(init.caPassphrase ? { passphrase: init.caPassphrase } : {}),
      store,
      logger,
      ...(init.challengeLock ? { challengeLock } : {}),
    });
    services = [...byName.values()];
    service = new ProfileRouter(byName, init.defaultProfile ?? init.profiles[0]!.name);
  } else {
    const one = composeEnrollment({
      dataDir: init.dataDir,
      ...(init.caPassphrase ? { passphrase: init.caPassphrase } : {}),
      store,
      config: init.config,
      ...(init.lifecycle ? { lifecycle: init.lifecycle } : {}),
      ...(init.caName !== undefined ? { caName: init.caName } : {}),
      ...(init.profile !== undefined ? { profile: init.profile } : {}),
      logger,
      ...(init.challengeLock ? { challengeLock } : {}),
    });
    services = [one];
    service = one;
  }
} catch (e) {
  // Posted at once: the thread ends with the throw, before a batch would leave.
  out.flush();
  port.postMessage({ type: 'init-failed', error: toWireError(e) } satisfies FromWorker);
  throw e;
}

/** Counters reported so far; each answer carries what changed since (usually nothing). */
const reported: ServiceStats = { singleDesAccepted: 0, internalErrors: 0, envelopesOpened: 0 };
function statDeltas(): { stats?: Partial<ServiceStats> } {
  const d: Partial<ServiceStats> = {};
  for (const k of Object.keys(reported) as Array<keyof ServiceStats>) {
    const now = services.reduce((n, s) => n + s.stats[k], 0);
    const delta = now - reported[k];
    if (delta !== 0) {
      d[k] = delta;
      reported[k] = now;
    }
  }
  return Object.keys(d).length > 0 ? { stats: d } : {};
}

function onMessage(m: ToWorker): void {
  if (m.type === 'store-result') {
    store.settle(m);
    return;
  }
  if (m.type === 'lock-result') {
    const p = locks.get(m.id);
    locks.delete(m.id);
    if (m.error) p?.reject(fromWireError(m.error));
    else p?.resolve(m.locked);
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
}
port.on('message', (data: ToWorker | Batch<ToWorker>) => {
  for (const m of unbatch(data)) onMessage(m);
});
out.flush();
port.postMessage({ type: 'ready' } satisfies FromWorker);
