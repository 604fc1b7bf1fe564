/**
 * From a validated configuration to what the server runs: `startServer` options and the
 * profile set (src/server/profiles.ts). The `serve` flags produce a configuration object too
 * (src/config/flags.ts), so a file and flags end up here, in the same runtime.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { DEFAULT_CLIENT_PROFILE, type Profile } from '../ca/profile.js';
import type { EnrollmentConfig } from '../ra/config.js';
import { DEFAULT_BODY_LIMIT, type StartServerOptions } from '../server/index.js';
import type { OcspSettings } from '../ca/ocsp-responder.js';
import type { LifecycleSettings } from '../server/lifecycle-setup.js';
import type { ProfileSet, ProfileSpec } from '../server/profiles.js';
import { DEFAULT_PROFILE, profilePath } from './checks.js';
import { durationSeconds } from './duration.js';
import type { ProfileConfig, ScepterConfig } from './schema.js';

const secs = (d: string | undefined): number | undefined =>
  d === undefined ? undefined : durationSeconds(d);

/** The certificate profile (what the CA puts in certificates) of a configuration profile. */
function certificateProfile(p: ProfileConfig, validitySeconds: number | undefined): Profile {
  const x = p.extensions ?? {};
  return {
    validitySeconds: validitySeconds ?? DEFAULT_CLIENT_PROFILE.validitySeconds,
    keyUsage: x.keyUsage ? [...x.keyUsage] : [...DEFAULT_CLIENT_PROFILE.keyUsage],
    extKeyUsage: x.extKeyUsage ? [...x.extKeyUsage] : [...DEFAULT_CLIENT_PROFILE.extKeyUsage],
    ...(x.crlDistributionPoints ? { crlDistributionPoints: [...x.crlDistributionPoints] } : {}),
    ...(x.certificatePolicies ? { certificatePolicies: [...x.certificatePolicies] } : {}),
    ...(x.authorityInfoAccess ? { authorityInfoAccess: structuredClone(x.authorityInfoAccess) } : {}),
    ...(x.custom
      ? {
          customExtensions: x.custom.map((c) => ({
            oid: c.oid,
            valueHex: c.value,
            ...(c.critical ? { critical: true } : {}),
          })),
        }
      : {}),
    ...(x.passThrough ? { passThroughExtensions: [...x.passThrough] } : {}),
  };
}

/** One configuration profile as the server's ProfileSpec. */
export function profileSpec(name: string, p: ProfileConfig, c: ScepterConfig): ProfileSpec {
  const validity = secs(p.validity);
  const { allowWildcards, ...sanRules } = p.subjectAltNames ?? {};
  const v = p.validation;
  const enrollment: Omit<EnrollmentConfig, 'challenges' | 'oneTimeChallengeKey'> = {
    ...(p.allowSingleDes ? { allowSingleDes: true } : {}),
    ...(validity !== undefined ? { validitySeconds: validity } : {}),
    ...(p.keys?.minRsaBits !== undefined ? { minRsaBits: p.keys.minRsaBits } : {}),
    ...(p.keys?.maxRsaBits !== undefined ? { maxRsaBits: p.keys.maxRsaBits } : {}),
    profile: certificateProfile(p, validity),
    ...(allowWildcards ? { csrChecks: { allowWildcards: true } } : {}),
    ...(v
      ? {
          validation: {
            url: v.url,
            ...(v.token !== undefined ? { token: v.token } : {}),
            ...(v.timeout !== undefined ? { timeoutMs: durationSeconds(v.timeout) * 1000 } : {}),
            ...(v.mode !== undefined ? { mode: v.mode } : {}),
            ...(v.renewals ? { renewals: true } : {}),
          },
        }
      : {}),
    ...(p.subject || Object.keys(sanRules).length > 0
      ? {
          rules: {
            ...(p.subject ? { subject: structuredClone(p.subject) } : {}),
            ...(Object.keys(sanRules).length > 0 ? { subjectAltNames: structuredClone(sanRules) } : {}),
          },
        }
      : {}),
    ...(p.capabilities ? { capabilities: [...p.capabilities] } : {}),
  };
  const a = p.approval;
  const r = p.renewal;
  const lifecycle: LifecycleSettings = {
    approval: {
      ...(a?.mode !== undefined ? { mode: a.mode } : {}),
      ...(a?.pendingTtl !== undefined ? { pendingTtlSeconds: durationSeconds(a.pendingTtl) } : {}),
      ...(a?.retryAfter !== undefined ? { retryAfterSeconds: a.retryAfter } : {}),
      ...(a?.maxRetryAfter !== undefined ? { maxRetryAfterSeconds: a.maxRetryAfter } : {}),
      ...(p.limits?.maxPendingPerAddress !== undefined
        ? { maxPendingPerAddress: p.limits.maxPendingPerAddress }
        : {}),
      ...(p.limits?.maxOpenPending !== undefined ? { maxOpenPending: p.limits.maxOpenPending } : {}),
    },
    renewal: {
      ...(r?.enabled !== undefined ? { enabled: r.enabled } : {}),
      ...(r?.key !== undefined ? { key: r.key } : {}),
      ...(r?.window !== undefined ? { windowPercent: r.window } : {}),
      ...(r?.grace !== undefined ? { graceSeconds: durationSeconds(r.grace) } : {}),
      ...(r?.anySubject ? { sameSubject: false } : {}),
      ...(r?.anySubjectAltNames ? { sameSubjectAltNames: false } : {}),
      ...(r?.revokeOld ? { revokeOld: true } : {}),
    },
    ...(c.crl?.validity !== undefined ? { crlValiditySeconds: durationSeconds(c.crl.validity) } : {}),
    ...(c.server?.publicUrl !== undefined ? { publicUrl: c.server.publicUrl } : {}),
    ...(c.ocsp?.enabled === false ? { ocsp: false as const } : {}),
  };
  return {
    name,
    path: profilePath(name, p),
    ca: p.ca ?? 'default',
    ...(p.ra === false ? { ra: false } : {}),
    challenge: {
      mode: p.challenge?.mode ?? 'static',
      ...(p.challenge?.secrets ? { secrets: [...p.challenge.secrets] } : {}),
      ...(p.challenge?.oneTime !== undefined ? { oneTime: p.challenge.oneTime } : {}),
    },
    enrollment,
    lifecycle,
  };
}

