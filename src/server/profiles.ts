/**
 * Profiles (docs/configuration.md "Profiles"): several enrollment services behind one server,
 * each at its own URL path (`/scep/NAME`, also with `/pkiclient.exe` and
 * `/cgi-bin/pkiclient.exe` appended), every other path served by the default profile.
 *
 * A profile is plain data (`ProfileSpec`, from the configuration file or the `serve` flags);
 * `profileInit` turns it into what `composeEnrollment` needs (challenges resolved against the
 * data directory), which crosses `workerData`, so the HTTP thread and every worker build the
 * same services (`composeProfiles`). `ProfileRouter` hands each PKIOperation to its profile's
 * service by `ctx.profile`; `ProfileEndpoints` maps a request path to a profile.
 */
import type { LoadedCa } from '../ca/keystore.js';
import type { EnrollmentConfig } from '../ra/config.js';
import type { EnrollmentService, ServiceLogger, ServiceStats } from '../ra/service.js';
import type { ChallengeLock, HttpAnswer, RequestContext, ScepAnswer, ScepService } from '../ra/types.js';
import type { Store } from '../store/index.js';
import { composeEnrollment } from './compose.js';
import type { PreparedDataDir } from './data-dir.js';
import type { LifecycleSettings } from './lifecycle-setup.js';

/** How a profile authorizes an initial enrollment. */
export type ChallengeMode = 'static' | 'one-time' | 'webhook' | 'none';

/** One profile as plain data. */
export interface ProfileSpec {
  name: string;
  /** URL path (lower case, no trailing slash); absent: `/scep/NAME`. */
  path?: string;
  /** The CA that issues, by name (`default`: DIR/ca/). */
  ca?: string;
  /** false: CA-only (the CA signs and decrypts SCEP messages even when it has an RA). */
  ra?: boolean;
  challenge?: {
    mode?: ChallengeMode;
    /** Static challenges; absent in mode static: the data directory's challenge. */
    secrets?: readonly string[];
    /** Mode static: accept one-time challenges too (default true). */
    oneTime?: boolean;
  };
  /** Everything else the enrollment service takes (validity, rules, extensions, webhook …). */
  enrollment?: Omit<EnrollmentConfig, 'challenges' | 'oneTimeChallengeKey'>;
  lifecycle?: LifecycleSettings;
}

/** The profiles of a server. */
export interface ProfileSet {
  profiles: readonly ProfileSpec[];
  /** The profile serving every path no profile names; absent: `default` if there is one, else those paths answer 404. */
  defaultProfile?: string;
}

/** What a worker needs to build one profile's service (plain data). */
export interface ProfileInit {
  name: string;
  ca: string;
  ra: boolean;
  config: EnrollmentConfig;
  lifecycle?: LifecycleSettings;
}

/** The URL path of a profile. */
export function pathOf(p: ProfileSpec): string {
  return (p.path ?? `/scep/${p.name}`).replace(/\/+/g, '/').replace(/\/$/, '').toLowerCase() || '/';
}

/** True when a profile in the set uses the data directory's static challenge. */
export function needsDataDirChallenge(set: ProfileSet): boolean {
  return set.profiles.some((p) => (p.challenge?.mode ?? 'static') === 'static' && !p.challenge?.secrets);
}

/** The enrollment configuration of a profile: its challenges resolved against the data directory. */
export function profileInit(p: ProfileSpec, prepared: PreparedDataDir): ProfileInit {
  const mode = p.challenge?.mode ?? 'static';
  const key = prepared.challengeKey.toString('hex');
  let challenges: string[] = [];
  let oneTime = false;
  if (mode === 'static') {
    challenges = p.challenge?.secrets
      ? [...p.challenge.secrets]
      : prepared.challenge.source === 'disabled'
        ? []
        : [prepared.challenge.value];
    oneTime = p.challenge?.oneTime !== false;
  } else if (mode === 'one-time') oneTime = true;
  const config: EnrollmentConfig = Object.assign({}, p.enrollment, {
    challenges,
    ...(oneTime ? { oneTimeChallengeKey: key } : {}),
  });
  if (mode === 'webhook') {
    if (!config.validation)
      throw new RangeError(`profile ${p.name}: challenge mode webhook needs a validation webhook`);
    config.validation = Object.assign({}, config.validation, { mode: 'challenge' as const });
  }
  return {
    name: p.name,
    ca: p.ca ?? 'default',
    ra: p.ra !== false,
    config,
    ...(p.lifecycle ? { lifecycle: p.lifecycle } : {}),
  };
}

/** CA material of a named CA (see `caLookup`). */
export interface CaLookup {
  (name: string): { dataDir: string; loaded?: LoadedCa } | undefined;
}

/**
 * The CA of a profile by name: `default` is DIR/ca/, any other name DIR/cas/NAME/. With
 * `loaded` (the HTTP thread, which prepared them at start) only those CAs exist, so a reload
 * naming another CA is refused; without it (a worker) composeEnrollment loads the CA by name.
 */
export function caLookup(dataDir: string, loaded?: ReadonlyMap<string, LoadedCa>): CaLookup {
  return (name) => {
    if (!loaded) return { dataDir };
    const ca = loaded.get(name);
    return ca ? { dataDir, loaded: ca } : undefined;
  };
}

