/**
 * What the schema cannot say about a configuration: profile paths unique and clear of the
 * server's own routes, referenced CAs defined, challenge modes that fit the approval mode,
 * extensions and rules the CA accepts. Each problem names its key path.
 */
import { MAX_VALIDITY_SECONDS, MIN_VALIDITY_SECONDS, validateProfile, ProfileError } from '../ca/profile.js';
import { ekuOid } from '../pkix/extensions.js';
import { validateProfileRules } from '../ra/profile-rules.js';
import { BASE_CAPABILITIES } from '../ra/service.js';
import { durationSeconds } from './duration.js';
import type { ProfileConfig, ScepterConfig } from './schema.js';

export interface SemanticProblem {
  path: string[];
  message: string;
}

/** The name of the CA every configuration has (DIR/ca/). */
export const DEFAULT_CA = 'default';

/** The name of the profile serving every path no profile names, unless `defaultProfile` says otherwise. */
export const DEFAULT_PROFILE = 'default';

/** GetCACaps keywords a profile may list. */
export const KNOWN_CAPABILITIES: readonly string[] = [...BASE_CAPABILITIES, 'Renewal', 'GetNextCACert'];

/** Paths the server answers itself (a profile there would never be reached). */
const RESERVED_PATHS = /^\/(?:healthz|readyz|metrics|admin|crl)(?:\/|$)/;

/** A profile's URL path: its `path`, or /scep/NAME; no trailing slash, lower case. */
export function profilePath(name: string, p: ProfileConfig): string {
  return (p.path ?? `/scep/${name}`).replace(/\/+/g, '/').replace(/\/$/, '').toLowerCase() || '/';
}

function profileProblems(name: string, p: ProfileConfig, cas: ReadonlySet<string>): SemanticProblem[] {
  const out: SemanticProblem[] = [];
  const at = (...path: string[]) => ['profiles', name, ...path];
  const ca = p.ca ?? DEFAULT_CA;
  if (!cas.has(ca))
    out.push({ path: at('ca'), message: `CA ${ca} is not defined (add it under cas, or use ${DEFAULT_CA})` });
  const mode = p.challenge?.mode ?? 'static';
  const approval = p.approval?.mode ?? 'auto';
  if (mode === 'none' && approval !== 'manual')
    out.push({ path: at('challenge', 'mode'), message: 'mode none needs approval mode manual' });
  if (mode === 'webhook' && !p.validation)
    out.push({
      path: at('challenge', 'mode'),
      message: 'mode webhook needs a validation webhook (validation.url)',
    });
  if (mode === 'webhook' && p.validation?.mode === 'always')
    out.push({
      path: at('validation', 'mode'),
      message: 'challenge mode webhook needs validation mode challenge',
    });
  if (mode !== 'static' && p.challenge?.secrets)
    out.push({
      path: at('challenge', 'secrets'),
      message: `secrets are only used in mode static (not ${mode})`,
    });
  if (mode !== 'static' && p.challenge?.oneTime !== undefined)
    out.push({ path: at('challenge', 'oneTime'), message: 'oneTime is only used in mode static' });
  if (
    p.keys?.minRsaBits !== undefined &&
    p.keys.maxRsaBits !== undefined &&
    p.keys.minRsaBits > p.keys.maxRsaBits
  )
    out.push({ path: at('keys'), message: 'minRsaBits is larger than maxRsaBits' });
  if (p.validity !== undefined) {
    const v = durationSeconds(p.validity);
    if (v < MIN_VALIDITY_SECONDS || v > MAX_VALIDITY_SECONDS)
      out.push({ path: at('validity'), message: `must be between ${MIN_VALIDITY_SECONDS}s and 36500d` });
  }
  const x = p.extensions;
  for (const [i, e] of (x?.extKeyUsage ?? []).entries()) {
    try {
      ekuOid(e);
    } catch (err) {
      out.push({ path: at('extensions', 'extKeyUsage', String(i)), message: (err as Error).message });
    }
  }
  if (x) {
    try {
      validateProfile({
        validitySeconds: MIN_VALIDITY_SECONDS,
        keyUsage: x.keyUsage ?? [],
        extKeyUsage: [],
        ...(x.certificatePolicies ? { certificatePolicies: x.certificatePolicies } : {}),
        ...(x.custom ? { customExtensions: x.custom.map((c) => ({ oid: c.oid, valueHex: c.value })) } : {}),
        ...(x.passThrough ? { passThroughExtensions: x.passThrough } : {}),
      });
    } catch (err) {
      if (!(err instanceof ProfileError)) throw err;
      out.push({ path: at('extensions'), message: err.message });
    }
    const custom = new Set((x.custom ?? []).map((c) => c.oid));
    if (custom.size !== (x.custom ?? []).length)
      out.push({ path: at('extensions', 'custom'), message: 'an extension OID appears twice' });
    for (const o of x.passThrough ?? [])
      if (custom.has(o))
        out.push({ path: at('extensions', 'passThrough'), message: `${o} is also a custom extension` });
  }
  try {
    validateProfileRules({
      ...(p.subject ? { subject: p.subject } : {}),
      ...(p.subjectAltNames ? { subjectAltNames: p.subjectAltNames } : {}),
    });
  } catch (err) {
    out.push({
      path: at(
        p.subject?.template !== undefined && /template/.test((err as Error).message)
          ? 'subject'
          : 'subjectAltNames',
      ),
      message: (err as Error).message,
    });
  }
  for (const [i, c] of (p.capabilities ?? []).entries())
    if (!KNOWN_CAPABILITIES.includes(c))
      out.push({
        path: at('capabilities', String(i)),
        message: `unknown GetCACaps keyword ${JSON.stringify(c)} (known: ${KNOWN_CAPABILITIES.join(', ')})`,
      });
  return out;
}

/** Every problem the schema cannot find. */
export function semanticProblems(c: ScepterConfig): SemanticProblem[] {
  const out: SemanticProblem[] = [];
  const cas = new Set([DEFAULT_CA, ...Object.keys(c.cas ?? {})]);
  const profiles = c.profiles ?? {};
  const byPath = new Map<string, string>();
  for (const [name, p] of Object.entries(profiles)) {
    out.push(...profileProblems(name, p, cas));
    const path = profilePath(name, p);
    const other = byPath.get(path);
    if (other !== undefined)
      out.push({
        path: ['profiles', name, 'path'],
        message: `profiles ${other} and ${name} are both on ${path}`,
      });
    else byPath.set(path, name);
    if (RESERVED_PATHS.test(path))
      out.push({ path: ['profiles', name, 'path'], message: `${path} is one of the server's own routes` });
  }
  if (c.defaultProfile !== undefined && !(c.defaultProfile in profiles))
    out.push({ path: ['defaultProfile'], message: `there is no profile ${c.defaultProfile}` });
  if (c.server?.metrics?.enabled === false && c.server.metrics.token !== undefined)
    out.push({ path: ['server', 'metrics', 'token'], message: 'a token for disabled metrics' });
  return out;
}
