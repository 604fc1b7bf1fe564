/**
 * Running a scepter SCEP server in-process: `startServer` builds the enrollment service from a
 * data directory (or takes a ready service), starts fastify and returns its URL and a `close`
 * that drains in-flight requests and closes the store. Used by `scepter serve`, the tests, the
 * client tests and the benchmarks.
 */
import { fastifyCookie } from '@fastify/cookie';
import type { FastifyInstance } from 'fastify';
import type { CaKeySize } from '../ca/keystore.js';
import type { EnrollmentConfig } from '../ra/config.js';
import type { Lifecycle } from '../ra/lifecycle.js';
import type { EnrollmentService, ServiceLogger } from '../ra/service.js';
import type { ScepService } from '../ra/types.js';
import { openStore, type Store } from '../store/index.js';
import swagger from '@fastify/swagger';
import { adminRoutes } from './admin-routes.js';
import { OPENAPI_OPTIONS } from './admin-schemas.js';
import { adminStatusRoutes } from './admin-status-routes.js';
import { consoleRoutes } from './console-routes.js';
import { ConsoleSessions, consoleSessionAuth, loadSessionKey } from './console-session.js';
import { bearerTokenAuth, DEFAULT_ADMIN_NAME, type AdminAuth, type AdminToken } from './admin-auth.js';
import { buildApp, type AppOptions } from './app.js';
import { ServerMetrics } from './metrics.js';
import type { ReadinessCheck } from './ops-routes.js';
import { prepareDataDir, type PreparedDataDir } from './data-dir.js';
import {
  adminChallengeRoutes,
  challengeConfig,
  throttledService,
  type ChallengeSettings,
} from './challenges.js';
import { composeEnrollment } from './compose.js';
import type { LifecycleSettings } from './lifecycle-setup.js';
import { WorkerPoolService } from './worker-pool.js';

export { buildApp, DEFAULT_BODY_LIMIT, DEFAULT_URL_LIMIT, type AppOptions, type LogLevel } from './app.js';
export { LOG_FORMATS, type LogFormat } from './log-format.js';
export { prepareDataDir, loadOrCreateChallenge, CHALLENGE_FILE, type PreparedDataDir } from './data-dir.js';

export interface StartServerOptions extends Omit<AppOptions, 'service' | 'ops'> {
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** Port (default 0: any free port). */
  port?: number;
  /** A ready service; when given, the data-directory options below are ignored. */
  service?: ScepService;
  /** Data directory: CA (created when missing), generated challenge, default SQLite store. */
  dataDir?: string;
  /** Challenge password (default: DIR/challenge, generated on first start). */
  challenge?: string;
  /**
   * Static challenge on/off, per-source throttling of challenge failures, the admin endpoint
   * minting one-time challenges (src/server/challenges.ts; data-directory mode only).
   */
  challenges?: ChallengeSettings;
  /**
   * A CA created now gets an RA certificate unless this is false (CA-only); true requires the
   * RA of an existing CA. An existing CA keeps what it has.
   */
  ra?: boolean;
  /** Key size of a CA created now (default 3072; tests use 2048). */
  keySize?: CaKeySize;
  /** CA key passphrase. */
  caPassphrase?: string;
  /** Store URL (default sqlite:DIR/scepter.db); ignored when `store` is given. */
  storeUrl?: string;
  /** An open store to use (not closed by `close()`). */
  store?: Store;
  /** Enrollment settings other than the challenge (allowSingleDes, validitySeconds, key sizes...). */
  enrollment?: Omit<EnrollmentConfig, 'challenges'>;
  /** Certificate lifecycle: approval mode, renewal policy, CRL validity, public URL (CRL DP). */
  lifecycle?: LifecycleSettings;
  /** How often pending requests are expired and stale CRLs refreshed, ms (default 60 000). */
  maintenanceIntervalMs?: number;
  /**
   * Data-directory mode: PKIOperations run on this many engines (src/server/worker-pool.ts): the
   * HTTP thread and N − 1 worker threads, all sharing this process's one store. 1 (default) runs
   * them in-process only.
   */
  workers?: number;
  /** Serve Prometheus metrics at `/metrics` (default true; `/healthz` and `/readyz` are always served). */
  metrics?: boolean;
  /** Bearer token `/metrics` requires (default: none, open to whoever reaches the port). */
  metricsToken?: string;
  /**
   * Named admin bearer tokens (src/server/admin-auth.ts); `challenges.adminToken` joins them as
   * the token named `admin`. None: the admin API answers 404.
   */
  adminTokens?: readonly AdminToken[];
  /**
   * The web console at `/ui/` (docs/console.md; served only with an admin credential, data-
   * directory mode): `dir` is the built bundle (default: dist/console/ of the package),
   * `idleSeconds` the session idle timeout (default 1800).
   */
  console?: { dir?: string; idleSeconds?: number };
}

