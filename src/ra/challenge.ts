/**
 * Shared-secret challenge check (RFC 8894 §2.4, docs/conformance.md §5.1). The candidate and every
 * configured secret are both run through HMAC-SHA256 under a per-process random key and the
 * MACs compared with `crypto.timingSafeEqual`, so neither the comparison time nor the length of
 * the candidate tells anything about a secret. The secrets themselves are not kept.
 */
import { SecretMatcher } from '../crypto/secret-match.js';
import { FailInfo } from '../scep/types.js';
import type { JsonObject, Store } from '../store/index.js';
import type { Decision } from './decision.js';
import { nameText } from '../pkix/name.js';
import type { OneTimeChallenges } from './one-time-challenge.js';
import { reject, rejectionDecision, type EnrollmentRequest, type Policy, type Rejection } from './policy.js';
import type { ChallengeLock, RequestContext, ServiceLogger } from './types.js';
import { unlessKnownTransaction, type ValidationMode } from './validation.js';

/** Longest challenge accepted (MDM challenges can be long opaque tokens). */
export const MAX_CHALLENGE_LENGTH = 4096;

export class ChallengeVerifier {
  private readonly secrets: SecretMatcher;

  /** `secrets`: every accepted challenge (several allow rotation); empty strings are ignored. */
  constructor(secrets: readonly string[]) {
    this.secrets = new SecretMatcher(secrets);
  }

  /** How many secrets are configured (0: every challenge is refused). */
  get count(): number {
    return this.secrets.count;
  }

  /** True when `candidate` equals one of the secrets. Checks every secret, whatever matches. */
  verify(candidate: string | undefined): boolean {
    if (candidate === undefined || candidate.length === 0 || candidate.length > MAX_CHALLENGE_LENGTH) {
      return false;
    }
    return this.secrets.matches(candidate);
  }
}

/** What a challengePassword turned out to be (never the value). */
export type ChallengeClass =
  | { kind: 'static' }
  | { kind: 'one-time'; hash: string }
  | { kind: 'expired' }
  | { kind: 'invalid' }
  | { kind: 'absent' };

/**
 * Why an initial enrollment may go on: a challenge, the external validator (mode `challenge`),
 * or a transaction this key already holds.
 */
export type ChallengeGrant =
  { kind: 'static' } | { kind: 'resend' } | { kind: 'one-time'; hash: string } | { kind: 'external' };

/** failInfoText for a throttled source (it names no secret and no count). */
export const THROTTLED_TEXT = 'too many failed attempts; retry later';

/** The refusal of a request from a throttled source (its challenge is not looked at). */
export function throttled(): Rejection {
  return { failInfo: FailInfo.badRequest, text: THROTTLED_TEXT, limit: 'challenge-throttle' };
}

export interface ChallengeGateOptions {
  /** Static challenges (empty: none accepted, e.g. `--no-static-challenge`). */
  verifier: ChallengeVerifier;
  /** One-time challenges (absent: none accepted). */
  oneTime?: OneTimeChallenges;
  store: Store;
  logger?: ServiceLogger;
  now: () => Date;
  /**
   * External validation webhook (src/ra/validation.ts): mode `challenge` replaces the local
   * challenge check with it, mode `always` runs it after the local check passed. Never called
   * for a transaction the same key already holds.
   */
  validation?: { policy: Policy; mode: ValidationMode };
  /** The challenge-failure throttle (absent: not throttled). */
  locked?: ChallengeLock;
}

/**
 * The challenge step of an initial enrollment (docs/conformance.md §5.1, cases 31–34, 39): static or
 * one-time challenge, throttling, and the one-time consumption. Order of an auto enrollment:
 * `authorize` (no store write) → other policies already passed → `redeem` (consumes a one-time
 * challenge, exactly once across workers and instances) → issue. A resend of a transaction
 * the same key already holds needs no challenge (its certificate is replayed).
 */
export class ChallengeGate {
  /** The webhook, skipped for resends of a transaction this key holds. */
  private readonly external: Policy | undefined;

  constructor(private readonly o: ChallengeGateOptions) {
    this.external = o.validation ? unlessKnownTransaction(o.store, o.validation.policy) : undefined;
  }

  /** The external validation mode, or undefined without a webhook. */
  get validationMode(): ValidationMode | undefined {
    return this.o.validation?.mode;
  }

  /** Asks the external validator about a new transaction (passes without a webhook or for a resend). */
  async validate(er: EnrollmentRequest): Promise<Rejection | undefined> {
    return this.external ? this.external(er) : undefined;
  }

  /** Whether one-time challenges are accepted. */
  get oneTimeEnabled(): boolean {
    return this.o.oneTime !== undefined;
  }

