/**
 * The enrollment path behind `EnrollmentService` (src/ra/service.ts): PKCSReq (initial
 * enrollment with the challenge or manual approval with polling, or renewal), RenewalReq,
 * CertPoll, GetCert, GetCRL and CRL upkeep. The service decodes the pkiMessage and opens its
 * envelope (`open`); everything after — the policy chains, the challenge gate, idempotent
 * issuance — exists here and only here. `EnrollmentHandlers` gets its collaborators
 * explicitly; the service routes each messageType to one of its methods.
 *
 * PKCSReq routing: a signer certificate issued by one of our CAs makes it a renewal (the form
 * sscep, certmonger, Apple and jscep use); any other signer (self-signed, or a certificate from
 * a foreign CA) is an initial enrollment, where the signer key must equal the CSR key and the
 * challenge (or an operator) authorizes it.
 */
import type { CaSet } from '../ca/authorities.js';
import { CrlPublisher } from '../ca/crl.js';
import type { CipherName } from '../crypto/algorithms.js';
import { spkiHash } from '../crypto/keys.js';
import { parseCsr } from '../pkix/csr.js';
import { namesEqual, nameText } from '../pkix/name.js';
import { parseIssuerAndSerial, parseIssuerAndSubject } from '../scep/message-data.js';
import type { PkiRequest } from '../scep/request.js';
import { FailInfo, MessageType } from '../scep/types.js';
import type { JsonObject, Store, TransactionRecord } from '../store/index.js';
import {
  pendingMeta,
  resolveApprovalConfig,
  type ApprovalConfig,
  type ChallengeVerdict,
} from './approval.js';
import { ChallengeGate, ChallengeVerifier, throttled } from './challenge.js';
import type { ResolvedEnrollmentConfig } from './config.js';
import { failure, type Decision } from './decision.js';
import { CSR_CHANGED_TEXT, OTHER_PROFILE_TEXT, TransactionIssuer, heldElsewhere } from './issuance.js';
import { getCert, getCrl } from './lookup.js';
import { PendingLimits, QUEUE_FULL_TEXT, isPendingOverloaded } from './pending-limits.js';
import { PollNotes } from './poll-notes.js';
import { RetryAfterHint } from './retry-after.js';
import { OneTimeChallenges } from './one-time-challenge.js';
import {
  csrPolicy,
  keyPolicy,
  proofOfPossession,
  rejectionDecision,
  runPolicies,
  signerKeyIsCsrKey,
  type EnrollmentRequest,
  type Policy,
} from './policy.js';
import {
  renewalPolicies,
  renewalTransactionId,
  resolveRenewalConfig,
  type RenewalConfig,
} from './renewal.js';
import type { ChallengeLock, RequestContext, ServiceLogger } from './types.js';
import { unlessKnownTransaction, validationPolicy } from './validation.js';
import { csrChecks, type ReservedSubjects } from './csr-checks.js';
import { profileRulesPolicy, subjectFromTemplate } from './profile-rules.js';

/** Resolves on the event loop's next check phase (after the I/O callbacks ready now). */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** failText of an approved request the device did not collect within the pending TTL. */
export const UNCOLLECTED_TEXT = 'the approved request was not collected in time';

/** Lifecycle settings of an enrollment service (plain data). */
export interface LifecycleOptions {
  approval?: ApprovalConfig;
  renewal?: RenewalConfig;
  /** CRL validity in seconds (default 7 days). */
  crlValiditySeconds?: number;
}

/** What the server needs of the lifecycle: CRLs and periodic upkeep. */
export interface Lifecycle {
  crls: CrlPublisher;
  /** Expires overdue pending requests, prunes expired one-time challenges, refreshes stale CRLs. */
  maintain(): Promise<void>;
  /** Runs `maintain` every `intervalMs` (unref'd); returns a stop function. */
  startMaintenance(intervalMs?: number): () => void;
}

/**
 * Opens a request's pkcsPKIEnvelope and parses its messageData with `parse`; every failure after
 * the recipient/algorithm decisions is one uniform badMessageCheck (see openEnvelopeAs).
 */
export type EnvelopeOpener = <T>(
  req: PkiRequest,
  ctx: RequestContext,
  parse: (content: Buffer) => T,
) => { value: T; cipher: CipherName };

