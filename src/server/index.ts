/**
 * Running a scepter SCEP server in-process: `startServer` builds the enrollment service from a
 * data directory (or takes a ready service), starts fastify and returns its URL and a `close`
 * that drains in-flight requests and closes the store. Used by `scepter serve`, the tests, the
 * client tests and the benchmarks.
 */
import { fastifyCookie } from '@fastify/cookie';
import type { FastifyInstance } from 'fastify';
import type { CaKeySize, CaKeyType } from '../ca/keystore.js';
import type { EnrollmentConfig } from '../ra/config.js';
import type { Lifecycle } from '../ra/lifecycle.js';
import type { EnrollmentService, ServiceLogger } from '../ra/service.js';
import type { FailureThrottle } from '../ra/throttle.js';
import type { ScepService } from '../ra/types.js';
import { openStore, type Store } from '../store/index.js';
import swagger from '@fastify/swagger';
import { OcspResponder, type OcspIssuer, type OcspSettings } from '../ca/ocsp-responder.js';
import { adminRoutes } from './admin-routes.js';
import { OPENAPI_OPTIONS } from './admin-schemas.js';
import { adminStatusRoutes } from './admin-status-routes.js';
import { consoleRoutes } from './console-routes.js';
import { ConsoleSessions, consoleSessionAuth, loadSessionKey } from './console-session.js';
import { bearerTokenAuth, DEFAULT_ADMIN_NAME, type AdminAuth, type AdminToken } from './admin-auth.js';
import { buildApp, type AppOptions } from './app.js';
import { severalCaCrls, type CrlSource } from './crl-route.js';
import { ServerMetrics, type MetricsSources } from './metrics.js';
import type { ReadinessCheck } from './ops-routes.js';
import {
  prepareCa,
  prepareDataDir,
  type DataDirOptions,
  type PrepareCaOptions,
  type PreparedDataDir,
} from './data-dir.js';
import { DEFAULT_CA_NAME } from '../ca/ca-location.js';
import type { CrlPublisher } from '../ca/crl.js';
import type { LoadedCa } from '../ca/keystore.js';
import {
  adminChallengeRoutes,
  challengeThrottle,
  throttledService,
  type ChallengeSettings,
} from './challenges.js';
import {
  caLookup,
  composeProfiles,
  needsDataDirChallenge,
  ProfileEndpoints,
  ProfileRouter,
  profileInit,
  type ProfileSet,
  type ScepEndpoints,
} from './profiles.js';
import type { LifecycleSettings } from './lifecycle-setup.js';
import { WorkerPoolService } from './worker-pool.js';

export { buildApp, DEFAULT_BODY_LIMIT, DEFAULT_URL_LIMIT, type AppOptions, type LogLevel } from './app.js';
export { LOG_FORMATS, type LogFormat } from './log-format.js';
export { prepareDataDir, loadOrCreateChallenge, CHALLENGE_FILE, type PreparedDataDir } from './data-dir.js';

