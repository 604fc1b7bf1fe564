/**
 * Certificate lifecycle settings of `scepter serve` (approval, renewal, CRLs) as plain data, so
 * they cross `workerData`; src/server/compose.ts builds the service from them.
 */
import type { CertificateAuthority } from '../ca/issuer.js';
import type { OcspSettings } from '../ca/ocsp-responder.js';
import { DEFAULT_CLIENT_PROFILE } from '../ca/profile.js';
import type { ApprovalConfig } from '../ra/approval.js';
import type { EnrollmentConfig } from '../ra/config.js';
import type { RenewalConfig } from '../ra/renewal.js';
import { crlPath } from './crl-route.js';
import { OCSP_PATH } from './ocsp-route.js';

/** Lifecycle settings of `scepter serve` (plain data). */
export interface LifecycleSettings {
  approval?: ApprovalConfig;
  renewal?: RenewalConfig;
  /** CRL validity (thisUpdate → nextUpdate), seconds. */
  crlValiditySeconds?: number;
  /**
   * Public base URL of this server (`http://ca.example:8080`). When set, issued certificates
   * carry a CRL distribution point `<publicUrl>/crl/<CA fingerprint>.crl` and, unless OCSP is
   * off, the OCSP responder `<publicUrl>/ocsp` (authorityInfoAccess id-ad-ocsp).
   */
  publicUrl?: string;
  /** The OCSP responder at `/ocsp` (src/ca/ocsp-responder.ts; default on, CA-signed); false: off. */
  ocsp?: OcspSettings | false;
}

/** The OCSP responder URL for certificates issued by this server. */
export function ocspUrl(publicUrl: string): string {
  return publicUrl.replace(/\/+$/, '') + OCSP_PATH;
}

/** The CRL distribution point URL for certificates of this CA. */
export function crlDistributionPoint(publicUrl: string, caFingerprint: string): string {
  return publicUrl.replace(/\/+$/, '') + crlPath(caFingerprint);
}

/**
 * The enrollment config with a CRL distribution point (and the OCSP URL, unless OCSP is off) in
 * its profile when a public URL is set.
 */
export function withCrlDistributionPoint<T extends Omit<EnrollmentConfig, 'challenges'>>(
  config: T,
  settings: LifecycleSettings | undefined,
  ca: CertificateAuthority,
): T {
  if (!settings?.publicUrl) return config;
  const base = config.profile ?? DEFAULT_CLIENT_PROFILE;
  return Object.assign({}, config, {
    profile: Object.assign({}, base, {
      keyUsage: [...base.keyUsage],
      extKeyUsage: [...base.extKeyUsage],
      ...(config.validitySeconds !== undefined ? { validitySeconds: config.validitySeconds } : {}),
      crlDistributionPoint: crlDistributionPoint(settings.publicUrl, ca.cert.fingerprint),
      ...(settings.ocsp !== false ? { ocspUrl: ocspUrl(settings.publicUrl) } : {}),
    }),
  });
}
