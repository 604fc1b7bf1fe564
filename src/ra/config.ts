/**
 * Enrollment configuration: what the RA accepts and how long issued certificates live.
 */
import {
  DEFAULT_CLIENT_PROFILE,
  MAX_VALIDITY_SECONDS,
  MIN_VALIDITY_SECONDS,
  type Profile,
} from '../ca/profile.js';
import {
  resolveValidationConfig,
  type ResolvedValidationConfig,
  type ValidationConfig,
} from './validation.js';
import type { CsrCheckOptions } from './csr-checks.js';
import { validateProfileRules, type ProfileRules } from './profile-rules.js';

export interface EnrollmentConfig {
  /** Accepted challengePassword values (several allow rotation). Empty: every PKCSReq is refused. */
  challenges: readonly string[];
  /**
   * Key (hex, ≥ 32 bytes) of the one-time challenges (src/ra/one-time-challenge.ts); absent:
   * one-time challenges are not accepted. A secret: never log it.
   */
  oneTimeChallengeKey?: string;
  /** Accept requests encrypted with single DES (old clients; replies still use 3DES/AES). */
  allowSingleDes?: boolean;
  /** Smallest RSA key accepted (default 2048). */
  minRsaBits?: number;
  /** Largest RSA key accepted (default 8192). */
  maxRsaBits?: number;
  /** Validity of issued certificates in seconds (default: the profile's, 365 days). */
  validitySeconds?: number;
  /** Certificate profile (default DEFAULT_CLIENT_PROFILE). */
  profile?: Profile;
  /**
   * notBefore is set up to this many seconds in the past to absorb client clock skew (default
   * 300), but never more than BACKDATE_SHARE of the validity: see `effectiveBackdateSeconds` (src/ra/issuance.ts).
   */
  backdateSeconds?: number;
  /** External validation webhook (src/ra/validation.ts); absent: none. Holds a secret token. */
  validation?: ValidationConfig;
  /** Checks of the subject, subjectAltNames and key before issuance (src/ra/csr-checks.ts). */
  csrChecks?: CsrCheckOptions;
  /** A configuration profile's subject and subjectAltName rules (src/ra/profile-rules.ts). */
  rules?: ProfileRules;
  /** GetCACaps keywords to advertise (those of them the service implements); absent: all it implements. */
  capabilities?: readonly string[];
}

/** The configuration with every default filled in. */
export interface ResolvedEnrollmentConfig {
  challenges: readonly string[];
  oneTimeChallengeKey: string | undefined;
  allowSingleDes: boolean;
  minRsaBits: number;
  maxRsaBits: number;
  profile: Profile;
  backdateSeconds: number;
  validation: ResolvedValidationConfig | undefined;
  csrChecks: CsrCheckOptions;
  rules: ProfileRules | undefined;
  capabilities: readonly string[] | undefined;
}

/** Fills in defaults; throws RangeError for values that make no sense. */
export function resolveEnrollmentConfig(c: EnrollmentConfig): ResolvedEnrollmentConfig {
  const base = c.profile ?? DEFAULT_CLIENT_PROFILE;
  const profile: Profile = Object.assign({}, base, {
    keyUsage: [...base.keyUsage],
    extKeyUsage: [...base.extKeyUsage],
    validitySeconds: c.validitySeconds ?? base.validitySeconds,
  });
  if (
    !Number.isInteger(profile.validitySeconds) ||
    profile.validitySeconds < MIN_VALIDITY_SECONDS ||
    profile.validitySeconds > MAX_VALIDITY_SECONDS
  ) {
    throw new RangeError(
      `the validity must be a whole number of seconds between ${MIN_VALIDITY_SECONDS} and ${MAX_VALIDITY_SECONDS} (100 years)`,
    );
  }
  const minRsaBits = c.minRsaBits ?? 2048;
  const maxRsaBits = c.maxRsaBits ?? 8192;
  if (!Number.isInteger(minRsaBits) || minRsaBits < 1024)
    throw new RangeError('minRsaBits must be at least 1024');
  if (!Number.isInteger(maxRsaBits) || maxRsaBits < minRsaBits)
    throw new RangeError('maxRsaBits must be >= minRsaBits');
  const backdateSeconds = c.backdateSeconds ?? 300;
  if (!Number.isInteger(backdateSeconds) || backdateSeconds < 0)
    throw new RangeError('backdateSeconds must be >= 0');
  if (c.oneTimeChallengeKey !== undefined && !/^(?:[0-9a-f]{2}){32,}$/i.test(c.oneTimeChallengeKey))
    throw new RangeError('the one-time challenge key must be at least 32 bytes of hex');
  if (c.rules) validateProfileRules(c.rules);
  return {
    challenges: [...c.challenges],
    oneTimeChallengeKey: c.oneTimeChallengeKey,
    allowSingleDes: c.allowSingleDes ?? false,
    minRsaBits,
    maxRsaBits,
    profile,
    backdateSeconds,
    validation: c.validation ? resolveValidationConfig(c.validation) : undefined,
    csrChecks: { ...c.csrChecks },
    rules: c.rules,
    capabilities: c.capabilities ? [...c.capabilities] : undefined,
  };
}
