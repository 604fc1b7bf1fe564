/**
 * Manual approval (RFC 8894 §2.4, §2.5; docs/conformance.md cases 32, 37–39). In `manual` mode every
 * initial PKCSReq that passes the other policies (proof of possession, key, signer key = CSR
 * key, CSR content) is stored `pending` and answered PENDING; the challenge is then NOT a
 * reason to refuse — RFC 8894 §2.4 allows holding a request without a valid challenge for
 * manual approval — but its verdict (`valid`, `invalid` or `absent`, never the value) is kept
 * for the operator. `challenge-or-manual` issues at once with a valid challenge and holds the
 * rest. `auto` (default) needs the challenge and never holds anything.
 *
 * The client learns the outcome by CertPoll or by resending the PKCSReq with the same
 * transactionID (micromdm `scepclient` resends); the first such message after approval gets
 * the certificate issued (store `recordIssued` is conditional, so never twice); after
 * rejection or expiry it gets FAILURE badRequest.
 */
import type { JsonObject } from '../store/index.js';
import { nameText } from '../pkix/name.js';
import { sanText } from './names.js';
import { DEFAULT_MAX_RETRY_AFTER } from './retry-after.js';
import { DEFAULT_MAX_OPEN_PENDING, DEFAULT_MAX_PENDING_PER_ADDRESS } from './pending-limits.js';
import type { EnrollmentRequest } from './policy.js';

export type ApprovalMode = 'auto' | 'manual' | 'challenge-or-manual';

export const APPROVAL_MODES: readonly ApprovalMode[] = ['auto', 'manual', 'challenge-or-manual'];

export interface ApprovalConfig {
  /** Default `auto`. */
  mode?: ApprovalMode;
  /** How long a pending request waits for a decision, seconds (default 7 days). */
  pendingTtlSeconds?: number;
  /**
   * HTTP Retry-After hint sent with PENDING (default 60 s): the shortest; it grows while a large
   * queue waits for a decision (src/ra/retry-after.ts).
   */
  retryAfterSeconds?: number;
  /** The longest Retry-After hint (default 3600 s; equal to `retryAfterSeconds`: fixed). */
  maxRetryAfterSeconds?: number;
  /**
   * New pending requests one client address may queue per minute (default 100; 0: no limit).
   * More get FAILURE badRequest until the minute ends (src/ra/pending-limits.ts).
   */
  maxPendingPerAddress?: number;
  /** Open pending requests at most (default 10 000; 0: no cap). A new one over it gets HTTP 503. */
  maxOpenPending?: number;
}

export type ResolvedApprovalConfig = Required<ApprovalConfig>;

/** Fills in defaults; throws RangeError for nonsense. */
export function resolveApprovalConfig(c: ApprovalConfig = {}): ResolvedApprovalConfig {
  const r: ResolvedApprovalConfig = {
    mode: c.mode ?? 'auto',
    pendingTtlSeconds: c.pendingTtlSeconds ?? 7 * 86_400,
    retryAfterSeconds: c.retryAfterSeconds ?? 60,
    maxRetryAfterSeconds:
      c.maxRetryAfterSeconds ?? Math.max(DEFAULT_MAX_RETRY_AFTER, c.retryAfterSeconds ?? 60),
    maxPendingPerAddress: c.maxPendingPerAddress ?? DEFAULT_MAX_PENDING_PER_ADDRESS,
    maxOpenPending: c.maxOpenPending ?? DEFAULT_MAX_OPEN_PENDING,
  };
  if (!APPROVAL_MODES.includes(r.mode))
    throw new RangeError(`approval mode must be one of ${APPROVAL_MODES.join(', ')}`);
  if (!Number.isInteger(r.pendingTtlSeconds) || r.pendingTtlSeconds < 1)
    throw new RangeError('the pending lifetime must be a positive number of seconds');
  if (!Number.isInteger(r.retryAfterSeconds) || r.retryAfterSeconds < 1)
    throw new RangeError('Retry-After must be a positive number of seconds');
  if (!Number.isInteger(r.maxRetryAfterSeconds) || r.maxRetryAfterSeconds < r.retryAfterSeconds)
    throw new RangeError('the longest Retry-After must be a whole number of seconds ≥ --retry-after');
  if (!Number.isInteger(r.maxPendingPerAddress) || r.maxPendingPerAddress < 0)
    throw new RangeError('the pending rate per address must be a whole number ≥ 0');
  if (!Number.isInteger(r.maxOpenPending) || r.maxOpenPending < 0)
    throw new RangeError('the cap on open pending requests must be a whole number ≥ 0');
  return r;
}

export type ChallengeVerdict = 'valid' | 'invalid' | 'absent';

/** What the operator sees about a pending request (never the challenge itself). */
export function pendingMeta(er: EnrollmentRequest, challenge: ChallengeVerdict): JsonObject {
  return {
    challenge,
    keyType: er.csr.keyType,
    keyBits: er.csr.keyBits,
    sans: er.csr.subjectAltNames.map(sanText),
    signerSubject: nameText(er.request.signerCert.subjectRaw),
    ...(er.ctx.userAgent ? { userAgent: er.ctx.userAgent } : {}),
  };
}
