/**
 * Messages between the HTTP thread and the enrollment worker threads (plain data only).
 */
import type { EnrollmentConfig } from '../ra/config.js';
import type { ServiceStats } from '../ra/service.js';
import type { RequestContext, ScepAnswer } from '../ra/types.js';
import type { LifecycleSettings } from './lifecycle-setup.js';
import type { ProfileInit } from './profiles.js';
import type { StoreCall, StoreResult, WireError } from './store-rpc.js';

/** workerData: what a worker needs to build its own EnrollmentService. */
export interface WorkerInit {
  /** Data directory holding the CA (and RA) keys; the worker loads them itself. */
  dataDir: string;
  caPassphrase?: string;
  /** The full enrollment configuration, challenges included (one service; ignored with `profiles`). */
  config: EnrollmentConfig;
  /** Certificate lifecycle settings (approval, renewal, CRLs): see src/server/compose.ts. */
  lifecycle?: LifecycleSettings;
  /**
   * True when the challenge-failure throttle is on: the worker asks the HTTP thread's throttle
   * (`lock` messages) where a challenge is checked, so every engine uses one throttle and clock.
   */
  challengeLock?: boolean;
  /** Profiles (src/server/profiles.ts): one service each, PKIOperations routed by `ctx.profile`. */
  profiles?: ProfileInit[];
  /** The profile of a PKIOperation without `ctx.profile`. */
  defaultProfile?: string;
  storeKind: 'sqlite' | 'postgres';
  /** Which CA of the data directory issues (default `default`): see ComposeOptions.caName. */
  caName?: string;
  /** The enrollment profile's name (default `default`). */
  profile?: string;
}

/** HTTP thread → worker. */
export type ToWorker =
  | { type: 'op'; id: number; message: Uint8Array; ctx: RequestContext }
  | { type: 'lock-result'; id: number; locked: boolean; error?: WireError }
  | StoreResult;

/** Worker → HTTP thread. */
export type FromWorker =
  | { type: 'ready' }
  | { type: 'init-failed'; error: WireError }
  /** `stats`: the worker's service counters that changed while answering (deltas). */
  | { type: 'answer'; id: number; answer: ScepAnswer; stats?: Partial<ServiceStats> }
  | { type: 'log'; level: 'warn' | 'error'; obj: Record<string, unknown>; msg: string }
  /** Is this client address locked by the challenge-failure throttle? (answered by `lock-result`) */
  | { type: 'lock'; id: number; address: string | undefined }
  | StoreCall;
