/**
 * The Store across a thread boundary. Worker threads run the enrollment service but do not
 * open the database: each store call is posted to the main thread, which runs it on the one
 * real store (one SQLite connection with group commit, or one PostgreSQL pool) and posts the
 * result back. So every worker sees one coherent store, concurrent writes from all workers
 * still share commits, and "durable before reply" holds unchanged: the worker gets its result
 * only after the main thread's write resolved, i.e. after COMMIT.
 *
 * Values cross by structured clone: Buffers arrive as Uint8Arrays (turned back into Buffers
 * here); Dates and bigints survive; the store's error classes are rebuilt by name.
 */
import {
  AlreadyIssuedError,
  DuplicateKeyError,
  SerialConflictError,
  TransactionExistsError,
  TransactionStateError,
  type Store,
  type StoreStats,
} from '../store/index.js';

/** Store members that stay local: the kind is known, counters and closing belong to the owner. */
type LocalMember = 'kind' | 'stats' | 'close';

/** Store methods that may be called remotely: every method but stats/close. */
export const STORE_METHODS = [
  'getCertificate',
  'searchCertificates',
  'insertCertificate',
  'bulkInsertCertificates',
  'revoke',
  'listRevoked',
  'beginTransaction',
  'getTransaction',
  'transactionExists',
  'listTransactions',
  'recordIssued',
  'decide',
  'fail',
  'expirePending',
  'notePoll',
  'nextCrlNumber',
  'saveCrl',
  'latestCrl',
  'addSecret',
  'consumeSecret',
  'pruneSecrets',
  'getSetting',
  'setSetting',
  'incrementCounter',
  'readCounters',
  'pruneCounters',
  'appendAudit',
  'listAudit',
  'readAuditChain',
  'integrityCheck',
] as const satisfies readonly Exclude<keyof Store, LocalMember>[];

export type RemoteStoreMethod = (typeof STORE_METHODS)[number];

/** Compile-time check: a Store method missing from STORE_METHODS is named in the error here. */
type Unlisted = Exclude<keyof Store, LocalMember | RemoteStoreMethod>;
const everyMethodListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyMethodListed;

/** A store call posted by a worker. */
export interface StoreCall {
  type: 'store';
  id: number;
  method: RemoteStoreMethod;
  args: unknown[];
}

/** A serialised error (name, message and the fields of the store's error classes). */
export interface WireError {
  name: string;
  message: string;
  serial?: string;
  transactionId?: string;
  state?: string | null;
  what?: string;
}

/** The main thread's answer to a StoreCall. */
export type StoreResult =
  | { type: 'store-result'; id: number; ok: true; value: unknown }
  | { type: 'store-result'; id: number; ok: false; error: WireError };

/** Turns Uint8Arrays (Buffers after structured clone) back into Buffers, recursively. */
export function revive<T>(v: T): T {
  if (v instanceof Uint8Array) {
    return (Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength)) as T;
  }
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = revive(v[i]);
    return v;
  }
  if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) o[k] = revive(o[k]);
  }
  return v;
}

/**
 * Prepares a value for postMessage. Structured clone copies the WHOLE ArrayBuffer behind a
 * Uint8Array, and most Buffers here are views into larger ones (Node's 8 KiB allocation pool,
 * a socket read): so a copy of `v` is returned in which every Buffer that is a view is an
 * exact copy whose ArrayBuffer is moved (`list`, the transferList), not cloned. Plain objects
 * and arrays are copied, never changed: the caller's values stay intact and usable. Buffers
 * that own their whole ArrayBuffer are left to the clone (never detached: others may hold them).
 */
export function transferable<T>(v: T, list: ArrayBuffer[]): T {
  if (v instanceof Uint8Array) {
    if (v.byteOffset === 0 && v.byteLength === v.buffer.byteLength) return v;
    const copy = new Uint8Array(v);
    list.push(copy.buffer);
    return copy as T;
  }
  if (Array.isArray(v)) return v.map((x: unknown) => transferable(x, list)) as T;
  if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = transferable(x, list);
    return out as T;
  }
  return v;
}

