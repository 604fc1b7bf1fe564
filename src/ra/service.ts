/**
 * The enrollment service: one method per SCEP operation, one handler per messageType.
 * Transport-free (bytes in, an HTTP answer out), so it runs the same behind fastify, in a
 * worker thread or in a test.
 *
 * The enrollment path (DESIGN.md): decode + verify the pkiMessage → (decoder failure →
 * signed FAILURE) → open the envelope → parse the CSR → policies (proof of possession, key,
 * signer key = CSR key, challenge, CSR) → idempotent issuance → CertRep encrypted to the
 * request's signer with its cipher (single DES answered with 3DES), signed with its digest.
 */
import type { KeyObject } from 'node:crypto';
import type { CertificateAuthority } from '../ca/issuer.js';
import { spkiHash } from '../crypto/keys.js';
import type { Certificate } from '../pkix/certificate.js';
import { parseCsr } from '../pkix/csr.js';
import { nextCaCertResponse } from '../scep/ca-certs.js';
import { formatCapabilities } from '../scep/capabilities.js';
import { encodeCertRep } from '../scep/cert-rep.js';
import { decodePkiRequest, openEnvelopeAs, type PkiRequest } from '../scep/request.js';
import { FailInfo, MessageType, PkiStatus, ScepError, failInfoName, messageTypeName } from '../scep/types.js';
import type { Store } from '../store/index.js';
import { ChallengeGate, ChallengeVerifier } from './challenge.js';
import { resolveEnrollmentConfig, type EnrollmentConfig, type ResolvedEnrollmentConfig } from './config.js';
import { failure, type Decision } from './decision.js';
import { scepIdentity, type ScepIdentity } from './identity.js';
import { TransactionIssuer } from './issuance.js';
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
import type { HttpAnswer, OperationLog, RequestContext, ScepAnswer, ScepService } from './types.js';
import { validationPolicy } from './validation.js';
import { csrChecks, subjectsOf } from './csr-checks.js';

/** The subset of a pino logger the service uses (server-side detail only, never sent to clients). */
export interface ServiceLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Handles one messageType; may throw ScepError('failure') instead of returning a FAILURE. */
export type MessageHandler = (req: PkiRequest, ctx: RequestContext) => Promise<Decision>;

export interface EnrollmentServiceOptions {
  ca: CertificateAuthority;
  /** Certificates above the CA certificate (empty or absent for a root). */
  chain?: readonly Certificate[];
  /** RA mode: this key pair signs CertReps and receives envelopes. */
  ra?: { cert: Certificate; key: KeyObject };
  store: Store;
  config: EnrollmentConfig;
  logger?: ServiceLogger;
  /** Clock (tests). */
  now?: () => Date;
}

/** The staged next CA certificates (CA first, then RA), or undefined when none is staged. */
export type NextCaSource = () => readonly Certificate[] | undefined;

/** Counters for operators and metrics. */
export interface ServiceStats {
  /** Requests accepted although encrypted with single DES (--allow-single-des). */
  singleDesAccepted: number;
  /** Unexpected internal errors (answered with HTTP 500). */
  internalErrors: number;
}

/** GetCACaps keywords for what this service implements, in the order they are sent. */
export const BASE_CAPABILITIES: readonly string[] = [
  'AES',
  'DES3',
  'SHA-1',
  'SHA-256',
  'SHA-512',
  'POSTPKIOperation',
  'SCEPStandard',
];

const TEXT = 'text/plain; charset=utf-8';
const PKI_MESSAGE = 'application/x-pki-message';

export class EnrollmentService implements ScepService {
  readonly identity: ScepIdentity;
  readonly config: ResolvedEnrollmentConfig;
  readonly store: Store;
  readonly stats: ServiceStats = { singleDesAccepted: 0, internalErrors: 0 };
  /**
   * The PKCSReq policy chain, in order; other handlers may reuse its members. The challenge is
   * not one of them: `challenges` checks it after them (a one-time challenge is consumed only
   * by a request that passed everything else).
   */
  readonly pkcsReqPolicies: Policy[];
  /** Static and one-time challenges, throttling (src/ra/challenge.ts). */
  readonly challenges: ChallengeGate;
  private readonly handlers = new Map<number, MessageHandler>();
  private readonly caps: string[] = [...BASE_CAPABILITIES];
  private readonly issuer: TransactionIssuer;
  private readonly logger: ServiceLogger | undefined;
  private readonly ca: CertificateAuthority;
  private nextCa: NextCaSource | undefined;
  private nextCaAnswer: { key: string; answer: HttpAnswer } | undefined;