/** The admin credentials of a server: `adminTokens` plus the single `challenges.adminToken`. */
export function adminAuthOf(o: Pick<StartServerOptions, 'adminTokens' | 'challenges'>): AdminAuth {
  const single = o.challenges?.adminToken;
  return bearerTokenAuth([
    ...(o.adminTokens ?? []),
    ...(single !== undefined ? [{ name: DEFAULT_ADMIN_NAME, secret: single }] : []),
  ]);
}

export interface RunningServer {
  /** The SCEP endpoint URL (`…/scep`; any path works). */
  url: string;
  /** `http(s)://host:port` without a path. */
  origin: string;
  port: number;
  service: ScepService;
  /** The enrollment service when built here from a data directory. */
  enrollment?: EnrollmentService;
  /** What `prepareDataDir` found or created (data-directory mode only). */
  dataDir?: PreparedDataDir;
  /** Approval, renewal, GetCert/GetCRL and CRLs (data-directory mode only). */
  lifecycle?: Lifecycle;
  app: FastifyInstance;
  /** Who may call the admin API (the seam every admin route uses). */
  adminAuth: AdminAuth;
  /** The server's metrics (absent with `metrics: false`). */
  metrics?: ServerMetrics;
  /** Stops accepting connections, finishes in-flight requests, closes the store it opened. */
  close(): Promise<void>;
}

