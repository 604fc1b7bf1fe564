/**
 * Certificate lifecycle settings of `scepter serve` (approval, renewal, CRLs) as plain data, so
 * they cross `workerData`; src/server/compose.ts builds the service from them.
 */
import type { CertificateAuthority } from '../ca/issuer.js';
import { DEFAULT_CLIENT_PROFILE } from '../ca/profile.js';
import type { ApprovalConfig } from '../ra/approval.js';
import type { EnrollmentConfig } from '../ra/config.js';
import type { RenewalConfig } from '../ra/renewal.js';
import { crlPath } from './crl-route.js';

/** Lifecycle settings of `scepter serve` (plain data). */
export interface LifecycleSettings {
  approval?: ApprovalConfig;
  renewal?: RenewalConfig;
  /** CRL validity (thisUpdate → nextUpdate), seconds. */
  crlValiditySeconds?: number;
  /**
   * Public base URL of this server (`http://ca.example:8080`). When set, issued certificates
   * carry a CRL distribution point `<publicUrl>/crl/<CA fingerprint>.crl`.
   */
  publicUrl?: string;
}

/** The CRL distribution point URL for certificates of this CA. */
export function crlDistributionPoint(publicUrl: string, caFingerprint: string): string {
  return publicUrl.replace(/\/+$/, '') + crlPath(caFingerprint);
}

/** The enrollment config with a CRL distribution point in its profile when a public URL is set. */
export function withCrlDistributionPoint<T extends Omit<EnrollmentConfig, 'challenges'>>(
  config: T,
  settings: LifecycleSettings | undefined,
  ca: CertificateAuthority,
): T {
  if (!settings?.publicUrl) return config;
  const base = config.profile ?? DEFAULT_CLIENT_PROFILE;
  return {
    ...config,
    profile: {
      ...base,
      keyUsage: [...base.keyUsage],
      extKeyUsage: [...base.extKeyUsage],
      ...(config.validitySeconds !== undefined ? { validitySeconds: config.validitySeconds } : {}),
      crlDistributionPoint: crlDistributionPoint(settings.publicUrl, ca.cert.fingerprint),
    },
  };
}
