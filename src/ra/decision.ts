/**
 * What a message handler decides; the service turns it into a signed CertRep.
 */
import type { CipherName } from '../crypto/algorithms.js';
import type { Certificate } from '../pkix/certificate.js';
import { FailInfo } from '../scep/types.js';

/**
 * Which limit refused a request (counted in `/metrics` as `scepter_limit_refusals_total`): the
 * per-address rate of new pending requests, the cap on open pending requests (HTTP 503), or
 * the challenge-failure throttle.
 */
export type LimitName = 'pending-rate' | 'pending-queue' | 'challenge-throttle';

export type Decision =
  | {
      status: 'SUCCESS';
      /** The certificate(s) for the reply, the issued/requested one first. */
      certificates: Buffer[];
      /**
       * `certificates[0]` parsed, when the issuance that just made it parsed it anyway (the
       * reply then needs no second parse of the same DER).
       */
      issued?: Certificate;
      /** Serial (hex) of the certificate answered, for the log. */
      serial: string;
      /** The request's content cipher; the reply uses it (single DES → 3DES). */
      cipher: CipherName;
      /** True when this answers a resend with an earlier issuance. */
      replay?: boolean;
      /** GetCRL: the CRL(s) for the reply (`certificates` is then empty). */
      crls?: Buffer[];
    }
  | {
      status: 'FAILURE';
      failInfo: FailInfo;
      text: string;
      /** The challenge was checked and failed (the throttle counts it). */
      challengeFailure?: boolean;
      /** Set when a limit refused the request. */
      limit?: LimitName;
    }
  | {
      /** No CertRep: HTTP 503 with `Retry-After` (the server is overloaded, e.g. the queue is full). */
      status: 'UNAVAILABLE';
      text: string;
      retryAfterSeconds: number;
      limit: LimitName;
    }
  | {
      status: 'PENDING';
      /** HTTP `Retry-After` hint (seconds) sent with the PENDING CertRep. */
      retryAfterSeconds?: number;
      /** Held although the challenge was wrong (challenge-or-manual: the throttle counts it). */
      challengeFailure?: boolean;
    };

/** A FAILURE decision. */
export function failure(failInfo: FailInfo, text: string): Decision {
  return { status: 'FAILURE', failInfo, text };
}
