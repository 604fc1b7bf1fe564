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
  /** More cRLDistributionPoints URLs (after `crlDistributionPoint`). */
  crlDistributionPoints?: string[];
  /** certificatePolicies: policy OIDs (no qualifiers). */
  certificatePolicies?: string[];
  /** authorityInfoAccess URLs: where the CA certificate is (caIssuers) and OCSP responders. */
  authorityInfoAccess?: { caIssuers?: string[]; ocsp?: string[] };
  /** Fixed extensions added to every certificate: OID, criticality, extnValue DER as hex. */
  customExtensions?: CustomExtension[];
  /**
   * OIDs of CSR extensions copied unchanged into the certificate. Extensions the CA decides
   * (basicConstraints, keyUsage, extKeyUsage, key identifiers, CRL DP, AIA, policies,
   * subjectAltName) are never copied this way.
   */
  passThroughExtensions?: string[];
}

/** A fixed extension of a profile. */
export interface CustomExtension {
  oid: string;
  critical?: boolean;
  /** extnValue contents (DER) in hex. */
  valueHex: string;
}

/** Extensions a profile may not set as custom or pass-through: the CA decides them. */
export const CA_DECIDED_EXTENSIONS: ReadonlySet<string> = new Set([
  '2.5.29.19', // basicConstraints
  '2.5.29.15', // keyUsage
  '2.5.29.37', // extKeyUsage
  '2.5.29.14', // subjectKeyIdentifier
  '2.5.29.35', // authorityKeyIdentifier
  '2.5.29.31', // cRLDistributionPoints
  '2.5.29.32', // certificatePolicies
  '1.3.6.1.5.5.7.1.1', // authorityInfoAccess
  '2.5.29.17', // subjectAltName
  '2.5.29.30', // nameConstraints
  '2.5.29.36', // policyConstraints
]);

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
  const url = /^[a-z][a-z0-9+.-]*:\S+$/i;
  if (p.crlDistributionPoint !== undefined && !url.test(p.crlDistributionPoint)) {
    throw new ProfileError('crlDistributionPoint must be a URL');
  }
  if (p.ocspUrl !== undefined && !/^https?:\/\/\S+$/i.test(p.ocspUrl)) {
    throw new ProfileError('ocspUrl must be an http(s) URL');
  }
  const urls = [
    ...(p.crlDistributionPoints ?? []),
    ...(p.authorityInfoAccess?.caIssuers ?? []),
    ...(p.authorityInfoAccess?.ocsp ?? []),
  ];
  for (const u of urls) if (!url.test(u)) throw new ProfileError(`${JSON.stringify(u)} is not a URL`);
  const dotted = /^[0-2](\.\d{1,9}){1,30}$/;
  for (const o of p.certificatePolicies ?? [])
    if (!dotted.test(o)) throw new ProfileError(`certificate policy ${JSON.stringify(o)} is not an OID`);
  for (const o of [...(p.passThroughExtensions ?? []), ...(p.customExtensions ?? []).map((c) => c.oid)]) {
    if (!dotted.test(o)) throw new ProfileError(`extension ${JSON.stringify(o)} is not an OID`);
    if (CA_DECIDED_EXTENSIONS.has(o))
      throw new ProfileError(`extension ${o} is decided by the CA; it cannot be custom or passed through`);
  }
  for (const c of p.customExtensions ?? [])
    if (!/^(?:[0-9a-f]{2}){1,4096}$/i.test(c.valueHex))
      throw new ProfileError(`custom extension ${c.oid}: the value must be DER in hex`);
}
