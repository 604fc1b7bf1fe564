/**
 * External validation webhook (docs/server.md "External validation"; docs/interop.md item 23:
 * Intune/NDES-style validators decide before a certificate is issued).
 *
 * `validationPolicy` is a Policy: it POSTs a JSON description of the request — the CSR's
 * challengePassword included, since validators of dynamic challenges (an MDM) need it — to the
 * configured URL, with `Authorization: Bearer <token>` when a token is configured, and passes
 * the request only on HTTP 200 with `{"allow": true}`. `{"allow": false, "reason": "…"}` is a
 * refusal (FAILURE badRequest "rejected by the validation service[: reason]"); anything else —
 * another status, a body that is not such JSON, a redirect, a network error, a timeout, a body
 * over the size bound — fails closed (FAILURE badRequest "the validation service is
 * unavailable") with a warning log that never carries the challenge or the token.
 *
 * Where it sits (ChallengeGate, lifecycle): mode `challenge` replaces the local challenge
 * check with the webhook; mode `always` keeps the local check first and adds the webhook as a
 * further gate. Resends of a transaction the same key already holds never reach it
 * (`unlessKnownTransaction`). The configuration is plain data (it crosses `workerData`).
 */
import { messageTypeName, FailInfo } from '../scep/types.js';
import { spkiHash } from '../crypto/keys.js';
import type { Store } from '../store/index.js';
import { nameText } from '../pkix/name.js';
import { readBoundedBody } from '../scep/bounded-body.js';
import { reject, type EnrollmentRequest, type Policy, type Rejection } from './policy.js';
import type { ServiceLogger } from './types.js';

export type ValidationMode = 'challenge' | 'always';
export const VALIDATION_MODES: readonly ValidationMode[] = ['challenge', 'always'];

export interface ValidationConfig {
  /** http(s) URL the RA POSTs to. */
  url: string;
  /** Bearer token sent in `Authorization` (a secret: never logged). */
  token?: string;
  /** Longest wait for the whole answer, ms (default 5000). */
  timeoutMs?: number;
  /** `challenge` (default): the webhook replaces the local challenge check; `always`: both. */
  mode?: ValidationMode;
  /** Send renewals too (default false: renewals are authorized by their signer certificate). */
  renewals?: boolean;
  /** Largest response body read, bytes (default 64 KiB). */
  maxResponseBytes?: number;
}

export interface ResolvedValidationConfig {
  url: string;
  token: string | undefined;
  timeoutMs: number;
  mode: ValidationMode;
  renewals: boolean;
  maxResponseBytes: number;
}

export const DEFAULT_VALIDATION_TIMEOUT_MS = 5000;
export const DEFAULT_VALIDATION_MAX_RESPONSE_BYTES = 64 * 1024;
/** Longest validator reason copied into failInfoText. */
export const MAX_REASON_LENGTH = 200;

export const REJECTED_TEXT = 'rejected by the validation service';
export const UNAVAILABLE_TEXT = 'the validation service is unavailable';