/** What the handlers are built from (everything explicit: no reaching into the service). */
export interface EnrollmentHandlersOptions extends LifecycleOptions {
  config: ResolvedEnrollmentConfig;
  store: Store;
  /** Name of the issuing CA, recorded with every transaction and certificate. */
  caName: string;
  /** Name of the enrollment profile, recorded with every transaction and certificate. */
  profileName: string;
  /** Every CA this server has had (current first); certificates of retired CAs stay usable. */
  cas: CaSet;
  open: EnvelopeOpener;
  /** Names no certificate may get: every CA, RA and chain certificate's subject. */
  reservedSubjects?: ReservedSubjects;
  /** The challenge-failure throttle, asked where a challenge is checked (absent: none). */
  challengeLock?: ChallengeLock;
  logger?: ServiceLogger;
  now: () => Date;
}

/** The issued subject from a profile's template (the rules policy has checked it can be filled). */
function subjectTemplate(template: string): (subjectRaw: Buffer) => Buffer {
  return (subjectRaw) => subjectFromTemplate(template, subjectRaw);
}

/** The message handlers of the enrollment service and the lifecycle upkeep. */
export class EnrollmentHandlers implements Lifecycle {
  readonly approval;
  readonly renewal;
  readonly crls: CrlPublisher;
  readonly lookup;
  private readonly store: Store;
  private readonly now: () => Date;
  private readonly issuer: TransactionIssuer;
  /** The Retry-After of PENDING answers, adapted to the queue (src/ra/retry-after.ts). */
  readonly retryAfter: RetryAfterHint;
  /** Static and one-time challenges, the external validator (src/ra/challenge.ts). */
  private readonly gate: ChallengeGate;
  /** Limits on NEW pending requests: per-address rate, cap on the open queue. */
  private readonly pendingLimits: PendingLimits;
  /**
   * Initial enrollment, before the challenge or the operator: the challenge is not one of
   * them, the gate checks it after them (a one-time challenge is consumed only by a request
   * that passed everything else). First rejection wins.
   */
  private readonly initialPolicies: Policy[];
  private readonly renewalChain: Policy[];
  /** When a device last polled its pending request: coalesced, off the reply path. */
  readonly pollNotes: PollNotes;