function hostForUrl(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/** Builds the service (when needed), starts listening and resolves once the port is bound. */
export async function startServer(o: StartServerOptions): Promise<RunningServer> {
  let service = o.service;
  let enrollment: EnrollmentService | undefined;
  let prepared: PreparedDataDir | undefined;
  let lifecycle: Lifecycle | undefined;
  let ownedStore: Store | undefined;
  let pool: WorkerPoolService | undefined;
  let appRef: FastifyInstance | undefined;
  const logger: ServiceLogger = {
    warn: (obj, msg) => appRef?.log.warn(obj, msg),
    error: (obj, msg) => appRef?.log.error(obj, msg),
  };

  if (!service) {
    if (o.dataDir === undefined) throw new TypeError('startServer needs either `service` or `dataDir`');
    prepared = await prepareDataDir(o.dataDir, {
      ...(o.ra !== undefined ? { ra: o.ra } : {}),
      ...(o.keySize ? { keySize: o.keySize } : {}),
      ...(o.caPassphrase ? { passphrase: o.caPassphrase } : {}),
      ...(o.challenge !== undefined ? { challenge: o.challenge } : {}),
      ...(o.challenges?.static === false ? { staticChallenge: false } : {}),
      ...(o.storeUrl !== undefined ? { storeUrl: o.storeUrl } : {}),
    });
    const store = o.store ?? (ownedStore = await openStore(prepared.storeUrl));
    const { loaded } = prepared;
    const enrollmentConfig = { ...o.enrollment, ...challengeConfig(prepared) };
    enrollment = composeEnrollment({
      dataDir: o.dataDir,
      loaded,
      ...(o.caPassphrase ? { passphrase: o.caPassphrase } : {}),
      store,
      config: enrollmentConfig,
      ...(o.lifecycle ? { lifecycle: o.lifecycle } : {}),
      logger,
    });
    lifecycle = enrollment.lifecycle;
    service = enrollment;
    if ((o.workers ?? 1) > 1) {
      try {
        // N engines: the HTTP thread enrolls too, next to N − 1 worker threads.
        pool = await WorkerPoolService.start({
          workers: (o.workers ?? 1) - 1,
          inProcess: true,
          local: enrollment,
          store,
          init: {
            dataDir: o.dataDir,
            ...(o.caPassphrase ? { caPassphrase: o.caPassphrase } : {}),
            config: enrollmentConfig,
            ...(o.lifecycle ? { lifecycle: o.lifecycle } : {}),
          },
          logger,
        });
      } catch (e) {
        await ownedStore?.close();
        throw e;
      }
      service = pool;
    }
  }

  const bearerAuth = adminAuthOf(o);
  // Web console sessions (src/server/console-session.ts), another way to authenticate as a named
  // admin: signed with a key kept in the data directory, so every instance sharing it accepts
  // the same sessions.
  const sessions =
    prepared && o.dataDir !== undefined && bearerAuth.enabled
      ? new ConsoleSessions({
          key: loadSessionKey(o.dataDir),
          secure: Boolean(o.tls),
          ...(o.console?.idleSeconds !== undefined ? { idleSeconds: o.console.idleSeconds } : {}),
        })
      : undefined;
  const adminAuth = sessions ? consoleSessionAuth(sessions, bearerAuth) : bearerAuth;
  let closing: Promise<void> | undefined;
  const { metrics, readiness } = observability(o, { enrollment, prepared, lifecycle, pool }, () =>
    closing !== undefined ? 'shutting down' : undefined,
  );
  // The challenge-failure throttle sits in this (HTTP) thread, in front of every worker.
  const front = prepared
    ? throttledService(service, o.challenges?.throttle, enrollment?.store, logger)
    : service;
  let app: FastifyInstance;
  try {
    app = await buildApp({
      ...o,
      service: front,
      ...(lifecycle ? { crl: lifecycle.crls } : {}),
      ops: {
        readiness,
        ...(metrics ? { metrics } : {}),
        ...(o.metricsToken !== undefined ? { metricsToken: o.metricsToken } : {}),
      },
    });
    appRef = app;
    // Console session cookies (req.cookies, reply.setCookie) for every admin route.
    if (sessions) await app.register(fastifyCookie);
    // Before the admin routes: @fastify/swagger collects their schemas (admin-schemas.ts).
    await app.register(swagger, OPENAPI_OPTIONS);
    if (prepared && enrollment) {
      await app.register(adminChallengeRoutes, {
        store: enrollment.store,
        key: prepared.challengeKey,
        auth: adminAuth,
        ...(o.challenges?.ttlSeconds !== undefined ? { ttlSeconds: o.challenges.ttlSeconds } : {}),
      });
    }
    // Operator API (src/server/admin-routes.ts): same admin seam; runs here, on the main store.
    if (enrollment && lifecycle) {
      await app.register(adminRoutes, { store: enrollment.store, crls: lifecycle.crls, auth: adminAuth });
      await app.register(adminStatusRoutes, {
        store: enrollment.store,
        crls: lifecycle.crls,
        auth: adminAuth,
        ...(o.dataDir !== undefined ? { dataDir: o.dataDir } : {}),
      });
      // The web console (src/server/console-routes.ts): 404 unless an admin credential is set.
      await app.register(consoleRoutes, {
        bearer: bearerAuth,
        ...(sessions ? { sessions } : {}),
        ...(o.console?.dir !== undefined ? { dir: o.console.dir } : {}),
      });
    }
    await app.listen({ host: o.host ?? '127.0.0.1', port: o.port ?? 0 });
  } catch (e) {
    metrics?.close();
    await pool?.close();
    await ownedStore?.close();
    throw e;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (o.port ?? 0);
  const origin = `${o.tls ? 'https' : 'http'}://${hostForUrl(o.host ?? '127.0.0.1')}:${port}`;
  const stopMaintenance = lifecycle?.startMaintenance(o.maintenanceIntervalMs);
  const running: RunningServer = {
    url: `${origin}/scep`,
    origin,
    port,
    service,
    app,
    adminAuth,
    close() {
      closing ??= (async () => {
        stopMaintenance?.();
        metrics?.close();
        try {
          await app.close();
        } finally {
          await pool?.close();
          await ownedStore?.close();
        }
      })();
      return closing;
    },
  };
  if (metrics) running.metrics = metrics;
  if (enrollment) running.enrollment = enrollment;
  if (lifecycle) running.lifecycle = lifecycle;
  if (prepared) running.dataDir = prepared;
  return running;
}

/** Longest a readiness store query may take, ms. */
const READY_STORE_TIMEOUT_MS = 1500;

/**
 * The metrics (unless `metrics: false`) and the readiness check of a server: ready while not
 * shutting down, with an unexpired CA and a store that answers a one-row read in time.
 */
function observability(
  o: StartServerOptions,
  parts: {
    enrollment: EnrollmentService | undefined;
    prepared: PreparedDataDir | undefined;
    lifecycle: Lifecycle | undefined;
    pool: WorkerPoolService | undefined;
  },
  shuttingDown: () => string | undefined,
): { metrics: ServerMetrics | undefined; readiness: ReadinessCheck } {
  const { enrollment, prepared, lifecycle, pool } = parts;
  const store = enrollment?.store;
  const caCert = prepared?.loaded.ca.cert;
  const readiness: ReadinessCheck = async () => {
    const closing = shuttingDown();
    if (closing) return closing;
    if (caCert && caCert.notAfter.getTime() <= Date.now()) return 'the CA certificate has expired';
    if (!store) return undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      const answered = await Promise.race([
        store.getSetting('scepter.readyz').then(() => true),
        new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), READY_STORE_TIMEOUT_MS))),
      ]);
      return answered ? undefined : `the store did not answer within ${READY_STORE_TIMEOUT_MS} ms`;
    } catch {
      return 'the store is not available';
    } finally {
      clearTimeout(timer);
    }
  };
  if (o.metrics === false) return { metrics: undefined, readiness };
  const metrics = new ServerMetrics({
    sources: {
      ...(enrollment ? { serviceStats: () => enrollment.stats } : {}),
      ...(store ? { storeStats: () => store.stats() } : {}),
      ...(enrollment ? { workers: () => pool?.engines ?? 1 } : {}),
      ...(caCert ? { caNotAfter: () => caCert.notAfter } : {}),
      ...(store
        ? {
            pendingRequests: async () => (await store.listTransactions({ state: 'pending', limit: 1 })).total,
          }
        : {}),
      ...(store && lifecycle
        ? { crlNextUpdate: async () => (await store.latestCrl(lifecycle.crls.currentIssuer))?.nextUpdate }
        : {}),
    },
  });
  return { metrics, readiness };
}