export interface StartServerOptions extends Omit<AppOptions, 'service' | 'ops'> {
  /**
   * The OCSP responder at `/ocsp` for every CA the profiles issue from (default on, CA-signed);
   * false: off. Without it, `lifecycle.ocsp` (the one-profile options) decides.
   */
  ocspSettings?: OcspSettings | false;
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
  /** Key type of a CA created now (default 'rsa'; 'ec-p256'/'ec-p384' need the RA). */
  caKeyType?: CaKeyType;
  /** CA key passphrase. */
  caPassphrase?: string;
  /** Store URL (default sqlite:DIR/scepter.db); ignored when `store` is given. */
  storeUrl?: string;
  /** An open store to use (not closed by `close()`). */
  store?: Store;
  /** Enrollment settings other than the challenge (allowSingleDes, validitySeconds, key sizes...). */
  enrollment?: Omit<EnrollmentConfig, 'challenges'>;
  /**
   * Certificate lifecycle: approval mode, renewal policy, CRL validity, public URL (CRL DP and
   * OCSP URL), the OCSP responder (on by default in data-directory mode).
   */
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
   * Data-directory mode: the profiles (src/server/profiles.ts), each at its own path. Absent:
   * one profile, `default`, on every path, from `enrollment`, `lifecycle` and `challenge`.
   */
  profiles?: ProfileSet;
  /** The configuration's version (e.g. a hash of the file) for /readyz and the metrics (default `flags`). */
  configVersion?: string;
  /** Named CAs (DIR/cas/NAME/) created on first start: RA or CA-only (default RA). */
  cas?: Readonly<Record<string, { ra?: boolean; keyType?: CaKeyType }>>;
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
  /** Named CAs created by this start (a profile named them; data-directory mode only). */
  createdCas?: readonly string[];
  /** Approval, renewal, GetCert/GetCRL and CRLs (data-directory mode only). */
  lifecycle?: Lifecycle;
  /** The OCSP responder at `/ocsp` (data-directory mode, unless `lifecycle.ocsp` is false). */
  ocsp?: OcspResponder;
  app: FastifyInstance;
  /** Who may call the admin API (the seam every admin route uses). */
  adminAuth: AdminAuth;
  /** The server's metrics (absent with `metrics: false`). */
  metrics?: ServerMetrics;
  /** The configuration version running (data-directory mode: see `reload`). */
  version(): ConfigVersion;
  /**
   * Data-directory mode: builds the services of `set` (workers included) and swaps them in
   * atomically; requests in flight finish under the services they started with. A `set` that
   * cannot be built is refused (rejects) and the running one keeps serving. Reloads run one at a time.
   */
  reload(set: ProfileSet, id: string): Promise<ConfigVersion>;
  /** Counts a reload refused before `reload` (a configuration file that failed validation). */
  reloadFailed(): void;
  /** Stops accepting connections, finishes in-flight requests, closes the store it opened. */
  close(): Promise<void>;
}