/** Fills in defaults; throws RangeError for nonsense. */
export function resolveValidationConfig(c: ValidationConfig): ResolvedValidationConfig {
  let u: URL;
  try {
    u = new URL(c.url);
  } catch {
    throw new RangeError('the validation URL is not a valid URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new RangeError('the validation URL must be http(s)');
  const r: ResolvedValidationConfig = {
    url: u.href,
    token: c.token !== undefined && c.token !== '' ? c.token : undefined,
    timeoutMs: c.timeoutMs ?? DEFAULT_VALIDATION_TIMEOUT_MS,
    mode: c.mode ?? 'challenge',
    renewals: c.renewals ?? false,
    maxResponseBytes: c.maxResponseBytes ?? DEFAULT_VALIDATION_MAX_RESPONSE_BYTES,
  };
  if (!Number.isInteger(r.timeoutMs) || r.timeoutMs < 1 || r.timeoutMs > 600_000)
    throw new RangeError('the validation timeout must be between 1 ms and 10 minutes');
  if (!VALIDATION_MODES.includes(r.mode))
    throw new RangeError(`the validation mode must be one of ${VALIDATION_MODES.join(', ')}`);
  if (!Number.isInteger(r.maxResponseBytes) || r.maxResponseBytes < 16)
    throw new RangeError('the validation response bound must be at least 16 bytes');
  if (r.token !== undefined && !/^[\x21-\x7e]+$/.test(r.token))
    throw new RangeError('the validation token must be printable characters without spaces');
  return r;
}

/** The JSON body POSTed to the validation service. */
export interface ValidationRequest {
  transactionId: string;
  /** `PKCSReq` or `RenewalReq` (a renewal signed by our certificate may also be a PKCSReq). */
  messageType: string;
  /** True when the request is a renewal (only sent with `renewals: true`). */
  renewal: boolean;
  /** RFC 4514 text of the CSR subject. */
  subject: string;
  subjectAltNames: { type: string; value: string }[];
  keyType: string;
  keyBits: number;
  /** SHA-256 (hex) of the CSR's SubjectPublicKeyInfo. */
  keyHash: string;
  /** The CSR's challengePassword (null when absent). */
  challengePassword: string | null;
  remoteAddress: string | null;
  /** The CSR, base64 DER. */
  csr: string;
}

/** The request body for `er`. */
export function validationRequest(er: EnrollmentRequest, renewal = false): ValidationRequest {
  const { csr } = er;
  return {
    transactionId: er.request.transactionId,
    messageType: messageTypeName(er.request.messageType),
    renewal,
    subject: nameText(csr.subjectRaw),
    subjectAltNames: csr.subjectAltNames.map((n) => {
      switch (n.type) {
        case 'dirName':
          return { type: 'dirName', value: nameText(n.raw) };
        case 'other':
          return { type: 'other', value: n.raw.toString('hex') };
        default:
          return { type: n.type, value: n.value };
      }
    }),
    keyType: csr.keyType,
    keyBits: csr.keyBits,
    keyHash: spkiHash(csr.spki),
    challengePassword: csr.challengePassword ?? null,
    remoteAddress: er.ctx.remoteAddress ?? null,
    csr: csr.der.toString('base64'),
  };
}

/** The validator's reason if it is short printable text (and does not echo the challenge). */
function safeReason(reason: unknown, challenge: string | undefined): string | undefined {
  if (typeof reason !== 'string') return undefined;
  const r = reason.trim();
  if (r === '' || !/^[^\p{C}]+$/u.test(r)) return undefined;
  if (challenge !== undefined && challenge !== '' && r.includes(challenge)) return undefined;
  const chars = [...r];
  return chars.length > MAX_REASON_LENGTH ? chars.slice(0, MAX_REASON_LENGTH).join('') : r;
}

type Verdict = { allow: true } | { allow: false; reason: string | undefined } | { unavailable: string };

export interface ValidationPolicyOptions {
  config: ResolvedValidationConfig;
  logger?: ServiceLogger;
  /** A refusal also counts as a failed challenge for the throttle (mode `challenge`). */
  denialIsChallengeFailure?: boolean;
  /** The request is a renewal (sets `renewal` in the body). */
  renewal?: boolean;
}

/** The webhook as a Policy (see the module comment). */
export function validationPolicy(o: ValidationPolicyOptions): Policy {
  const { config } = o;
  return async (er) => {
    const v = await callValidator(config, validationRequest(er, o.renewal ?? false));
    if ('unavailable' in v) {
      o.logger?.warn(
        {
          transactionId: er.request.transactionId,
          remote: er.ctx.remoteAddress,
          subject: nameText(er.csr.subjectRaw),
          problem: v.unavailable,
        },
        'validation service unavailable: request refused (fail closed)',
      );
      return reject(FailInfo.badRequest, UNAVAILABLE_TEXT);
    }
    if (v.allow) return undefined;
    const reason = safeReason(v.reason, er.csr.challengePassword);
    const r: Rejection = reject(FailInfo.badRequest, reason ? `${REJECTED_TEXT}: ${reason}` : REJECTED_TEXT);
    return o.denialIsChallengeFailure ? { challengeFailure: true, ...r } : r;
  };
}

/** One call; never throws. `unavailable` texts name no secret. */
async function callValidator(config: ResolvedValidationConfig, body: ValidationRequest): Promise<Verdict> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), config.timeoutMs);
  try {
    let res: Response;
    try {
      res = await fetch(config.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          ...(config.token !== undefined ? { authorization: `Bearer ${config.token}` } : {}),
        },
        body: JSON.stringify(body),
        // A redirect could carry the challenge (and the token) elsewhere: refuse it.
        redirect: 'error',
        signal: ac.signal,
      });
    } catch (e) {
      return {
        unavailable: ac.signal.aborted ? `no answer within ${config.timeoutMs} ms` : networkProblem(e),
      };
    }
    let raw: Buffer | undefined;
    try {
      raw = await readBoundedBody(res, config.maxResponseBytes);
    } catch {
      return {
        unavailable: ac.signal.aborted
          ? `no complete answer within ${config.timeoutMs} ms`
          : 'response body broken',
      };
    }
    if (res.status !== 200) return { unavailable: `HTTP ${res.status}` };
    if (raw === undefined) return { unavailable: `response larger than ${config.maxResponseBytes} bytes` };
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      return { unavailable: 'response is not JSON' };
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json))
      return { unavailable: 'response is not a JSON object' };
    const { allow, reason } = json as { allow?: unknown; reason?: unknown };
    if (allow === true) return { allow: true };
    if (allow === false) return { allow: false, reason: typeof reason === 'string' ? reason : undefined };
    return { unavailable: 'response has no boolean "allow"' };
  } finally {
    clearTimeout(timer);
  }
}

/** A fetch failure as a short text (error codes only: no request data). */
function networkProblem(e: unknown): string {
  const cause = e instanceof Error ? (e.cause as { code?: unknown } | undefined) : undefined;
  const code = cause && typeof cause.code === 'string' ? cause.code : undefined;
  return `network error${code ? ` (${code})` : ''}`;
}

/**
 * `policy`, skipped for a transaction the same key already holds (its answer is a replay or
 * the state the store records): a resend never calls the validator again. `transactionId`
 * maps the request to its store key (renewals are stored under a derived one).
 */
export function unlessKnownTransaction(
  store: Store,
  policy: Policy,
  transactionId: (er: EnrollmentRequest) => string = (er) => er.request.transactionId,
): Policy {
  return async (er) => {
    const tx = await store.getTransaction(transactionId(er));
    if (tx && tx.signerKeyHash === er.signerKeyHash) return undefined;
    return policy(er);
  };
}
