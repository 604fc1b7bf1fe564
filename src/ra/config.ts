/**
 * Enrollment configuration: what the RA accepts and how long issued certificates live.
 */
import { DEFAULT_CLIENT_PROFILE, type Profile } from '../ca/profile.js';

export interface EnrollmentConfig {
  /** Accepted challengePassword values (several allow rotation). Empty: every PKCSReq is refused. */
  challenges: readonly string[];
  /** Accept requests encrypted with single DES (old clients; replies still use 3DES/AES). */
  allowSingleDes?: boolean;
  /** Smallest RSA key accepted (default 2048). */
  minRsaBits?: number;
  /** Largest RSA key accepted (default 8192). */
  maxRsaBits?: number;
  /** Validity of issued certificates in days (default: the profile's, 365). */
  validityDays?: number;
  /** Certificate profile (default DEFAULT_CLIENT_PROFILE). */
  profile?: Profile;
  /** notBefore is set this many seconds in the past to absorb client clock skew (default 300). */
  backdateSeconds?: number;
}

/** The configuration with every default filled in. */
export interface ResolvedEnrollmentConfig {
  challenges: readonly string[];
  allowSingleDes: boolean;
  minRsaBits: number;
  maxRsaBits: number;
  profile: Profile;
  backdateSeconds: number;
}

/** Fills in defaults; throws RangeError for values that make no sense. */
export function resolveEnrollmentConfig(c: EnrollmentConfig): ResolvedEnrollmentConfig {
  const base = c.profile ?? DEFAULT_CLIENT_PROFILE;
  const profile: Profile = {
    ...base,
    keyUsage: [...base.keyUsage],
    extKeyUsage: [...base.extKeyUsage],
    validityDays: c.validityDays ?? base.validityDays,
  };
  const minRsaBits = c.minRsaBits ?? 2048;
  const maxRsaBits = c.maxRsaBits ?? 8192;
  if (!Number.isInteger(minRsaBits) || minRsaBits < 1024)
    throw new RangeError('minRsaBits must be at least 1024');
  if (!Number.isInteger(maxRsaBits) || maxRsaBits < minRsaBits)
    throw new RangeError('maxRsaBits must be >= minRsaBits');
  const backdateSeconds = c.backdateSeconds ?? 300;
  if (!Number.isInteger(backdateSeconds) || backdateSeconds < 0)
    throw new RangeError('backdateSeconds must be >= 0');
  return {
    challenges: [...c.challenges],
    allowSingleDes: c.allowSingleDes ?? false,
    minRsaBits,
    maxRsaBits,
    profile,
    backdateSeconds,
  };
}
