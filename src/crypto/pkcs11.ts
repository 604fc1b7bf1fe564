/**
 * The PKCS#11 library in this process: the optional `pkcs11js` binding (loaded only when a
 * PKCS#11 URI is used, so scepter runs without it), one loaded module per path and thread, and
 * the lock that makes re-initializing a module safe while worker threads use it.
 *
 * Why a lock: a PKCS#11 module is loaded once per process, so every worker thread shares its
 * state. Recovering from a token that went away may need C_Finalize + C_Initialize (SoftHSM
 * keeps a removed token invalid until then), and PKCS#11 forbids C_Finalize while another
 * thread is inside the library. Every call therefore runs under a shared lock, re-initialization
 * under an exclusive one, both in a SharedArrayBuffer the worker pool hands to its workers
 * (`pkcs11SharedState`/`usePkcs11SharedState`); a generation counter tells the other threads
 * that their sessions died with the old initialization.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isMainThread } from 'node:worker_threads';
import type * as P11 from 'pkcs11js';

export type Pkcs11Lib = typeof P11;
export type Pkcs11Session = P11.Handle;

/** A PKCS#11 configuration problem found at start: module, token, PIN or object. */
export class Pkcs11SetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Pkcs11SetupError';
  }
}

let lib: Pkcs11Lib | undefined;

/**
 * The `pkcs11js` binding, loaded on first use. It is a native CommonJS addon; `createRequire`
 * loads it lazily and synchronously (key loading is synchronous, like the rest of `loadCa`).
 */
export function pkcs11js(): Pkcs11Lib {
  if (lib) return lib;
  try {
    lib = createRequire(import.meta.url)('pkcs11js') as Pkcs11Lib;
  } catch {
    throw new Pkcs11SetupError(
      'PKCS#11 keys need the optional package pkcs11js, which is not installed (npm install pkcs11js)',
    );
  }
  return lib;
}

/** PKCS#11 return-value name of an error from pkcs11js ("CKR_PIN_INCORRECT"), else its message. */
export function ckr(e: unknown): string {
  if (e instanceof Error) return e.message.split(/[\s:]/)[0] ?? e.name;
  return 'unknown error';
}

// --- the cross-thread lock: [0] state (readers ≥ 0, writer −1), [1] generation -------------
let shared: Int32Array | undefined;

/** The lock buffer of this process (created on first use); hand it to worker threads. */
export function pkcs11SharedState(): SharedArrayBuffer {
  shared ??= new Int32Array(new SharedArrayBuffer(8));
  return shared.buffer as SharedArrayBuffer;
}

/** In a worker thread: use the lock of the thread that created the worker. */
export function usePkcs11SharedState(sab: SharedArrayBuffer | undefined): void {
  if (sab) shared = new Int32Array(sab);
}

function state(): Int32Array {
  pkcs11SharedState();
  return shared!;
}

/** The current initialization generation (bumped by every re-initialization). */
export function pkcs11Generation(): number {
  return Atomics.load(state(), 1);
}

/** Runs `f` as one of possibly many concurrent users of the library. */
export function withShared<T>(f: () => T): T {
  const s = state();
  for (;;) {
    const v = Atomics.load(s, 0);
    if (v >= 0 && Atomics.compareExchange(s, 0, v, v + 1) === v) break;
    Atomics.wait(s, 0, v, 100);
  }
  try {
    return f();
  } finally {
    if (Atomics.sub(s, 0, 1) === 1) Atomics.notify(s, 0);
  }
}

/**
 * Runs `f` alone (no other thread inside the library); unless `f` returns false, bumps the
 * generation (every session of the process has ended).
 */
function withExclusive(f: () => boolean | void): void {
  const s = state();
  for (;;) {
    const v = Atomics.compareExchange(s, 0, 0, -1);
    if (v === 0) break;
    Atomics.wait(s, 0, v, 100);
  }
  let bump = true;
  try {
    bump = f() !== false;
  } finally {
    if (bump) Atomics.add(s, 1, 1);
    Atomics.store(s, 0, 0);
    Atomics.notify(s, 0);
  }
}

// --- modules -----------------------------------------------------------------------------
export interface Pkcs11Module {
  readonly path: string;
  readonly p11: P11.PKCS11;
  readonly lib: Pkcs11Lib;
  /** This thread called C_Initialize successfully (and so finalizes on close). */
  initialized: boolean;
  /** Open keys using it in this thread. */
  refs: number;
}

const modules = new Map<string, Pkcs11Module>();

/** The module at `path`, loaded and initialized once per thread. */
export function pkcs11Module(path: string): Pkcs11Module {
  const have = modules.get(path);
  if (have) return have;
  const l = pkcs11js();
  if (!existsSync(path)) throw new Pkcs11SetupError(`PKCS#11 module ${path} does not exist`);
  const p11 = new l.PKCS11();
  try {
    p11.load(path);
  } catch (e) {
    throw new Pkcs11SetupError(
      `cannot load the PKCS#11 module ${path}: ${e instanceof Error ? e.message : ''}`,
    );
  }
  const m: Pkcs11Module = { path, p11, lib: l, initialized: false, refs: 0 };
  withShared(() => initialize(m));
  modules.set(path, m);
  return m;
}

function initialize(m: Pkcs11Module): void {
  try {
    m.p11.C_Initialize({ flags: m.lib.CKF_OS_LOCKING_OK });
    m.initialized = true;
  } catch (e) {
    // Another thread of this process initialized it: fine, sessions are per thread.
    if (ckr(e) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED')
      throw new Pkcs11SetupError(`cannot initialize the PKCS#11 module ${m.path}: ${ckr(e)}`);
  }
}

/**
 * Re-initializes a module after a token failure (see the module comment). Every session of
 * every thread ends; the others notice through the generation and reopen theirs. `seen` is the
 * generation the caller's failed attempt ran under: when another thread has re-initialized
 * since, this does nothing (the caller just tries again), so threads recovering at the same
 * time do not end each other's fresh sessions.
 */
export function reinitializePkcs11Module(m: Pkcs11Module, seen: number): void {
  withExclusive(() => {
    if (Atomics.load(state(), 1) !== seen) return false;
    try {
      m.p11.C_Finalize();
    } catch {
      // not initialized any more: fine
    }
    m.initialized = false;
    initialize(m);
  });
}

/** A key starts using the module. */
export function retainPkcs11Module(m: Pkcs11Module): void {
  m.refs++;
}

/**
 * A key stopped using the module (its session is closed). The last one unloads it from this
 * thread and, on the main thread (or a thread that initialized it), finalizes it, which also
 * ends any session a terminated worker thread left open. So closing every key at shutdown,
 * after the workers have stopped, closes everything. (Which thread initialized the module last
 * depends on who recovered from a token failure, so the main thread finalizes regardless.)
 */
export function releasePkcs11Module(m: Pkcs11Module): void {
  if (--m.refs > 0) return;
  modules.delete(m.path);
  if (!m.initialized && !isMainThread) return;
  m.initialized = false;
  withExclusive(() => {
    try {
      m.p11.C_Finalize();
    } catch {
      // already finalized
    }
  });
}
