/**
 * The `scepter serve` flags as a configuration object: one profile, `default`, on every path.
 * `serve` parses its flags (with their own messages), builds this object, validates it with the
 * schema and checks a file gets (src/config/load.ts `validateConfig`) and runs it through the
 * same mapping (src/config/runtime.ts), so flags and files have one source of truth.
 */
import type { OcspSettings } from '../ca/ocsp-responder.js';
import type { ApprovalConfig } from '../ra/approval.js';
import type { RenewalConfig } from '../ra/renewal.js';
import type { ValidationConfig } from '../ra/validation.js';
import type { ThrottleOptions } from '../ra/throttle.js';
import { durationText } from './duration.js';
import type { ProfileConfig, ScepterConfig } from './schema.js';

/** What `serve` read from its flags (seconds for durations). */
export interface ServeFlags {
  host: string;
  port: number;
  bodyLimit: number;
  logLevel: NonNullable<NonNullable<ScepterConfig['server']>['logLevel']>;
  logFormat?: NonNullable<NonNullable<ScepterConfig['server']>['logFormat']>;
  workers: number;
  tls?: { cert: string; key: string };
  trustedProxies: readonly string[];
  publicUrl?: string;
  metrics: boolean;
  metricsToken?: string;
  adminToken?: string;
  /** Named admin tokens (`--admin-tokens FILE`, read by `serve`). */
  adminTokens?: ReadonlyArray<{ name: string; secret: string }>;
  challengeTtlSeconds?: number;
  storeUrl?: string;
  caPassphrase?: string;
  /** `--ra` true, `--ca-only` false, neither undefined. */
  ra?: boolean;
  throttle: ThrottleOptions;
  crlValiditySeconds?: number;
  /** False: `--no-static-challenge` (one-time challenges only). */
  staticChallenge: boolean;
  allowSingleDes: boolean;
  allowWildcards: boolean;
  validitySeconds: number;
  validation?: ValidationConfig;
  approval: ApprovalConfig;
  renewal: RenewalConfig;
  /** The OCSP responder (`--ocsp-*`); false: `--no-ocsp`. */
  ocsp?: OcspSettings | false;
}

const d = (seconds: number | undefined) => (seconds === undefined ? undefined : durationText(seconds));

/** Drops undefined values (the schema has no `undefined`). */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** The configuration object of a set of `serve` flags. */
export function configFromFlags(f: ServeFlags): ScepterConfig {
  const a = f.approval;
  const r = f.renewal;
  const v = f.validation;
  const profile: ProfileConfig = defined({
    challenge: { mode: f.staticChallenge ? ('static' as const) : ('one-time' as const) },
    approval: defined({
      mode: a.mode,
      pendingTtl: d(a.pendingTtlSeconds),
      retryAfter: a.retryAfterSeconds,
      maxRetryAfter: a.maxRetryAfterSeconds,
    }),
    validity: durationText(f.validitySeconds),
    renewal: defined({
      enabled: r.enabled,
      key: r.key,
      window: r.windowPercent,
      grace: d(r.graceSeconds),
      anySubject: r.sameSubject === false ? true : undefined,
      anySubjectAltNames: r.sameSubjectAltNames === false ? true : undefined,
      revokeOld: r.revokeOld ? true : undefined,
    }),
    limits: defined({ maxPendingPerAddress: a.maxPendingPerAddress, maxOpenPending: a.maxOpenPending }),
    subjectAltNames: f.allowWildcards ? { allowWildcards: true } : undefined,
    validation: v
      ? defined({
          url: v.url,
          token: v.token,
          timeout: v.timeoutMs !== undefined ? durationText(Math.round(v.timeoutMs / 1000)) : undefined,
          mode: v.mode,
          renewals: v.renewals ? true : undefined,
        })
      : undefined,
    allowSingleDes: f.allowSingleDes ? true : undefined,
  });
  return defined({
    server: defined({
      host: f.host,
      port: f.port,
      bodyLimit: f.bodyLimit,
      workers: f.workers,
      logLevel: f.logLevel,
      logFormat: f.logFormat,
      tls: f.tls,
      trustedProxies: f.trustedProxies.length > 0 ? [...f.trustedProxies] : undefined,
      publicUrl: f.publicUrl,
      metrics: defined({ enabled: f.metrics, token: f.metricsToken }),
      admin: defined({
        token: f.adminToken,
        challengeTtl: d(f.challengeTtlSeconds),
        tokens: f.adminTokens?.length
          ? f.adminTokens.map((t) => ({ name: t.name, token: t.secret }))
          : undefined,
      }),
    }),
    store: f.storeUrl !== undefined ? { url: f.storeUrl } : undefined,
    caPassphrase: f.caPassphrase,
    cas: f.ra !== undefined ? { default: { ra: f.ra } } : undefined,
    throttle: defined({
      maxFailures: f.throttle.maxFailures,
      maxGlobalFailures: f.throttle.maxGlobalFailures,
      window: d(f.throttle.windowSeconds),
    }),
    crl: f.crlValiditySeconds !== undefined ? { validity: durationText(f.crlValiditySeconds) } : undefined,
    ocsp:
      f.ocsp === false
        ? { enabled: false }
        : f.ocsp
          ? defined({
              signer: f.ocsp.signer,
              validity: d(f.ocsp.validitySeconds),
              signerValidity: d(f.ocsp.signerValiditySeconds),
            })
          : undefined,
    defaultProfile: 'default',
    profiles: { default: profile },
  });
}