  /** Classifies a challengePassword; constant-time against every static secret. */
  classify(pw: string | undefined): ChallengeClass {
    if (pw === undefined || pw === '') return { kind: 'absent' };
    if (this.o.verifier.verify(pw)) return { kind: 'static' };
    const ot = this.o.oneTime?.check(pw, this.o.now());
    if (ot?.kind === 'one-time') return { kind: 'one-time', hash: ot.hash };
    if (ot?.kind === 'expired') return { kind: 'expired' };
    return { kind: 'invalid' };
  }

  /**
   * True when the request's source is locked by the challenge-failure throttle: asked only
   * right before a challenge would be checked, never on other paths.
   */
  async locked(ctx: RequestContext): Promise<boolean> {
    return this.o.locked ? this.o.locked(ctx.remoteAddress) : false;
  }

  /** Auto mode: may this initial enrollment proceed, and on what grounds? No store write. */
  async authorize(er: EnrollmentRequest): Promise<{ grant: ChallengeGrant } | { rejection: Rejection }> {
    if (await this.locked(er.ctx)) return { rejection: throttled() };
    if (this.o.validation?.mode === 'challenge') return this.authorizeExternally(er);
    const c = this.classify(er.csr.challengePassword);
    if (c.kind === 'static') return { grant: c };
    const tx = await this.o.store.getTransaction(er.request.transactionId);
    if (tx) {
      if (tx.signerKeyHash === er.signerKeyHash) return { grant: { kind: 'resend' } };
      // Never burn a one-time challenge on a transactionID another key holds.
      if (c.kind === 'one-time')
        return {
          rejection: reject(
            FailInfo.badRequest,
            'this transactionID is already in use by a request from another key',
          ),
        };
    }
    switch (c.kind) {
      case 'one-time':
        return { grant: c };
      case 'absent':
        return { rejection: reject(FailInfo.badRequest, 'the certificate request has no challengePassword') };
      case 'expired':
        return {
          rejection: {
            challengeFailure: true,
            ...reject(FailInfo.badRequest, 'the one-time challengePassword has expired'),
          },
        };
      default:
        return {
          rejection: {
            challengeFailure: true,
            ...reject(FailInfo.badRequest, 'the challengePassword is not valid'),
          },
        };
    }
  }

  /** Mode `challenge`: the validator decides instead of the local challenge check. */
  private async authorizeExternally(
    er: EnrollmentRequest,
  ): Promise<{ grant: ChallengeGrant } | { rejection: Rejection }> {
    const tx = await this.o.store.getTransaction(er.request.transactionId);
    if (tx) {
      if (tx.signerKeyHash === er.signerKeyHash) return { grant: { kind: 'resend' } };
      return {
        rejection: reject(
          FailInfo.badRequest,
          'this transactionID is already in use by a request from another key',
        ),
      };
    }
    const r = await this.o.validation!.policy(er);
    return r ? { rejection: r } : { grant: { kind: 'external' } };
  }

  /**
   * Consumes a one-time challenge for this request (other grants pass). Fails when it was
   * used before — logged as a warning with the transactionID, never the value: a second use
   * signals a leaked challenge. An identical resend racing its first request is let through
   * (the issuer answers it with the one certificate).
   */
  async redeem(er: EnrollmentRequest, grant: ChallengeGrant): Promise<Rejection | undefined> {
    if (grant.kind !== 'one-time') return undefined;
    if (await this.o.store.consumeSecret(grant.hash, this.o.now())) return undefined;
    const tx = await this.o.store.getTransaction(er.request.transactionId);
    if (tx && tx.signerKeyHash === er.signerKeyHash) return undefined;
    this.o.logger?.warn(
      {
        transactionId: er.request.transactionId,
        remote: er.ctx.remoteAddress,
        subject: nameText(er.csr.subjectRaw),
      },
      'one-time challenge presented again (already used or unknown): possible compromise',
    );
    return {
      challengeFailure: true,
      ...reject(FailInfo.badRequest, 'the one-time challengePassword has already been used'),
    };
  }

  /**
   * Auto mode end to end: authorize → (mode `always`: the external validator) → redeem →
   * `issue` (with the transaction meta to record). The validator runs before a one-time
   * challenge is consumed, so a refusal does not burn it.
   */
  async enroll(er: EnrollmentRequest, issue: (meta?: JsonObject) => Promise<Decision>): Promise<Decision> {
    const a = await this.authorize(er);
    if ('rejection' in a) return rejectionDecision(a.rejection);
    if (this.o.validation?.mode === 'always' && a.grant.kind !== 'resend') {
      const v = await this.validate(er);
      if (v) return rejectionDecision(v);
    }
    const r = await this.redeem(er, a.grant);
    if (r) return rejectionDecision(r);
    return issue(a.grant.kind === 'resend' ? undefined : { challenge: a.grant.kind });
  }
}