  constructor(private readonly o: EnrollmentHandlersOptions) {
    const cfg = o.config;
    this.store = o.store;
    this.now = o.now;
    this.pollNotes = new PollNotes({
      store: this.store,
      now: this.now,
      ...(o.logger ? { logger: o.logger } : {}),
    });
    this.approval = resolveApprovalConfig(o.approval);
    this.renewal = resolveRenewalConfig(o.renewal);
    this.crls = new CrlPublisher({
      store: this.store,
      cas: o.cas,
      now: this.now,
      ...(o.crlValiditySeconds !== undefined ? { validitySeconds: o.crlValiditySeconds } : {}),
    });
    this.lookup = { store: this.store, caName: o.caName, cas: o.cas, crls: this.crls };
    this.retryAfter = new RetryAfterHint(
      this.store,
      this.approval.retryAfterSeconds,
      this.approval.maxRetryAfterSeconds,
      this.now,
    );
    this.issuer = new TransactionIssuer({
      ca: o.cas.current,
      caName: o.caName,
      profileName: o.profileName,
      store: this.store,
      profile: cfg.profile,
      backdateSeconds: cfg.backdateSeconds,
      ...(cfg.rules?.subject?.template !== undefined
        ? { subjectOf: subjectTemplate(cfg.rules.subject.template) }
        : {}),
      now: this.now,
      ...(o.logger ? { logger: o.logger } : {}),
    });
    this.pendingLimits = new PendingLimits(
      this.store,
      {
        maxPerAddress: this.approval.maxPendingPerAddress,
        maxOpen: this.approval.maxOpenPending,
        retryAfterSeconds: Math.max(this.approval.retryAfterSeconds, 300),
        profile: o.profileName,
        now: () => this.now().getTime(),
      },
      o.logger,
    );
    const oneTimeKey = cfg.oneTimeChallengeKey;
    const validation = cfg.validation;
    this.gate = new ChallengeGate({
      verifier: new ChallengeVerifier(cfg.challenges),
      ...(oneTimeKey ? { oneTime: new OneTimeChallenges(Buffer.from(oneTimeKey, 'hex')) } : {}),
      store: this.store,
      ...(o.logger ? { logger: o.logger } : {}),
      ...(o.challengeLock ? { locked: o.challengeLock } : {}),
      now: this.now,
      ...(validation
        ? {
            validation: {
              mode: validation.mode,
              policy: validationPolicy({
                config: validation,
                ...(o.logger ? { logger: o.logger } : {}),
                // In mode `challenge` the validator is the challenge check: its refusals count.
                denialIsChallengeFailure: validation.mode === 'challenge',
              }),
            },
          }
        : {}),
    });
    // Before the key comparison, so an EC request gets the clear badAlg answer.
    const key = keyPolicy({ minRsaBits: cfg.minRsaBits, maxRsaBits: cfg.maxRsaBits });
    // What the CA refuses to sign (src/ra/csr-checks.ts): every chain, before the challenge gate
    // or the operator, so a refused CSR never spends a one-time challenge.
    const checks = csrChecks(cfg.csrChecks, o.reservedSubjects);
    // A profile's own rules narrow what the integrity checks accept: always after them.
    const rules = profileRulesPolicy(cfg.rules);
    this.initialPolicies = [
      proofOfPossession,
      key,
      signerKeyIsCsrKey,
      csrPolicy(),
      checks,
      ...(rules ? [rules] : []),
    ];
    this.renewalChain = [
      proofOfPossession,
      key,
      ...renewalPolicies({
        config: this.renewal,
        store: this.store,
        caName: o.caName,
        cas: o.cas,
        now: this.now,
      }),
      csrPolicy(),
      checks,
      ...(rules ? [rules] : []),
    ];
    // --validate-renewals: the webhook last, once per renewal transaction (not for resends).
    if (cfg.validation?.renewals) {
      this.renewalChain.push(
        unlessKnownTransaction(
          this.store,
          validationPolicy({
            config: cfg.validation,
            renewal: true,
            ...(o.logger ? { logger: o.logger } : {}),
          }),
          (er) => renewalTransactionId(er.request.signerCert.serialHex, er.request.transactionId),
        ),
      );
    }
  }

  async getCert(req: PkiRequest, ctx: RequestContext): Promise<Decision> {
    const { value, cipher } = this.o.open(req, ctx, parseIssuerAndSerial);
    return getCert(this.lookup, value, cipher);
  }

  async getCrl(req: PkiRequest, ctx: RequestContext): Promise<Decision> {
    const { value, cipher } = this.o.open(req, ctx, parseIssuerAndSerial);
    return getCrl(this.lookup, value, cipher);
  }

  startMaintenance(intervalMs = 60_000): () => void {
    let busy = false;
    const t = setInterval(() => {
      if (busy) return;
      busy = true;
      this.maintain()
        .catch((e: unknown) => this.o.logger?.warn({ err: e }, 'lifecycle maintenance failed'))
        .finally(() => (busy = false));
    }, intervalMs);
    t.unref();
    return () => clearInterval(t);
  }

  private openCsr(req: PkiRequest, ctx: RequestContext): EnrollmentRequest {
    const { value: csr, cipher } = this.o.open(req, ctx, parseCsr);
    return { request: req, csr, cipher, signerKeyHash: spkiHash(req.signerCert.spki), ctx };
  }

  async pkcsReq(req: PkiRequest, ctx: RequestContext): Promise<Decision> {
    const er = this.openCsr(req, ctx);
    if (this.renewal.enabled && this.o.cas.issuerOf(req.signerCert)) return this.renew(er);
    return this.initial(er);
  }

  async renewalReq(req: PkiRequest, ctx: RequestContext): Promise<Decision> {
    if (!this.renewal.enabled) return failure(FailInfo.badRequest, 'renewal is not enabled on this server');
    return this.renew(this.openCsr(req, ctx));
  }