export interface ComposeProfilesOptions {
  cas: CaLookup;
  passphrase?: string;
  store: Store;
  logger?: ServiceLogger;
  /** The challenge-failure throttle's lock (see ComposeOptions.challengeLock). */
  challengeLock?: ChallengeLock;
}

/** One enrollment service per profile, all on one store. */
export function composeProfiles(
  inits: readonly ProfileInit[],
  o: ComposeProfilesOptions,
): Map<string, EnrollmentService> {
  const out = new Map<string, EnrollmentService>();
  for (const p of inits) {
    const ca = o.cas(p.ca);
    if (!ca) throw new RangeError(`profile ${p.name}: no CA named ${p.ca}`);
    out.set(
      p.name,
      composeEnrollment({
        dataDir: ca.dataDir,
        ...(ca.loaded ? { loaded: ca.loaded } : {}),
        ...(o.passphrase ? { passphrase: o.passphrase } : {}),
        ...(p.ra ? {} : { caOnly: true }),
        caName: p.ca,
        profile: p.name,
        store: o.store,
        config: p.config,
        ...(p.lifecycle ? { lifecycle: p.lifecycle } : {}),
        ...(o.logger ? { logger: o.logger } : {}),
        ...(o.challengeLock ? { challengeLock: o.challengeLock } : {}),
      }),
    );
  }
  return out;
}

/** The answer to a PKIOperation for a profile that does not exist (cannot happen from our routes). */
function noProfile(): ScepAnswer {
  return {
    httpStatus: 404,
    contentType: 'text/plain; charset=utf-8',
    body: Buffer.from('no SCEP profile at this path\n'),
    log: { outcome: 'rejected', detail: 'no such profile' },
  };
}

/** A ScepService that hands each PKIOperation to the service of `ctx.profile` (or the default). */
export class ProfileRouter implements ScepService {
  /**
   * @param stats where a worker pool adds its workers' counters (src/server/worker-pool.ts):
   *   the default profile's, so the metrics, which sum every profile's, count them once
   */
  constructor(
    private readonly services: ReadonlyMap<string, ScepService>,
    private readonly defaultName: string,
    readonly stats?: ServiceStats,
  ) {}

  private of(name: string | undefined): ScepService | undefined {
    return this.services.get(name ?? this.defaultName);
  }

  capabilities(): readonly string[] {
    return this.of(undefined)?.capabilities() ?? [];
  }

  getCaCaps(): HttpAnswer {
    return this.of(undefined)!.getCaCaps();
  }

  getCaCert(message?: string): HttpAnswer {
    return this.of(undefined)!.getCaCert(message);
  }

  getNextCaCert(message?: string): HttpAnswer | undefined {
    return this.of(undefined)?.getNextCaCert?.(message);
  }

  pkiOperation(message: Buffer, ctx: RequestContext): Promise<ScepAnswer> {
    const s = this.of(ctx.profile);
    return s ? s.pkiOperation(message, ctx) : Promise.resolve(noProfile());
  }
}

/** The service answering one request path, and the profile it belongs to. */
export interface ScepEndpoint {
  service: ScepService;
  profile?: string;
}

/** Maps request paths to services (src/server/scep-routes.ts asks it for every request). */
export interface ScepEndpoints {
  /** The endpoint of a path (without the query), or undefined: no profile serves it (404). */
  forPath(path: string): ScepEndpoint | undefined;
}

/** Suffixes clients append to a SCEP URL (Cisco, Windows). */
const SUFFIXES = ['/pkiclient.exe', '/cgi-bin/pkiclient.exe'];

/**
 * Endpoints of a set of profiles: GetCACaps/GetCACert/GetNextCACert from the profile's own
 * service (`local`), PKIOperations through `front` (throttle, worker pool) with `ctx.profile`.
 */
export class ProfileEndpoints implements ScepEndpoints {
  private readonly byPath = new Map<string, ScepEndpoint>();
  private readonly fallback: ScepEndpoint | undefined;

  constructor(
    specs: readonly ProfileSpec[],
    local: ReadonlyMap<string, ScepService>,
    front: ScepService,
    defaultName: string | undefined,
  ) {
    const endpoint = (name: string): ScepEndpoint => {
      const own = local.get(name)!;
      return {
        profile: name,
        service: {
          capabilities: () => own.capabilities(),
          getCaCaps: () => own.getCaCaps(),
          getCaCert: (m) => own.getCaCert(m),
          getNextCaCert: (m) => own.getNextCaCert?.(m),
          pkiOperation: (message, ctx) =>
            front.pkiOperation(message, Object.assign({}, ctx, { profile: name })),
        },
      };
    };
    for (const p of specs) {
      const e = endpoint(p.name);
      const base = pathOf(p);
      this.byPath.set(base, e);
      for (const s of SUFFIXES) this.byPath.set((base === '/' ? '' : base) + s, e);
    }
    this.fallback = defaultName !== undefined && local.has(defaultName) ? endpoint(defaultName) : undefined;
  }

  forPath(path: string): ScepEndpoint | undefined {
    const p = path.replace(/\/+/g, '/').replace(/\/$/, '').toLowerCase() || '/';
    return this.byPath.get(p) ?? this.fallback;
  }
}
