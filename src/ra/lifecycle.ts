/**
 * The certificate lifecycle on top of the enrollment service: manual approval with polling,
 * renewal, GetCert, GetCRL and CRL upkeep. `installLifecycle` replaces the service's PKCSReq
 * handler and installs RenewalReq, CertPoll, GetCert and GetCRL (`setHandler`), advertises
 * `Renewal` when renewal is enabled, and returns the CRL publisher and a timer for pending
 * expiry and CRL refresh.
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
import { openEnvelopeAs, type PkiRequest } from '../scep/request.js';
import { FailInfo, MessageType } from '../scep/types.js';
import type { JsonObject, Store, TransactionRecord } from '../store/index.js';
import {
  pendingMeta,
  resolveApprovalConfig,
  type ApprovalConfig,
  type ChallengeVerdict,
} from './approval.js';
import { THROTTLED_TEXT } from './challenge.js';
import { failure, type Decision } from './decision.js';
import { TransactionIssuer } from './issuance.js';
import { getCert, getCrl } from './lookup.js';
import {
  csrPolicy,
  keyPolicy,
  proofOfPossession,
  reject,
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
import type { EnrollmentService, ServiceLogger } from './service.js';
import type { RequestContext } from './types.js';
import { unlessKnownTransaction, validationPolicy } from './validation.js';

export interface LifecycleOptions {
  approval?: ApprovalConfig;
  renewal?: RenewalConfig;
  /** CRL validity in seconds (default 7 days). */
  crlValiditySeconds?: number;
  /** Every CA this server has had (current first); certificates of retired CAs stay usable. */
  cas: CaSet;
  logger?: ServiceLogger;
  now?: () => Date;
}

/** What `installLifecycle` hands back to the server. */
export interface Lifecycle {
  crls: CrlPublisher;
  /** Expires overdue pending requests, prunes expired one-time challenges, refreshes stale CRLs. */
  maintain(): Promise<void>;
  /** Runs `maintain` every `intervalMs` (unref'd); returns a stop function. */
  startMaintenance(intervalMs?: number): () => void;
}

/** Wires the lifecycle handlers into `service`. */
export function installLifecycle(service: EnrollmentService, o: LifecycleOptions): Lifecycle {
  const h = new LifecycleHandlers(service, o);
  service.setHandler(MessageType.PKCSReq, (req, ctx) => h.pkcsReq(req, ctx));
  service.setHandler(MessageType.RenewalReq, (req, ctx) => h.renewalReq(req, ctx));
  service.setHandler(MessageType.CertPoll, (req, ctx) => h.certPoll(req, ctx));
  service.setHandler(MessageType.GetCert, async (req, ctx) => {
    const { value, cipher } = h.open(req, ctx, parseIssuerAndSerial);
    return getCert(h.lookup, value, cipher);
  });
  service.setHandler(MessageType.GetCRL, async (req, ctx) => {
    const { value, cipher } = h.open(req, ctx, parseIssuerAndSerial);
    return getCrl(h.lookup, value, cipher);
  });
  if (h.renewal.enabled) service.addCapability('Renewal');
  return {
    crls: h.crls,
    maintain: () => h.maintain(),
    startMaintenance(intervalMs = 60_000) {
      let busy = false;
      const t = setInterval(() => {
        if (busy) return;
        busy = true;
        h.maintain()
          .catch((e: unknown) => o.logger?.warn({ err: e }, 'lifecycle maintenance failed'))
          .finally(() => (busy = false));
      }, intervalMs);
      t.unref();
      return () => clearInterval(t);
    },
  };
}

class LifecycleHandlers {
  readonly approval;
  readonly renewal;
  readonly crls: CrlPublisher;
  readonly lookup;
  private readonly store: Store;
  private readonly now: () => Date;
  private readonly issuer: TransactionIssuer;
  /** Initial enrollment without the challenge (manual modes: the operator decides). */
  private readonly manualPolicies: Policy[];
  private readonly renewalChain: Policy[];

