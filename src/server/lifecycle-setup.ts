/**
 * Installing the certificate lifecycle (src/ra/lifecycle.ts) on an enrollment service built
 * from a data directory — the same way in the HTTP thread and in each enrollment worker, so
 * the settings are plain data that cross `workerData`.
 */
import { CaSet, loadPreviousCas } from '../ca/authorities.js';
import type { CertificateAuthority } from '../ca/issuer.js';
import { NextCaWatcher } from '../ca/rollover.js';
import { DEFAULT_CLIENT_PROFILE } from '../ca/profile.js';
import type { ApprovalConfig } from '../ra/approval.js';
import type { EnrollmentConfig } from '../ra/config.js';
import { installLifecycle, type Lifecycle } from '../ra/lifecycle.js';
import type { RenewalConfig } from '../ra/renewal.js';
import type { EnrollmentService, ServiceLogger } from '../ra/service.js';
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

/**
 * Installs the lifecycle on `service` with every CA the data directory has had, and the
 * rollover watcher (GetNextCACert while `DIR/ca/next/` holds a staged CA).
 */
export function setupLifecycle(
  service: EnrollmentService,
  o: {
    ca: CertificateAuthority;
    dataDir: string;
    passphrase?: string;
    settings?: LifecycleSettings;
    logger?: ServiceLogger;
  },
): Lifecycle {
  const s = o.settings ?? {};
  const next = new NextCaWatcher(o.dataDir);
  service.setNextCaSource(() => next.current());
  return installLifecycle(service, {
    cas: new CaSet(o.ca, loadPreviousCas(o.dataDir, o.passphrase)),
    ...(s.approval ? { approval: s.approval } : {}),
    ...(s.renewal ? { renewal: s.renewal } : {}),
    ...(s.crlValiditySeconds !== undefined ? { crlValiditySeconds: s.crlValiditySeconds } : {}),
    ...(o.logger ? { logger: o.logger } : {}),
  });
}