  /**
   * Initial enrollment: challenge (auto), or the pending queue (manual modes). A one-time
   * challenge is consumed when the request is issued (auto, challenge-or-manual) or accepted
   * into the queue (manual: it is then bound to that pending transaction, recorded in its meta
   * as `challengeKind: 'one-time'`, and used whatever the operator decides).
   */
  private async initial(er: EnrollmentRequest): Promise<Decision> {
    const mode = this.approval.mode;
    const gate = this.gate;
    if (mode !== 'auto') {
      // A transaction we hold already is answered from the store, first: the request stored
      // (and shown to the operator) is the one issued, and another CSR under its
      // transactionID is refused as such, whatever else is wrong with it.
      const existing = await this.store.getTransaction(er.request.transactionId);
      if (existing) return this.continueExisting(existing, er);
    }
    const rejection = await runPolicies(this.initialPolicies, er);
    if (rejection) return rejectionDecision(rejection);
    if (mode === 'auto') {
      // Asked now rather than after the challenge gate: with worker threads this read travels
      // to the store's thread with the gate's throttle check, one round trip instead of two.
      const known = this.store.transactionExists(er.request.transactionId);
      known.catch(() => undefined);
      return gate.enroll(er, (meta) => this.issuer.issue(er, meta, known));
    }
    // In manual mode a wrong challenge decides nothing (the operator does), so there is
    // nothing to guess and nothing to throttle; challenge-or-manual issues on a valid one.
    // An external validator in mode `challenge` is the challenge check: its refusals count.
    const external = gate.validationMode;
    const guessable = mode === 'challenge-or-manual' || external === 'challenge';
    if (guessable && (await gate.locked(er.ctx))) return rejectionDecision(throttled());
    // External validation first (a new transaction only): a refusal fails, an allow goes on
    // (to the queue in manual mode); in mode `challenge` it stands for a valid challenge.
    const refused = await gate.validate(er);
    if (refused) return rejectionDecision(refused);
    const c =
      external === 'challenge' ? ({ kind: 'external' } as const) : gate.classify(er.csr.challengePassword);
    // A request that will wait in the queue (not one that challenge-or-manual issues at once)
    // must fit the queue's limits — checked before a one-time challenge is redeemed, so a
    // refused request never spends it.
    const issuesAtOnce =
      mode === 'challenge-or-manual' &&
      (c.kind === 'static' || c.kind === 'one-time' || c.kind === 'external');
    if (!issuesAtOnce) {
      const limited = await this.pendingLimits.checkNewPending(er.ctx);
      if (isPendingOverloaded(limited))
        return {
          status: 'UNAVAILABLE',
          text: QUEUE_FULL_TEXT,
          retryAfterSeconds: limited.retryAfterSeconds,
          limit: 'pending-queue',
        };
      if (limited) return limited;
    }
    let verdict: ChallengeVerdict;
    switch (c.kind) {
      case 'absent':
        verdict = 'absent';
        break;
      case 'invalid':
      case 'expired':
        verdict = 'invalid';
        break;
      case 'one-time': {
        const r = await gate.redeem(er, c);
        if (r) return rejectionDecision(r);
        verdict = 'valid';
        break;
      }
      default:
        verdict = 'valid';
    }
    const kind: JsonObject =
      c.kind === 'one-time' || c.kind === 'static' || c.kind === 'external' ? { challengeKind: c.kind } : {};
    if (mode === 'challenge-or-manual' && verdict === 'valid')
      return this.issuer.issue(er, { challenge: c.kind });
    const begin = await this.store.beginTransaction({
      transactionId: er.request.transactionId,
      signerKeyHash: er.signerKeyHash,
      messageType: er.request.messageType,
      state: 'pending',
      csr: er.csr.der,
      subject: nameText(er.csr.subjectRaw),
      requester: er.ctx.remoteAddress ?? null,
      expiresAt: new Date(this.now().getTime() + this.approval.pendingTtlSeconds * 1000),
      meta: Object.assign(pendingMeta(er, verdict), kind),
      ca: this.o.caName,
      profile: this.o.profileName,
    });
    if (!begin.created) return this.continueExisting(begin.existing, er);
    this.o.logger?.warn(
      { transactionId: er.request.transactionId, subject: begin.record.subject },
      'certificate request waits for operator approval',
    );
    return {
      status: 'PENDING',
      retryAfterSeconds: this.retryAfter.current(),
      ...(guessable && verdict === 'invalid' ? { challengeFailure: true } : {}),
    };
  }

  private pending(): Decision {
    return { status: 'PENDING', retryAfterSeconds: this.retryAfter.current() };
  }