  constructor(o: EnrollmentServiceOptions) {
    this.ca = o.ca;
    this.config = resolveEnrollmentConfig(o.config);
    this.store = o.store;
    this.logger = o.logger;
    this.identity = scepIdentity({ ca: o.ca, chain: o.chain ?? [], ...(o.ra ? { ra: o.ra } : {}) });
    this.issuer = new TransactionIssuer({
      ca: o.ca,
      store: o.store,
      profile: this.config.profile,
      backdateSeconds: this.config.backdateSeconds,
      now: o.now ?? (() => new Date()),
    });
    this.pkcsReqPolicies = [
      proofOfPossession,
      // Before the key comparison, so an EC request gets the clear badAlg answer.
      keyPolicy({ minRsaBits: this.config.minRsaBits, maxRsaBits: this.config.maxRsaBits }),
      signerKeyIsCsrKey,
      csrPolicy(),
      csrChecks(
        this.config.csrChecks,
        subjectsOf([o.ca.cert, o.ra?.cert, ...(o.chain ?? [])], () => this.nextCa?.()),
      ),
    ];
    const oneTimeKey = this.config.oneTimeChallengeKey;
    const validation = this.config.validation;
    this.challenges = new ChallengeGate({
      verifier: new ChallengeVerifier(this.config.challenges),
      ...(oneTimeKey ? { oneTime: new OneTimeChallenges(Buffer.from(oneTimeKey, 'hex')) } : {}),
      store: o.store,
      ...(o.logger ? { logger: o.logger } : {}),
      now: o.now ?? (() => new Date()),
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
    this.handlers.set(MessageType.PKCSReq, (req, ctx) => this.pkcsReq(req, ctx));
    for (const t of [MessageType.RenewalReq, MessageType.CertPoll, MessageType.GetCert, MessageType.GetCRL]) {
      this.handlers.set(t, async () =>
        failure(FailInfo.badRequest, `${messageTypeName(t)} is not supported by this server yet`),
      );
    }
  }

  /** Installs the handler for a messageType (RenewalReq, CertPoll, GetCert, GetCRL, ...). */
  setHandler(messageType: MessageType, handler: MessageHandler): void {
    this.handlers.set(messageType, handler);
  }

  /** Advertises one more GetCACaps keyword (for an operation a new handler implements). */
  addCapability(keyword: string): void {
    if (!this.caps.includes(keyword)) this.caps.push(keyword);
  }

  /**
   * CA rollover: where the staged next CA certificates come from (src/ca/rollover.ts
   * NextCaWatcher). While it returns certificates, GetCACaps lists `GetNextCACert` and
   * GetNextCACert answers; otherwise neither.
   */
  setNextCaSource(source: NextCaSource): void {
    this.nextCa = source;
    this.nextCaAnswer = undefined;
  }

  capabilities(): readonly string[] {
    const next = this.nextCa?.();
    return next && next.length > 0 ? [...this.caps, 'GetNextCACert'] : this.caps;
  }

  getCaCaps(): HttpAnswer {
    return {
      httpStatus: 200,
      contentType: 'text/plain',
      body: Buffer.from(formatCapabilities(this.capabilities())),
    };
  }

  /**
   * GetNextCACert (RFC 8894 §4.7): the staged certificates (next CA, then next RA) in a
   * degenerate SignedData, wrapped in a SignedData signed with the current CA key (in RA mode
   * too: the RFC names the CA signing key, and it verifies under the CA certificate clients
   * already trust). Undefined while nothing is staged. The signed body is cached per staged set.
   */
  getNextCaCert(_message?: string): HttpAnswer | undefined {
    const next = this.nextCa?.();
    if (!next || next.length === 0) return undefined;
    const key = next.map((c) => c.fingerprint).join(',');
    if (this.nextCaAnswer?.key !== key) {
      const body = nextCaCertResponse(
        next.map((c) => c.der),
        { cert: this.ca.cert, key: this.ca.key },
        'sha256',
      );
      this.nextCaAnswer = {
        key,
        answer: { httpStatus: 200, contentType: 'application/x-x509-next-ca-cert', body },
      };
    }
    return this.nextCaAnswer.answer;
  }

  getCaCert(_message?: string): HttpAnswer {
    return this.identity.caCert;
  }

  async pkiOperation(message: Buffer, ctx: RequestContext): Promise<ScepAnswer> {
    let req: PkiRequest;
    try {
      req = decodePkiRequest(message);
    } catch (e) {
      const text = e instanceof ScepError ? e.message : 'malformed pkiMessage';
      if (!(e instanceof ScepError))
        this.logger?.warn({ err: e }, 'unexpected error while decoding a pkiMessage');
      return httpError(400, text, { outcome: 'rejected', detail: text });
    }
    const log: OperationLog = {
      messageType: messageTypeName(req.messageType),
      transactionId: req.transactionId,
      outcome: 'FAILURE',
    };
    let decision: Decision;
    try {
      if (req.failure) {
        decision = failure(req.failure.failInfo, req.failure.text);
      } else {
        const handler = this.handlers.get(req.messageType);
        decision = handler
          ? await handler(req, ctx)
          : failure(FailInfo.badRequest, `messageType ${req.messageType} is not supported`);
      }
    } catch (e) {
      if (e instanceof ScepError && e.kind === 'failure') {
        decision = failure(e.failInfo ?? FailInfo.badRequest, e.message);
      } else if (e instanceof ScepError) {
        return httpError(400, e.message, { ...log, outcome: 'rejected', detail: e.message });
      } else {
        return this.internalError(e, log);
      }
    }
    try {
      return this.certRep(req, decision, log);
    } catch (e) {
      return this.internalError(e, log);
    }
  }

  /** PKCSReq (initial enrollment). */
  private async pkcsReq(req: PkiRequest, ctx: RequestContext): Promise<Decision> {
    // One answer and the same work for every failure from decryption to the CSR parse: no
    // padding or format oracle (RFC 3218; openEnvelopeAs).
    const { value: csr, cipher } = openEnvelopeAs(req, this.identity.recipients, parseCsr, {
      allowSingleDes: this.config.allowSingleDes,
    });
    if (cipher === 'des') {
      this.stats.singleDesAccepted++;
      this.logger?.warn(
        { transactionId: req.transactionId, remote: ctx.remoteAddress },
        'accepted a single-DES request (--allow-single-des); replying with 3DES',
      );
    }
    const er: EnrollmentRequest = {
      request: req,
      csr,
      cipher,
      signerKeyHash: spkiHash(req.signerCert.spki),
      ctx,
    };
    const rejection = await runPolicies(this.pkcsReqPolicies, er);
    if (rejection) return rejectionDecision(rejection);
    return this.challenges.enroll(er, (meta) => this.issuer.issue(er, meta));
  }

  private certRep(req: PkiRequest, d: Decision, log: OperationLog): ScepAnswer {
    const { signer } = this.identity;
    const common = {
      transactionId: req.transactionId,
      recipientNonce: req.senderNonce,
      signer,
      digest: req.digest,
    };
    if (d.status === 'SUCCESS') {
      try {
        const body = encodeCertRep({
          ...common,
          status: PkiStatus.SUCCESS,
          certificates: d.certificates,
          ...(d.crls ? { crls: d.crls } : {}),
          recipientCert: req.signerCert,
          cipher: d.cipher,
        });
        return {
          httpStatus: 200,
          contentType: PKI_MESSAGE,
          body,
          log: { ...log, outcome: 'SUCCESS', serial: d.serial, ...(d.replay ? { replay: true } : {}) },
        };
      } catch (e) {
        this.logger?.warn(
          { err: e, transactionId: req.transactionId },
          'cannot encrypt the reply to the signer',
        );
        d = failure(FailInfo.badRequest, 'the reply cannot be encrypted to the signer certificate');
      }
    }
    if (d.status === 'PENDING') {
      const body = encodeCertRep({ ...common, status: PkiStatus.PENDING });
      return {
        httpStatus: 200,
        contentType: PKI_MESSAGE,
        body,
        ...(d.retryAfterSeconds ? { headers: { 'retry-after': String(d.retryAfterSeconds) } } : {}),
        log: { ...log, outcome: 'PENDING', ...(d.challengeFailure ? { challengeFailure: true } : {}) },
      };
    }
    const f = d as Extract<Decision, { status: 'FAILURE' }>;
    const body = encodeCertRep({
      ...common,
      status: PkiStatus.FAILURE,
      failInfo: f.failInfo,
      failInfoText: f.text,
    });
    return {
      httpStatus: 200,
      contentType: PKI_MESSAGE,
      body,
      log: {
        ...log,
        outcome: 'FAILURE',
        failInfo: failInfoName(f.failInfo),
        detail: f.text,
        ...(f.challengeFailure ? { challengeFailure: true } : {}),
      },
    };
  }

  private internalError(e: unknown, log: OperationLog): ScepAnswer {
    this.stats.internalErrors++;
    this.logger?.error({ err: e, transactionId: log.transactionId }, 'internal error in PKIOperation');
    return httpError(500, 'internal server error', { ...log, outcome: 'rejected', detail: 'internal error' });
  }
}

function httpError(status: number, text: string, log: OperationLog): ScepAnswer {
  return { httpStatus: status, contentType: TEXT, body: Buffer.from(`${text}\n`), log };
}