function hostForUrl(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/** One configuration's services; a reload builds the next one and swaps it in. */
interface Generation {
  endpoints: ProfileEndpoints;
  /** The default profile's service (admin API, CRLs, metrics). */
  enrollment: EnrollmentService;
  services: ReadonlyMap<string, EnrollmentService>;
  pool: WorkerPoolService | undefined;
  /** PKIOperations running under this generation. */
  inflight: number;
  drained?: () => void;
}

/** The configuration version a server runs: a hash of its source and how many loads it took. */
export interface ConfigVersion {
  /** Identifies the configuration (e.g. a hash of the file); default `flags`. */
  id: string;
  /** 1 at start, +1 per successful reload. */
  loads: number;
  /** Failed reloads since start. */
  failedReloads: number;
}

/** The profile `serve` without a configuration file runs: every path, today's settings. */
function flagsProfile(o: StartServerOptions): ProfileSet {
  return {
    profiles: [
      {
        name: 'default',
        ...(o.enrollment ? { enrollment: o.enrollment } : {}),
        ...(o.lifecycle ? { lifecycle: o.lifecycle } : {}),
      },
    ],
    defaultProfile: 'default',
  };
}

/** Builds the service (when needed), starts listening and resolves once the port is bound. */
export async function startServer(o: StartServerOptions): Promise<RunningServer> {
  let service = o.service;
  let prepared: PreparedDataDir | undefined;
  let ownedStore: Store | undefined;
  let appRef: FastifyInstance | undefined;
  let gen: Generation | undefined;
  const version: ConfigVersion = { id: o.configVersion ?? 'flags', loads: 1, failedReloads: 0 };
  const logger: ServiceLogger = {
    warn: (obj, msg) => appRef?.log.warn(obj, msg),
    error: (obj, msg) => appRef?.log.error(obj, msg),
  };
  let throttle: FailureThrottle | undefined;

  let build: ((set: ProfileSet) => Promise<Generation>) | undefined;
  let closeKeys = (): void => {};
  const createdCas: string[] = [];
  if (!service) {
    if (o.dataDir === undefined) throw new TypeError('startServer needs either `service` or `dataDir`');
    const dataDir = o.dataDir;
    const initial = o.profiles ?? flagsProfile(o);
    const dirOpts: DataDirOptions = {};
    if (o.ra !== undefined) dirOpts.ra = o.ra;
    if (o.keySize) dirOpts.keySize = o.keySize;
    if (o.caKeyType) dirOpts.caKeyType = o.caKeyType;
    if (o.caPassphrase) dirOpts.passphrase = o.caPassphrase;
    if (o.challenge !== undefined) dirOpts.challenge = o.challenge;
    if (o.challenges?.static === false || !needsDataDirChallenge(initial)) dirOpts.staticChallenge = false;
    if (o.storeUrl !== undefined) dirOpts.storeUrl = o.storeUrl;
    prepared = await prepareDataDir(dataDir, dirOpts);
    // Every CA a profile names, created on first start like the default one (DIR/cas/NAME/).
    const cas = new Map<string, LoadedCa>([[DEFAULT_CA_NAME, prepared.loaded]]);
    // Sessions on a PKCS#11 token (every CA's), closed after the workers that used them.
    closeKeys = () => {
      for (const c of cas.values()) c.close();
    };
    // (every CA under `cas` too, so a reload may point a profile at any of them).
    for (const name of new Set([
      ...initial.profiles.map((p) => p.ca ?? DEFAULT_CA_NAME),
      ...Object.keys(o.cas ?? {}),
    ])) {
      if (cas.has(name)) continue;
      const ra = o.cas?.[name]?.ra;
      const keyType = o.cas?.[name]?.keyType;
      const caOpts: PrepareCaOptions = {};
      if (ra !== undefined) caOpts.ra = ra;
      if (keyType !== undefined && keyType !== 'rsa') caOpts.caKeyType = keyType;
      if (o.keySize) caOpts.keySize = o.keySize;
      if (o.caPassphrase) caOpts.passphrase = o.caPassphrase;
      const ca = await prepareCa(dataDir, name, caOpts);
      cas.set(name, ca.loaded);
      if (ca.created) createdCas.push(name);
    }
    const store = o.store ?? (ownedStore = await openStore(prepared.storeUrl));
    // The challenge-failure throttle: the RA asks it where a challenge is checked (every
    // engine, workers too, reads the same counters in the store); failures are counted in this
    // (HTTP) thread, in front of every worker.
    throttle = challengeThrottle(o.challenges?.throttle, store, logger);
    const lock = throttle;
    const challengeLock = lock
      ? { challengeLock: (address: string | undefined) => lock.blocked(address) }
      : {};
    const ready = prepared;
    build = async (set) => {
      const inits = set.profiles.map((p) => profileInit(p, ready));
      const services = composeProfiles(inits, {
        cas: caLookup(dataDir, cas),
        ...(o.caPassphrase ? { passphrase: o.caPassphrase } : {}),
        store,
        logger,
        ...challengeLock,
      });
      const defaultName = set.defaultProfile ?? (services.has('default') ? 'default' : undefined);
      const main = services.get(defaultName ?? inits[0]!.name)!;
      const router = new ProfileRouter(services, defaultName ?? inits[0]!.name, main.stats);
      let engine: ScepService = router;
      let pool: WorkerPoolService | undefined;
      if ((o.workers ?? 1) > 1) {
        // N engines: the HTTP thread enrolls too, next to N − 1 worker threads.
        pool = await WorkerPoolService.start({
          workers: (o.workers ?? 1) - 1,
          inProcess: true,
          local: router,
          store,
          init: {
            dataDir,
            ...(o.caPassphrase ? { caPassphrase: o.caPassphrase } : {}),
            config: main.config,
            profiles: inits,
            ...(defaultName !== undefined ? { defaultProfile: defaultName } : {}),
          },
          ...challengeLock,
          logger,
        });
        engine = pool;
      }
      // The challenge-failure throttle sits in this (HTTP) thread, in front of every worker.
      const throttled = throttledService(engine, throttle);
      const g: Generation = { enrollment: main, services, pool, inflight: 0, endpoints: undefined! };
      const counted: ScepService = {
        capabilities: () => throttled.capabilities(),
        getCaCaps: () => throttled.getCaCaps(),
        getCaCert: (m) => throttled.getCaCert(m),
        pkiOperation: async (message, ctx) => {
          g.inflight++;
          try {
            return await throttled.pkiOperation(message, ctx);
          } finally {
            if (--g.inflight === 0) g.drained?.();
          }
        },
      };
      g.endpoints = new ProfileEndpoints(set.profiles, services, counted, defaultName);
      return g;
    };
    try {
      gen = await build(initial);
    } catch (e) {
      await ownedStore?.close();
      closeKeys();
      throw e;
    }
    service = gen.pool ?? gen.enrollment;
  }
  const first = gen;
  const enrollment = first?.enrollment;
  const lifecycle: Lifecycle | undefined = enrollment?.lifecycle;

  let ocsp: OcspResponder | undefined;
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
  const { metrics, readiness } = observability(
    o,
    {
      enrollment,
      prepared,
      lifecycle,
      pool: first?.pool,
      version: () => version,
      services: () => gen?.services,
    },
    () => (closing !== undefined ? 'shutting down' : undefined),
  );
  // CRLs of every CA a profile issues from: /crl (the default CA), /crl/<fingerprint>, /crl/<CA name>.
  const crlsNow = (): CrlSource =>
    severalCaCrls(
      new Map([...(gen?.services.values() ?? [])].reverse().map((e) => [e.caName, e.lifecycle.crls])),
    );
  const crlSource: CrlSource = {
    current: (issuer) => crlsNow().current(issuer),
    ofCa: (name) => crlsNow().ofCa!(name),
  };
  const endpoints: ScepEndpoints | undefined = first
    ? { forPath: (path) => gen!.endpoints.forPath(path) }
    : undefined;
  let app: FastifyInstance;
  try {
    // OCSP is answered on this thread from its store (the workers only enroll).
    // Every CA a profile of the serving configuration issues from (a reload may change them).
    const ocspSettings = o.ocspSettings ?? o.lifecycle?.ocsp;
    if (enrollment && lifecycle && ocspSettings !== false) {
      let issuersOf: Generation | undefined;
      let issuers: OcspIssuer[] = [];
      ocsp = new OcspResponder(
        Object.assign({}, ocspSettings, {
          store: enrollment.store,
          cas: () => {
            if (gen !== issuersOf) {
              issuersOf = gen;
              const byName = new Map(
                [...(gen?.services.values() ?? [])].map((e) => [e.caName, e.lifecycle.crls.cas]),
              );
              issuers = [...byName].map(([name, cas]) => ({ name, cas }));
            }
            return issuers;
          },
        }),
      );
    }
    app = await buildApp(
      Object.assign({}, o, {
        service,
        ...(ocsp ? { ocsp } : {}),
        ...(endpoints ? { endpoints } : {}),
        ...(lifecycle ? { crl: crlSource } : {}),
        ops: {
          readiness,
          ...(first ? { configVersion: () => `${version.id} load ${version.loads}` } : {}),
          ...(metrics ? { metrics } : {}),
          ...(o.metricsToken !== undefined ? { metricsToken: o.metricsToken } : {}),
        },
      }),
    );
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
      // A revocation signs a new CRL of the certificate's own CA (any CA a profile issues from).
      const crlsOfCa = (name: string) =>
        [...(gen?.services.values() ?? [])].find((e) => e.caName === name)?.lifecycle.crls;
      await app.register(adminRoutes, { store: enrollment.store, crls: crlsOfCa, auth: adminAuth });
      // Every CA a profile of the running configuration issues from, the default CA first.
      const servedCas = () => {
        const byName = new Map<string, CrlPublisher>();
        for (const e of gen?.services.values() ?? [])
          if (!byName.has(e.caName)) byName.set(e.caName, e.lifecycle.crls);
        return [...byName]
          .map(([name, crls]) => ({ name, crls }))
          .sort((x, y) => Number(y.name === DEFAULT_CA_NAME) - Number(x.name === DEFAULT_CA_NAME));
      };
      await app.register(adminStatusRoutes, {
        store: enrollment.store,
        crls: servedCas,
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
    await first?.pool?.close();
    await ownedStore?.close();
    closeKeys();
    throw e;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : (o.port ?? 0);
  const origin = `${o.tls ? 'https' : 'http'}://${hostForUrl(o.host ?? '127.0.0.1')}:${port}`;
  const stopMaintenance = lifecycle?.startMaintenance(o.maintenanceIntervalMs);
  /** Closes a generation's workers once its requests in flight have finished. */
  const retire = async (old: Generation): Promise<void> => {
    if (old.inflight > 0) await new Promise<void>((resolve) => (old.drained = resolve));
    await old.pool?.close();
  };
  let reloading: Promise<unknown> = Promise.resolve();
  const running: RunningServer = {
    url: `${origin}/scep`,
    origin,
    port,
    service,
    app,
    adminAuth,
    version: () => ({ ...version }),
    reload(set, id) {
      const next = reloading.then(async () => {
        if (!build || !gen || closing) throw new Error('this server has no profiles to reload');
        let fresh: Generation;
        try {
          fresh = await build(set);
        } catch (e) {
          version.failedReloads++;
          throw e;
        }
        const old = gen;
        gen = fresh;
        version.id = id;
        version.loads++;
        void retire(old).catch((e: unknown) => logger.error({ err: e }, 'closing the old workers failed'));
        return { ...version };
      });
      reloading = next.catch(() => undefined);
      return next;
    },
    reloadFailed() {
      version.failedReloads++;
    },
    close() {
      closing ??= (async () => {
        stopMaintenance?.();
        metrics?.close();
        try {
          await app.close();
        } finally {
          await reloading;
          await gen?.pool?.close();
          await ownedStore?.close();
          closeKeys();
        }
      })();
      return closing;
    },
  };
  if (metrics) running.metrics = metrics;
  if (enrollment) running.enrollment = enrollment;
  if (lifecycle) running.lifecycle = lifecycle;
  if (ocsp) running.ocsp = ocsp;
  if (prepared) running.dataDir = prepared;
  if (createdCas.length > 0) running.createdCas = createdCas;
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
    version: () => ConfigVersion;
    services: () => ReadonlyMap<string, EnrollmentService> | undefined;
  },
  shuttingDown: () => string | undefined,
): { metrics: ServerMetrics | undefined; readiness: ReadinessCheck } {
  const { enrollment, prepared, lifecycle, pool } = parts;
  let names: { of: ReadonlyMap<string, EnrollmentService> | undefined; set: ReadonlySet<string> } = {
    of: undefined,
    set: new Set(),
  };
  const profileNames = (): ReadonlySet<string> => {
    const now = parts.services();
    if (now !== names.of) names = { of: now, set: new Set(now?.keys() ?? []) };
    return names.set;
  };
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
  const sources: MetricsSources = {};
  if (enrollment) {
    sources.serviceStats = () => {
      const all = [...(parts.services()?.values() ?? [enrollment])];
      return {
        singleDesAccepted: all.reduce((n, s) => n + s.stats.singleDesAccepted, 0),
        internalErrors: all.reduce((n, s) => n + s.stats.internalErrors, 0),
        envelopesOpened: all.reduce((n, s) => n + s.stats.envelopesOpened, 0),
      };
    };
    sources.profileNames = profileNames;
    sources.config = parts.version;
  }
  if (store) sources.storeStats = () => store.stats();
  if (enrollment) sources.workers = () => pool?.engines ?? o.workers ?? 1;
  if (caCert) sources.caNotAfter = () => caCert.notAfter;
  if (store)
    sources.pendingRequests = async () =>
      (await store.listTransactions({ state: 'pending', limit: 1 })).total;
  if (store && lifecycle)
    sources.crlNextUpdate = async () => (await store.latestCrl(lifecycle.crls.currentIssuer))?.nextUpdate;
  const metrics = new ServerMetrics({ sources });
  return { metrics, readiness };
}