  /**
   * A message for a transaction we already hold (PKCSReq resend or CertPoll): same key and the
   * same CSR (DER) only; expired → FAILURE; pending → PENDING; otherwise the issuer answers
   * (issues the STORED request once after approval, replays an issued certificate, or reports
   * the rejection). An approved request not collected within the pending TTL of its approval
   * expires (recorded as failed with UNCOLLECTED_TEXT).
   */
  private async continueExisting(tx: TransactionRecord, er: EnrollmentRequest): Promise<Decision> {
    if (heldElsewhere(tx, this.o)) return failure(FailInfo.badRequest, OTHER_PROFILE_TEXT);
    if (tx.signerKeyHash !== er.signerKeyHash) {
      return failure(FailInfo.badRequest, 'this transactionID belongs to a request signed by another key');
    }
    if (tx.csr !== null && !tx.csr.equals(er.csr.der)) {
      this.o.logger?.warn(
        { transactionId: tx.transactionId, state: tx.state, remote: er.ctx.remoteAddress },
        'a request under an existing transactionID carries another CSR than the stored one; refused',
      );
      return failure(FailInfo.badRequest, CSR_CHANGED_TEXT);
    }
    if (tx.state === 'pending') {
      if (tx.expiresAt && tx.expiresAt.getTime() <= this.now().getTime()) {
        await this.store.expirePending(this.now());
        return failure(FailInfo.badRequest, 'the request expired before an operator approved it');
      }
      this.pollNotes.note(tx.transactionId);
      return this.pending();
    }
    if (tx.state === 'expired')
      return failure(FailInfo.badRequest, 'the request expired before an operator approved it');
    if (tx.state === 'rejected') {
      return failure(FailInfo.badRequest, `the request was rejected${tx.failText ? `: ${tx.failText}` : ''}`);
    }
    if (this.uncollected(tx)) {
      await this.store.fail(tx.transactionId, 'failed', FailInfo.badRequest, UNCOLLECTED_TEXT);
      return failure(FailInfo.badRequest, UNCOLLECTED_TEXT);
    }
    // Issue what was stored (and approved), never what this message carries.
    const stored = tx.csr !== null ? parseCsr(tx.csr) : er.csr;
    const d = await this.issuer.issue(
      Object.assign({}, er, {
        csr: stored,
        request: Object.assign({}, er.request, { transactionId: tx.transactionId }),
      }),
    );
    if (d.status === 'PENDING') return this.pending();
    return d;
  }

  /**
   * An operator-approved request (it went through the queue: it has an expiry) whose device did
   * not collect it within the pending TTL of the approval (`updatedAt`).
   */
  private uncollected(tx: TransactionRecord): boolean {
    return (
      tx.state === 'approved' &&
      tx.expiresAt !== null &&
      tx.updatedAt.getTime() + this.approval.pendingTtlSeconds * 1000 <= this.now().getTime()
    );
  }

  /**
   * The answer to a poll that needs no decryption: a CertPoll, or a resent initial PKCSReq
   * (manual modes), for a transaction that is still pending and was opened by the key that
   * signed this message. Called after the signature and the signed attributes (transactionID,
   * senderNonce, messageType) were verified and BEFORE the envelope is opened, so a device
   * polling a pending request costs one store read and the CertRep signature, no RSA
   * decryption (the last-poll time is noted off the reply path: `PollNotes`). Anything else — unknown transaction, another signer key, not pending, expired,
   * a renewal — is undefined: the normal path decides (and opens the envelope).
   *
   * What this skips is the comparison of the message's content (the CSR, or the CertPoll's
   * subject) with the stored request: a changed CSR under a pending transactionID is answered
   * PENDING instead of FAILURE, and refused once the request is decided, when the normal path
   * runs again (only the stored CSR is ever issued). The PENDING answer tells the signer
   * nothing it did not send (its transactionID and nonce), and only the key holding the
   * transaction gets it; it does not depend on the envelope, so it is no decryption oracle.
   */
  async pendingPoll(req: PkiRequest): Promise<Decision | undefined> {
    if (req.failure) return undefined;
    if (req.messageType === MessageType.PKCSReq) {
      // In auto mode nothing waits; a PKCSReq signed by one of our certificates is a renewal.
      if (this.approval.mode === 'auto') return undefined;
      if (this.renewal.enabled && this.o.cas.issuerOf(req.signerCert)) return undefined;
    } else if (req.messageType !== MessageType.CertPoll) {
      return undefined;
    }
    const tx = await this.store.getTransaction(req.transactionId);
    if (!tx || tx.state !== 'pending' || tx.csr === null) return undefined;
    if (tx.signerKeyHash !== spkiHash(req.signerCert.spki)) return undefined;
    // Opened at another CA or profile: the normal path refuses it (OTHER_PROFILE_TEXT).
    if (heldElsewhere(tx, this.o)) return undefined;
    if (tx.expiresAt && tx.expiresAt.getTime() <= this.now().getTime()) return undefined;
    // The console shows when the device last asked (migration 5): coalesced, not awaited.
    this.pollNotes.note(tx.transactionId);
    // Nothing above waited for I/O, so without a yield each poll would run from its bytes to
    // its signature in one go, interleaving the RSA signature with the HTTP and DER work of the
    // next. One turn of the event loop lets the polls that arrived together be decoded together
    // and then signed together: less CPU per poll under load (docs/benchmarks.md "Polling a
    // pending request"), at most one loop turn of latency.
    await nextTurn();
    return this.pending();
  }