/** Serialises an error for postMessage, keeping what the store's error classes carry. */
export function toWireError(e: unknown): WireError {
  if (!(e instanceof Error)) return { name: 'Error', message: String(e) };
  const w: WireError = { name: e.name, message: e.message };
  const f = e as Error & Partial<Omit<WireError, 'name' | 'message'>>;
  if (f.serial !== undefined) w.serial = f.serial;
  if (f.transactionId !== undefined) w.transactionId = f.transactionId;
  if (f.state !== undefined) w.state = f.state;
  if (f.what !== undefined) w.what = f.what;
  return w;
}

/** The store's error classes (the RA branches on them), rebuilt by class name from the wire. */
const STORE_ERRORS: Readonly<Record<string, (w: WireError) => Error>> = {
  SerialConflictError: (w) => new SerialConflictError(w.serial ?? ''),
  AlreadyIssuedError: (w) => new AlreadyIssuedError(w.transactionId ?? '', w.serial ?? ''),
  TransactionStateError: (w) => new TransactionStateError(w.transactionId ?? '', w.state ?? null),
  TransactionExistsError: (w) => new TransactionExistsError(w.transactionId ?? ''),
  DuplicateKeyError: (w) => new DuplicateKeyError(w.what ?? 'key'),
};

/** Rebuilds the store's error classes; anything else is an Error with the same name and message. */
export function fromWireError(w: WireError): Error {
  const rebuild = Object.hasOwn(STORE_ERRORS, w.name) ? STORE_ERRORS[w.name] : undefined;
  if (rebuild) return rebuild(w);
  const e = new Error(w.message);
  e.name = w.name;
  return e;
}

/** Main thread: runs one StoreCall on the real store and produces the reply to post. */
export async function runStoreCall(store: Store, call: StoreCall): Promise<StoreResult> {
  if (!(STORE_METHODS as readonly string[]).includes(call.method)) {
    return { type: 'store-result', id: call.id, ok: false, error: { name: 'Error', message: 'bad method' } };
  }
  try {
    const fn = store[call.method] as (...a: unknown[]) => Promise<unknown>;
    const value = await fn.apply(store, revive(call.args));
    return { type: 'store-result', id: call.id, ok: true, value };
  } catch (e) {
    return { type: 'store-result', id: call.id, ok: false, error: toWireError(e) };
  }
}

/**
 * Worker side: a Store whose every call is a message to the main thread. `post` sends a
 * StoreCall (with its transferList); feed the main thread's replies to `settle`. The
 * forwarders are made from STORE_METHODS in the constructor.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface RemoteStore extends Pick<Store, RemoteStoreMethod> {}

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class RemoteStore implements Store {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

  constructor(
    readonly kind: Store['kind'],
    private readonly post: (call: StoreCall, transfer: ArrayBuffer[]) => void,
  ) {
    const self = this as unknown as Record<RemoteStoreMethod, (...args: unknown[]) => Promise<unknown>>;
    for (const method of STORE_METHODS) self[method] = (...args: unknown[]) => this.call(method, args);
  }

  /** Delivers a StoreResult from the main thread. */
  settle(r: StoreResult): void {
    const p = this.pending.get(r.id);
    if (!p) return;
    this.pending.delete(r.id);
    if (r.ok) p.resolve(revive(r.value));
    else p.reject(fromWireError(r.error));
  }

  private call(method: RemoteStoreMethod, args: unknown[]): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      const transfer: ArrayBuffer[] = [];
      this.post({ type: 'store', id, method, args: transferable(args, transfer) }, transfer);
    });
  }

  /** Counters live with the real store on the main thread. */
  stats(): StoreStats {
    return { writes: 0, commits: 0 };
  }
  /** The main thread owns (and closes) the real store; pending calls fail. */
  close(): Promise<void> {
    for (const p of this.pending.values()) p.reject(new Error('store is closed'));
    this.pending.clear();
    return Promise.resolve();
  }
}
