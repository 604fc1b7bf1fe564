/**
 * The composition root: the one place an `EnrollmentService` is put together — CA material,
 * retired CAs, the rollover watcher, the lifecycle (approval, renewal, CRL publisher) and the
 * CRL distribution point in the profile. The HTTP thread, each enrollment worker, the
 * benchmarks and the tests all build their service here, so they run the same enrollment path.
 *
 * Two sources of CA material: a data directory (`dataDir`: the CA named `caName` — the default
 * CA in `ca/`, a named one in `cas/NAME/` — its RA, retired CAs under `previous/`, a staged next
 * CA under `next/`), or injected material (`ca`, ...: tests and
 * benchmarks with a fixture CA and an in-memory store). No HTTP here (no fastify).
 */
import { loadPreviousCas } from '../ca/authorities.js';
import type { CertificateAuthority } from '../ca/issuer.js';
import { DEFAULT_CA_NAME } from '../ca/ca-location.js';
import { loadCa, type LoadedCa } from '../ca/keystore.js';
import { NextCaWatcher } from '../ca/rollover.js';
import type { Certificate } from '../pkix/certificate.js';
import type { EnrollmentConfig } from '../ra/config.js';
import type { ChallengeLock } from '../ra/types.js';
import { EnrollmentService, type NextCaSource, type ServiceLogger } from '../ra/service.js';
import type { Store } from '../store/index.js';
import { withCrlDistributionPoint, type LifecycleSettings } from './lifecycle-setup.js';
import type { PrivateKeyLike } from '../crypto/private-key.js';

/** CA material from a data directory. */
export interface DataDirCa {
  dataDir: string;
  /** CA key passphrase. */
  passphrase?: string;
  /** The CA `caName` already loaded from `dataDir` (saves loading it twice). */
  loaded?: LoadedCa;
}

/** Injected CA material (tests, benchmarks). */
export interface InjectedCa {
  ca: CertificateAuthority;
  /** Certificates above the CA certificate. */
  chain?: readonly Certificate[];
  /** RA mode: this key pair signs CertReps and receives envelopes. */
  ra?: { cert: Certificate; key: PrivateKeyLike };
  /** Retired CAs whose certificates stay usable. */
  previousCas?: readonly CertificateAuthority[];
  /** Staged next CA certificates (GetNextCACert). */
  nextCa?: NextCaSource;
}

export type ComposeOptions = (DataDirCa | InjectedCa) & {
  store: Store;
  /** Enrollment settings, the challenges included. */
  config: EnrollmentConfig;
  /** Approval mode, renewal policy, CRL validity, public URL (CRL distribution point). */
  lifecycle?: LifecycleSettings;
  logger?: ServiceLogger;
  /** The challenge-failure throttle's lock check (src/ra/throttle.ts); absent: not throttled. */
  challengeLock?: ChallengeLock;
  /** Clock (tests). */
  now?: () => Date;
  /** CA-only: the CA signs and decrypts SCEP messages even when it has an RA (a profile's `ra: false`). */
  caOnly?: boolean;
  /**
   * Which CA issues: its name, recorded with every transaction and certificate (serials,
   * GetCert, revocations and CRLs are per CA). With `dataDir` it also selects the CA's files
   * (`default`: `DIR/ca/`, otherwise `DIR/cas/NAME/`). Default `default`.
   */
  caName?: string;
  /** The enrollment profile's name, recorded with every transaction and certificate. Default `default`. */
  profile?: string;
};

/** Builds the enrollment service with its lifecycle (see the module comment). */
export function composeEnrollment(o: ComposeOptions): EnrollmentService {
  let material: InjectedCa;
  const caName = o.caName ?? DEFAULT_CA_NAME;
  if ('dataDir' in o) {
    const at = { dataDir: o.dataDir, name: caName };
    const loaded = o.loaded ?? loadCa(at, o.passphrase);
    const next = new NextCaWatcher(at);
    material = {
      ca: loaded.ca,
      chain: loaded.chain,
      ...(loaded.ra ? { ra: loaded.ra } : {}),
      previousCas: loadPreviousCas(at, o.passphrase),
      nextCa: () => next.current(),
    };
  } else {
    material = o;
  }
  const s = o.lifecycle ?? {};
  return new EnrollmentService({
    ca: material.ca,
    caName,
    ...(o.profile !== undefined ? { profile: o.profile } : {}),
    ...(material.chain ? { chain: material.chain } : {}),
    ...(material.ra && !o.caOnly ? { ra: material.ra } : {}),
    ...(material.previousCas ? { previousCas: material.previousCas } : {}),
    ...(material.nextCa ? { nextCa: material.nextCa } : {}),
    store: o.store,
    config: withCrlDistributionPoint(o.config, o.lifecycle, material.ca),
    lifecycle: Object.assign(
      {},
      s.approval ? { approval: s.approval } : {},
      s.renewal ? { renewal: s.renewal } : {},
      s.crlValiditySeconds !== undefined ? { crlValiditySeconds: s.crlValiditySeconds } : {},
    ),
    ...(o.logger ? { logger: o.logger } : {}),
    ...(o.challengeLock ? { challengeLock: o.challengeLock } : {}),
    ...(o.now ? { now: o.now } : {}),
  });
}