  /** CertPoll: the state of an earlier PKCSReq/RenewalReq, signed by the same key. */
  async certPoll(req: PkiRequest, ctx: RequestContext): Promise<Decision> {
    const { value: ias, cipher } = this.o.open(req, ctx, parseIssuerAndSubject);
    let tx = await this.store.getTransaction(req.transactionId);
    if (!tx && this.o.cas.issuerOf(req.signerCert)) {
      tx = await this.store.getTransaction(renewalTransactionId(req.signerCert.serialHex, req.transactionId));
    }
    if (!tx || !tx.csr) return failure(FailInfo.badRequest, 'no request with this transactionID is known');
    const signerKeyHash = spkiHash(req.signerCert.spki);
    if (tx.signerKeyHash !== signerKeyHash) {
      return failure(FailInfo.badRequest, 'the CertPoll is signed by another key than the original request');
    }
    const csr = parseCsr(tx.csr);
    if (!namesEqual(ias.subjectRaw, csr.subjectRaw)) {
      return failure(FailInfo.badRequest, 'the CertPoll subject does not match the original request');
    }
    return this.continueExisting(tx, { request: req, csr, cipher, signerKeyHash, ctx });
  }

  /** Renewal: authorized by the signer certificate; no challenge, no operator. */
  private async renew(er: EnrollmentRequest): Promise<Decision> {
    const rejection = await runPolicies(this.renewalChain, er);
    if (rejection) return failure(rejection.failInfo, rejection.text);
    const old = er.request.signerCert;
    const d = await this.issuer.issue(
      Object.assign({}, er, {
        request: Object.assign({}, er.request, {
          transactionId: renewalTransactionId(old.serialHex, er.request.transactionId),
        }),
      }),
    );
    if (d.status === 'SUCCESS' && !d.replay && this.renewal.revokeOld) {
      const issuer = this.o.cas.issuerOf(old);
      if (await this.store.revoke(old.serialHex, 4, this.now(), this.o.caName)) {
        if (issuer) await this.crls.regenerate(issuer.cert.fingerprint);
      }
    }
    return d;
  }

  async maintain(): Promise<void> {
    const n = await this.store.expirePending(this.now());
    if (n > 0) this.o.logger?.warn({ expired: n }, 'pending certificate requests expired');
    const stale: string[] = [];
    const PAGE = 1000;
    for (let offset = 0; ; offset += PAGE) {
      const page = await this.store.listTransactions({
        state: 'approved',
        ca: this.o.caName,
        profile: this.o.profileName,
        limit: PAGE,
        offset,
      });
      for (const tx of page.items) if (this.uncollected(tx)) stale.push(tx.transactionId);
      if (page.items.length < PAGE) break;
    }
    let failed = 0;
    for (const id of stale)
      if (await this.store.fail(id, 'failed', FailInfo.badRequest, UNCOLLECTED_TEXT)) failed++;
    if (failed > 0)
      this.o.logger?.warn({ expired: failed }, 'approved certificate requests were not collected');
    // Expired one-time challenges (used or not) are dead weight: their tokens carry the expiry.
    await this.store.pruneSecrets(this.now());
    await this.crls.refreshAll();
    await this.retryAfter.refresh();
  }
}
