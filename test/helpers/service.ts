/**
 * An enrollment service in memory, composed exactly as `scepter serve` composes it
 * (src/server/compose.ts), on a fixture CA (one key per process) and an in-memory SQLite store:
 * no server, no data directory, no CA key generation per test.
 */
import type { TestContext } from 'node:test';
import { CertificateAuthority } from '../../src/ca/issuer.js';
import type { EnrollmentConfig } from '../../src/ra/config.js';
import type { EnrollmentService } from '../../src/ra/service.js';
import type { ChallengeLock } from '../../src/ra/types.js';
import { composeEnrollment } from '../../src/server/compose.js';
import type { LifecycleSettings } from '../../src/server/lifecycle-setup.js';
import { openStore, type Store } from '../../src/store/index.js';
import { makeIssued, makeRsaKey, makeSelfSigned, type TestCert } from './pki.js';
import { TEST_CHALLENGE } from './scep-server.js';

let fixture: { ca: TestCert; ra: TestCert } | undefined;

/** The process-wide fixture CA (and an RA certificate it issued). */
export function fixtureCa(): { ca: TestCert; ra: TestCert } {
  fixture ??= (() => {
    const ca = makeSelfSigned({
      subject: 'CN=Scepter Test CA,O=Test',
      key: makeRsaKey(2048),
      ca: true,
      days: 30,
    });
    const ra = makeIssued({
      subject: 'CN=Scepter Test RA,O=Test',
      key: makeRsaKey(2048),
      issuer: ca,
      days: 30,
    });
    return { ca, ra };
  })();
  return fixture;
}

export interface TestServiceOptions {
  /** Enrollment settings; the challenge defaults to TEST_CHALLENGE. */
  enrollment?: Partial<EnrollmentConfig>;
  lifecycle?: LifecycleSettings;
  /** RA mode (CertReps signed by the fixture RA). */
  ra?: boolean;
  now?: () => Date;
  /** The challenge-failure throttle's lock check (src/ra/types.ts ChallengeLock). */
  challengeLock?: ChallengeLock;
}

export interface TestService {
  svc: EnrollmentService;
  store: Store;
  ca: TestCert;
  ra: TestCert | undefined;
}

/** A composed service on a fresh in-memory store, closed after the test. */
export async function testService(t: TestContext, o: TestServiceOptions = {}): Promise<TestService> {
  const { ca, ra } = fixtureCa();
  const store = await openStore(':memory:');
  t.after(() => store.close());
  const svc = composeEnrollment({
    ca: new CertificateAuthority({ cert: ca.cert, key: ca.key, chain: [] }),
    ...(o.ra ? { ra: { cert: ra.cert, key: ra.key } } : {}),
    store,
    config: { challenges: [TEST_CHALLENGE], ...o.enrollment },
    ...(o.lifecycle ? { lifecycle: o.lifecycle } : {}),
    ...(o.now ? { now: o.now } : {}),
    ...(o.challengeLock ? { challengeLock: o.challengeLock } : {}),
  });
  return { svc, store, ca, ra: o.ra ? ra : undefined };
}