/** The profiles of a configuration (what a reload swaps). */
export function profileSet(c: ScepterConfig): ProfileSet {
  const profiles = Object.entries(c.profiles ?? {}).map(([name, p]) => profileSpec(name, p, c));
  const named = c.defaultProfile ?? (c.profiles?.[DEFAULT_PROFILE] ? DEFAULT_PROFILE : undefined);
  return { profiles, ...(named !== undefined ? { defaultProfile: named } : {}) };
}

/** The parts of a configuration only a restart applies (compared on reload). */
export function restartOnly(c: ScepterConfig): unknown {
  return {
    server: c.server ?? {},
    store: c.store ?? {},
    caPassphrase: c.caPassphrase,
    cas: c.cas ?? {},
    throttle: c.throttle ?? {},
    ocsp: c.ocsp ?? {},
  };
}

/** The OCSP responder of a configuration (false: off). */
function ocspOf(c: ScepterConfig): OcspSettings | false {
  const x = c.ocsp ?? {};
  if (x.enabled === false) return false;
  return {
    ...(x.signer !== undefined ? { signer: x.signer } : {}),
    ...(x.validity !== undefined ? { validitySeconds: durationSeconds(x.validity) } : {}),
    ...(x.signerValidity !== undefined ? { signerValiditySeconds: durationSeconds(x.signerValidity) } : {}),
  };
}

/** `startServer` options for a configuration and a data directory. */
export function serverOptions(c: ScepterConfig, dataDir: string, version: string): StartServerOptions {
  const s = c.server ?? {};
  const t = c.throttle ?? {};
  const readPem = (path: string) => readFileSync(path);
  return {
    dataDir,
    host: s.host ?? '0.0.0.0',
    port: s.port ?? 8080,
    bodyLimit: s.bodyLimit ?? DEFAULT_BODY_LIMIT,
    logLevel: s.logLevel ?? 'info',
    ...(s.logFormat !== undefined ? { logFormat: s.logFormat } : {}),
    workers: s.workers ?? availableParallelism(),
    challenges: {
      throttle: {
        maxFailures: t.maxFailures ?? 10,
        maxGlobalFailures: t.maxGlobalFailures ?? 200,
        windowSeconds: secs(t.window) ?? 900,
      },
      ...(s.admin?.token !== undefined ? { adminToken: s.admin.token } : {}),
      ttlSeconds: secs(s.admin?.challengeTtl) ?? 3600,
    },
    ...(s.trustedProxies?.length ? { trustedProxies: [...s.trustedProxies] } : {}),
    ...(c.cas?.default?.ra !== undefined ? { ra: c.cas.default.ra } : {}),
    ...(c.cas?.default?.keyType !== undefined && c.cas.default.keyType !== 'rsa'
      ? { caKeyType: c.cas.default.keyType }
      : {}),
    ...(c.store?.url !== undefined ? { storeUrl: c.store.url } : {}),
    ...(c.caPassphrase !== undefined ? { caPassphrase: c.caPassphrase } : {}),
    ...(s.admin?.tokens?.length
      ? { adminTokens: s.admin.tokens.map((t) => ({ name: t.name, secret: t.token })) }
      : {}),
    ...(s.metrics?.enabled === false ? { metrics: false } : {}),
    ...(s.metrics?.token !== undefined ? { metricsToken: s.metrics.token } : {}),
    ...(s.tls ? { tls: { cert: readPem(s.tls.cert), key: readPem(s.tls.key) } } : {}),
    ...(c.cas ? { cas: structuredClone(c.cas) } : {}),
    ocspSettings: ocspOf(c),
    profiles: profileSet(c),
    configVersion: version,
  };
}