  constructor(
    private readonly service: EnrollmentService,
    private readonly o: LifecycleOptions,
  ) {
    this.store = service.store;
    this.now = o.now ?? (() => new Date());
    this.approval = resolveApprovalConfig(o.approval);
    this.renewal = resolveRenewalConfig(o.renewal);
    this.crls = new CrlPublisher({
      store: this.store,
      cas: o.cas,
      now: this.now,
      ...(o.crlValiditySeconds !== undefined ? { validitySeconds: o.crlValiditySeconds } : {}),
    });
    this.lookup = { store: this.store, cas: o.cas, crls: this.crls };
    const cfg = service.config;
    this.issuer = new TransactionIssuer({
      ca: o.cas.current,
      store: this.store,
      profile: cfg.profile,
      backdateSeconds: cfg.backdateSeconds,
      now: this.now,
    });
    const key = keyPolicy({ minRsaBits: cfg.minRsaBits, maxRsaBits: cfg.maxRsaBits });
    this.manualPolicies = [proofOfPossession, key, signerKeyIsCsrKey, csrPolicy()];
    this.renewalChain = [
      proofOfPossession,
      key,
      ...renewalPolicies({ config: this.renewal, store: this.store, cas: o.cas, now: this.now }),
      csrPolicy(),
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

  /**
   * Decrypts the pkcsPKIEnvelope and parses its messageData with `parse`; every failure after
   * the recipient/algorithm decisions is one uniform badMessageCheck (see openEnvelopeAs).
   * Counts accepted single-DES requests.
   */
  open<T>(
    req: PkiRequest,
    ctx: RequestContext,
    parse: (content: Buffer) => T,
  ): { value: T; cipher: CipherName } {
    const opened = openEnvelopeAs(req, this.service.identity.recipients, parse, {
      allowSingleDes: this.service.config.allowSingleDes,
    });
    if (opened.cipher === 'des') {
      this.service.stats.singleDesAccepted++;
      this.o.logger?.warn(
        { transactionId: req.transactionId, remote: ctx.remoteAddress },
        'accepted a single-DES request (--allow-single-des); replying with 3DES',
      );
    }
    return opened;
  }

  private openCsr(req: PkiRequest, ctx: RequestContext): EnrollmentRequest {
    const { value: csr, cipher } = this.open(req, ctx, parseCsr);
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
    const gate = this.service.challenges;
    if (mode === 'auto') {
      const rejection = await runPolicies(this.service.pkcsReqPolicies, er);
      if (rejection) return rejectionDecision(rejection);
      return gate.enroll(er, (meta) => this.issuer.issue(er, meta));
    }
    const rejection = await runPolicies(this.manualPolicies, er);
    if (rejection) return rejectionDecision(rejection);

    const existing = await this.store.getTransaction(er.request.transactionId);
    if (existing) return this.continueExisting(existing, er);
    // In manual mode a wrong challenge decides nothing (the operator does), so there is
    // nothing to guess and nothing to throttle; challenge-or-manual issues on a valid one.
    // An external validator in mode `challenge` is the challenge check: its refusals count.
    const external = gate.validationMode;
    const guessable = mode === 'challenge-or-manual' || external === 'challenge';
    if (guessable && er.ctx.challengeThrottled)
      return rejectionDecision(reject(FailInfo.badRequest, THROTTLED_TEXT));
    // External validation first (a new transaction only): a refusal fails, an allow goes on
    // (to the queue in manual mode); in mode `challenge` it stands for a valid challenge.
    const refused = await gate.validate(er);
    if (refused) return rejectionDecision(refused);
    const c =
      external === 'challenge' ? ({ kind: 'external' } as const) : gate.classify(er.csr.challengePassword);
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
      meta: { ...pendingMeta(er, verdict), ...kind },
    });
    if (!begin.created) return this.continueExisting(begin.existing, er);
    this.o.logger?.warn(
      { transactionId: er.request.transactionId, subject: begin.record.subject },
      'certificate request waits for operator approval',
    );
    return {
      status: 'PENDING',
      retryAfterSeconds: this.approval.retryAfterSeconds,
      ...(guessable && verdict === 'invalid' ? { challengeFailure: true } : {}),
    };
  }

  private pending(): Decision {
    return { status: 'PENDING', retryAfterSeconds: this.approval.retryAfterSeconds };
  }

  /**
   * A message for a transaction we already hold (PKCSReq resend or CertPoll): same key only;
   * expired → FAILURE; pending → PENDING; otherwise the issuer answers (issues once after
   * approval, replays an issued certificate, or reports the rejection).
   */
  private async continueExisting(tx: TransactionRecord, er: EnrollmentRequest): Promise<Decision> {
    if (tx.signerKeyHash !== er.signerKeyHash) {
      return failure(FailInfo.badRequest, 'this transactionID belongs to a request signed by another key');
    }
    if (tx.state === 'pending') {
      if (tx.expiresAt && tx.expiresAt.getTime() <= this.now().getTime()) {
        await this.store.expirePending(this.now());
        return failure(FailInfo.badRequest, 'the request expired before an operator approved it');
      }
      return this.pending();
    }
    if (tx.state === 'expired')
      return failure(FailInfo.badRequest, 'the request expired before an operator approved it');
    if (tx.state === 'rejected') {
      return failure(FailInfo.badRequest, `the request was rejected${tx.failText ? `: ${tx.failText}` : ''}`);
    }
    const d = await this.issuer.issue({ ...er, request: { ...er.request, transactionId: tx.transactionId } });
    if (d.status === 'PENDING') return this.pending();
    return d;
  }

  /** CertPoll: the state of an earlier PKCSReq/RenewalReq, signed by the same key. */
  async certPoll(req: PkiRequest, ctx: RequestContext): Promise<Decision> {
    const { value: ias, cipher } = this.open(req, ctx, parseIssuerAndSubject);
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
    const d = await this.issuer.issue({
      ...er,
      request: {
        ...er.request,
        transactionId: renewalTransactionId(old.serialHex, er.request.transactionId),
      },
    });
    if (d.status === 'SUCCESS' && !d.replay && this.renewal.revokeOld) {
      const issuer = this.o.cas.issuerOf(old);
      if (await this.store.revoke(old.serialHex, 4, this.now())) {
        if (issuer) await this.crls.regenerate(issuer.cert.fingerprint);
      }
    }
    return d;
  }

  async maintain(): Promise<void> {
    const n = await this.store.expirePending(this.now());
    if (n > 0) this.o.logger?.warn({ expired: n }, 'pending certificate requests expired');
    // Expired one-time challenges (used or not) are dead weight: their tokens carry the expiry.
    await this.store.pruneSecrets(this.now());
    await this.crls.refreshAll();
  }
}
