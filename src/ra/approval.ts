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
import type { EnrollmentRequest } from './policy.js';

export type ApprovalMode = 'auto' | 'manual' | 'challenge-or-manual';

export const APPROVAL_MODES: readonly ApprovalMode[] = ['auto', 'manual', 'challenge-or-manual'];

export interface ApprovalConfig {
  /** Default `auto`. */
  mode?: ApprovalMode;
  /** How long a pending request waits for a decision, seconds (default 7 days). */
  pendingTtlSeconds?: number;
  /** HTTP Retry-After hint sent with PENDING (default 60 s). */
  retryAfterSeconds?: number;
}

export type ResolvedApprovalConfig = Required<ApprovalConfig>;

/** Fills in defaults; throws RangeError for nonsense. */
export function resolveApprovalConfig(c: ApprovalConfig = {}): ResolvedApprovalConfig {
  const r: ResolvedApprovalConfig = {
    mode: c.mode ?? 'auto',
    pendingTtlSeconds: c.pendingTtlSeconds ?? 7 * 86_400,
    retryAfterSeconds: c.retryAfterSeconds ?? 60,
  };
  if (!APPROVAL_MODES.includes(r.mode))
    throw new RangeError(`approval mode must be one of ${APPROVAL_MODES.join(', ')}`);
  if (!Number.isInteger(r.pendingTtlSeconds) || r.pendingTtlSeconds < 1)
    throw new RangeError('the pending lifetime must be a positive number of seconds');
  if (!Number.isInteger(r.retryAfterSeconds) || r.retryAfterSeconds < 1)
    throw new RangeError('Retry-After must be a positive number of seconds');
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
