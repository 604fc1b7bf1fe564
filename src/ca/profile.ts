/**
 * Certificate profiles: what an issued end-entity certificate says, decided by the CA and
 * never by the request. A CSR contributes only its subject, public key and (if the profile
 * allows) subjectAltNames; requested basicConstraints, keyUsage and extKeyUsage are ignored.
 */
import type { KeyUsageName } from '../pkix/extensions.js';
import { ekuOid } from '../pkix/extensions.js';

export interface Profile {
  /**
   * Validity in seconds from issuance (notAfter = issuance time + this, clamped to the CA's
   * notAfter), between MIN_VALIDITY_SECONDS (10 s) and MAX_VALIDITY_SECONDS (100 years).
   */
  validitySeconds: number;
  /** keyUsage bits; keyCertSign and cRLSign are refused (end entities only). */
  keyUsage: KeyUsageName[];
  /** EKU names (serverAuth, clientAuth, …) or dotted OIDs; may be empty. */
  extKeyUsage: string[];
  /** URL placed in a cRLDistributionPoints extension. */
  crlDistributionPoint?: string;
  /** OCSP responder URL placed in an authorityInfoAccess extension (id-ad-ocsp). */
  ocspUrl?: string;
  /** Copy subjectAltNames requested in the CSR (default true). */
  copySubjectAltNames?: boolean;
}

/** Shortest validity of an issued certificate: 10 seconds (tests, very short-lived credentials). */
export const MIN_VALIDITY_SECONDS = 10;
/** Longest validity of an issued certificate: 100 years of 365 days. */
export const MAX_VALIDITY_SECONDS = 36_500 * 86_400;

/** Device/client certificates: digitalSignature + keyEncipherment, clientAuth, one year. */
export const DEFAULT_CLIENT_PROFILE: Readonly<Profile> = Object.freeze<Profile>({
  validitySeconds: 365 * 86_400,
  keyUsage: ['digitalSignature', 'keyEncipherment'],
  extKeyUsage: ['clientAuth'],
});

export class ProfileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProfileError';
  }
}

/** Throws `ProfileError` when a profile could issue something other than an end-entity cert. */
export function validateProfile(p: Profile): void {
  if (
    !Number.isInteger(p.validitySeconds) ||
    p.validitySeconds < MIN_VALIDITY_SECONDS ||
    p.validitySeconds > MAX_VALIDITY_SECONDS
  ) {
    throw new ProfileError(
      `validitySeconds must be a whole number between ${MIN_VALIDITY_SECONDS} and ${MAX_VALIDITY_SECONDS} (100 years)`,
    );
  }
  for (const ku of p.keyUsage) {
    if (ku === 'keyCertSign' || ku === 'cRLSign')
      throw new ProfileError(`keyUsage ${ku} is not allowed for issued certificates`);
  }
  for (const e of p.extKeyUsage) ekuOid(e);
  if (p.crlDistributionPoint !== undefined && !/^[a-z][a-z0-9+.-]*:\S+$/i.test(p.crlDistributionPoint)) {
    throw new ProfileError('crlDistributionPoint must be a URL');
  }
  if (p.ocspUrl !== undefined && !/^https?:\/\/\S+$/i.test(p.ocspUrl)) {
    throw new ProfileError('ocspUrl must be an http(s) URL');
  }
}
