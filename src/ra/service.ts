/**
 * The enrollment service: one method per SCEP operation, one handler per messageType.
 * Transport-free (bytes in, an HTTP answer out), so it runs the same behind fastify, in a
 * worker thread or in a test. Built by `composeEnrollment` (src/server/compose.ts).
 *
 * The enrollment path: decode + verify the pkiMessage → (decoder failure → signed FAILURE) →
 * (a poll of a pending transaction by its own key → PENDING, no decryption: `pendingPoll` in
 * src/ra/lifecycle.ts) → open the envelope (`open`, here) → the handler of the messageType (src/ra/lifecycle.ts:
 * parse the CSR → policies (proof of possession, key, signer key = CSR key or renewal checks,
 * CSR) → challenge or operator → idempotent issuance) → CertRep encrypted to the request's
 * signer with its cipher (single DES answered with 3DES), signed with its digest.
 */
import { CaSet } from '../ca/authorities.js';
import type { CertificateAuthority } from '../ca/issuer.js';
import { parseCertificate, verifyCertificateSignature, type Certificate } from '../pkix/certificate.js';
import { nextCaCertResponse } from '../scep/ca-certs.js';
import { formatCapabilities } from '../scep/capabilities.js';
import { encodeCertRep } from '../scep/cert-rep.js';
import { decodePkiRequest, openEnvelopeAs, type PkiRequest } from '../scep/request.js';
import { FailInfo, MessageType, PkiStatus, ScepError, failInfoName, messageTypeName } from '../scep/types.js';
import { DEFAULT_CA, DEFAULT_PROFILE, type Store } from '../store/index.js';
import { resolveEnrollmentConfig, type EnrollmentConfig, type ResolvedEnrollmentConfig } from './config.js';
import { auditEntry, auditText, DEVICE_ACTOR } from './audit.js';
import { failure, type Decision } from './decision.js';
import { subjectsOf } from './csr-checks.js';
import { scepIdentity, type ScepIdentity } from './identity.js';
import {
  EnrollmentHandlers,
  type EnvelopeOpener,
  type Lifecycle,
  type LifecycleOptions,
} from './lifecycle.js';
import type {
  ChallengeLock,
  HttpAnswer,
  OperationLog,
  RequestContext,
  ScepAnswer,
  ScepService,
  ServiceLogger,
} from './types.js';
import type { PrivateKeyLike } from '../crypto/private-key.js';
import { KeyUnavailableError } from '../crypto/private-key.js';

export type { ServiceLogger } from './types.js';

/** Handles one messageType; may throw ScepError('failure') instead of returning a FAILURE. */
type MessageHandler = (req: PkiRequest, ctx: RequestContext) => Promise<Decision>;

export interface EnrollmentServiceOptions {
  ca: CertificateAuthority;
  /**
   * Name of the CA (default `default`: the data directory's default CA). Recorded with every
   * transaction and certificate; serials, GetCert and revocations are per CA name.
   */
  caName?: string;
  /** Name of the enrollment profile (default `default`), recorded with every transaction and certificate. */
  profile?: string;
  /** Certificates above the CA certificate (empty or absent for a root). */
  chain?: readonly Certificate[];
  /** RA mode: this key pair signs CertReps and receives envelopes. */
  ra?: { cert: Certificate; key: PrivateKeyLike };
  /** Retired CAs whose certificates stay usable (renewal, GetCert, GetCRL); default none. */
  previousCas?: readonly CertificateAuthority[];
  store: Store;
  config: EnrollmentConfig;
  /** Approval mode, renewal policy, CRL validity. */
  lifecycle?: LifecycleOptions;
  /** CA rollover: the staged next CA certificates (src/ca/rollover.ts NextCaWatcher). */
  nextCa?: NextCaSource;
  logger?: ServiceLogger;
  /** The challenge-failure throttle's lock check (src/ra/throttle.ts); absent: not throttled. */
  challengeLock?: ChallengeLock;
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
  /** pkcsPKIEnvelopes opened (each one an RSA private-key operation). */
  envelopesOpened: number;
}

/**
 * GetCACaps keywords for what this service implements, in the order they are sent. `SHA-384`
 * (not an RFC 8894 keyword, but a digest we verify) is there for strongSwan `pki --scep` before
 * 5.9.11, which checks AES against the bit of `SHA-384` (docs/interop.md).
 */
export const BASE_CAPABILITIES: readonly string[] = [
  'AES',
  'DES3',
  'SHA-1',
  'SHA-256',
  'SHA-384',
  'SHA-512',
  'POSTPKIOperation',
  'SCEPStandard',
];

/**
 * Message types whose SUCCESS CertRep carries the issuing CA certificate (and the chain above
 * it) after the issued certificate, as NDES does: Cisco IOS looks for the CA there. GetCert
 * answers just the requested certificate.
 */
const REPLY_WITH_ISSUER: ReadonlySet<number> = new Set([
  MessageType.PKCSReq,
  MessageType.RenewalReq,
  MessageType.CertPoll,
]);

/** Message types whose FAILURE answers are audited (`enroll.refused`). */
const AUDITED_REFUSALS: ReadonlySet<number> = new Set([
  MessageType.PKCSReq,
  MessageType.RenewalReq,
  MessageType.CertPoll,
]);

const TEXT = 'text/plain; charset=utf-8';
const PKI_MESSAGE = 'application/x-pki-message';

export class EnrollmentService implements ScepService {
  readonly identity: ScepIdentity;
  readonly config: ResolvedEnrollmentConfig;
  readonly store: Store;
  /** Name of the CA this service issues from. */
  readonly caName: string;
  /** Name of the enrollment profile this service answers for. */
  readonly profile: string;
  readonly stats: ServiceStats = { singleDesAccepted: 0, internalErrors: 0, envelopesOpened: 0 };
  /** CRLs and periodic upkeep (pending expiry, one-time challenge pruning, CRL refresh). */
  readonly lifecycle: Lifecycle;
  private readonly handlers = new Map<number, MessageHandler>();
  private readonly enrollment: EnrollmentHandlers;
  private readonly caps: string[] = [...BASE_CAPABILITIES];
  private readonly logger: ServiceLogger | undefined;
  private readonly ca: CertificateAuthority;
  /** The current CA and the retired ones (the issuer of a replayed certificate may be retired). */
  private readonly cas: CaSet;
  /** Certificates above the current CA certificate (empty for a root). */
  private readonly chain: readonly Certificate[];
  private readonly nextCa: NextCaSource | undefined;
  private nextCaAnswer: { key: string; answer: HttpAnswer } | undefined;
  /**
   * The challengePassword of an opened request signed by a non-RSA (EC) key: its SUCCESS
   * reply goes to a PasswordRecipientInfo keyed by it (RFC 8894 §3.1). Held only for the
   * lifetime of the request object, never logged or stored.
   */
  private readonly replyPasswords = new WeakMap<PkiRequest, Buffer>();
  private readonly capsAnswers: { plain?: HttpAnswer; staged?: HttpAnswer } = {};

  constructor(o: EnrollmentServiceOptions) {
    this.ca = o.ca;
    this.config = resolveEnrollmentConfig(o.config);
    this.store = o.store;
    this.logger = o.logger;
    this.nextCa = o.nextCa;
    this.identity = scepIdentity({ ca: o.ca, chain: o.chain ?? [], ...(o.ra ? { ra: o.ra } : {}) });
    this.cas = new CaSet(o.ca, o.previousCas ?? []);
    this.chain = o.chain ?? [];
    this.caName = o.caName ?? DEFAULT_CA;
    this.profile = o.profile ?? DEFAULT_PROFILE;
    const h = new EnrollmentHandlers(
      Object.assign({}, o.lifecycle, {
        config: this.config,
        store: o.store,
        caName: this.caName,
        profileName: this.profile,
        cas: this.cas,
        open: this.open,
        reservedSubjects: subjectsOf(
          [o.ca.cert, o.ra?.cert, ...(o.chain ?? []), ...(o.previousCas ?? []).map((c) => c.cert)],
          () => this.nextCa?.(),
        ),
        ...(o.logger ? { logger: o.logger } : {}),
        ...(o.challengeLock ? { challengeLock: o.challengeLock } : {}),
        now: o.now ?? (() => new Date()),
      }),
    );
    this.lifecycle = h;
    this.enrollment = h;
    this.handlers.set(MessageType.PKCSReq, (req, ctx) => h.pkcsReq(req, ctx));
    this.handlers.set(MessageType.RenewalReq, (req, ctx) => h.renewalReq(req, ctx));
    this.handlers.set(MessageType.CertPoll, (req, ctx) => h.certPoll(req, ctx));
    this.handlers.set(MessageType.GetCert, (req, ctx) => h.getCert(req, ctx));
    this.handlers.set(MessageType.GetCRL, (req, ctx) => h.getCrl(req, ctx));
    if (h.renewal.enabled) this.caps.push('Renewal');
  }

  /**
   * Decrypts the pkcsPKIEnvelope and parses its messageData with `parse`: one answer and the
   * same work for every failure from decryption to the parse, no padding or format oracle
   * (RFC 3218; openEnvelopeAs). Counts accepted single-DES requests.
   */
  private readonly open: EnvelopeOpener = (req, ctx, parse) => {
    this.stats.envelopesOpened++;
    const opened = openEnvelopeAs(req, this.identity.recipients, parse, {
      allowSingleDes: this.config.allowSingleDes,
    });
    const challenge = challengeOf(opened.value);
    if (challenge !== undefined && req.signerCert.publicKey().asymmetricKeyType !== 'rsa') {
      this.replyPasswords.set(req, Buffer.from(challenge, 'utf8'));
    }
    if (opened.cipher === 'des') {
      this.stats.singleDesAccepted++;
      this.logger?.warn(
        { transactionId: req.transactionId, remote: ctx.remoteAddress },
        'accepted a single-DES request (--allow-single-des); replying with 3DES',
      );
    }
    return opened;
  };

  capabilities(): readonly string[] {
    const next = this.nextCa?.();
    const all = next && next.length > 0 ? [...this.caps, 'GetNextCACert'] : this.caps;
    const only = this.config.capabilities;
    return only ? all.filter((c) => only.includes(c)) : all;
  }

  /** GetCACaps, built once per capability set (with or without GetNextCACert). */
  getCaCaps(): HttpAnswer {
    const staged = (this.nextCa?.()?.length ?? 0) > 0;
    const cached = staged ? this.capsAnswers.staged : this.capsAnswers.plain;
    if (cached) return cached;
    const a: HttpAnswer = {
      httpStatus: 200,
      contentType: 'text/plain',
      body: Buffer.from(formatCapabilities(this.capabilities())),
    };
    if (staged) this.capsAnswers.staged = a;
    else this.capsAnswers.plain = a;
    return a;
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
        // A poll of a pending transaction is answered before (and without) decryption.
        decision = handler
          ? ((await this.enrollment.pendingPoll(req)) ?? (await handler(req, ctx)))
          : failure(FailInfo.badRequest, `messageType ${req.messageType} is not supported`);
      }
    } catch (e) {
      if (e instanceof ScepError && e.kind === 'failure') {
        decision = failure(e.failInfo ?? FailInfo.badRequest, e.message);
      } else if (e instanceof ScepError) {
        return httpError(400, e.message, logWith(log, { outcome: 'rejected', detail: e.message }));
      } else if (e instanceof KeyUnavailableError) {
        return this.keyUnavailable(e, log);
      } else {
        return this.internalError(e, log);
      }
    }
    let answer: ScepAnswer;
    try {
      answer = this.certRep(req, decision, log);
    } catch (e) {
      if (e instanceof KeyUnavailableError) return this.keyUnavailable(e, log);
      return this.internalError(e, log);
    }
    await this.auditRefusal(req, answer.log, ctx);
    return answer;
  }

  /**
   * A signed FAILURE to an enrollment (PKCSReq, RenewalReq, CertPoll) goes to the audit trail
   * with its reason, failInfo, transactionID and source (issuance is recorded by the store's
   * `recordIssued`). A store fault here is logged; the device still gets its answer.
   */
  private async auditRefusal(
    req: PkiRequest,
    log: OperationLog | undefined,
    ctx: RequestContext,
  ): Promise<void> {
    if (log?.outcome !== 'FAILURE' || !AUDITED_REFUSALS.has(req.messageType)) return;
    try {
      await this.store.appendAudit([
        auditEntry(DEVICE_ACTOR, 'enroll.refused', req.transactionId, {
          messageType: log.messageType,
          failInfo: log.failInfo,
          reason: log.detail !== undefined ? auditText(log.detail) : undefined,
          source: ctx.remoteAddress,
          ca: this.caName,
          profile: this.profile,
        }),
      ]);
    } catch (e) {
      this.logger?.error({ err: e, transactionId: req.transactionId }, 'cannot append to the audit trail');
    }
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
          status: PkiStatus.SUCCESS,
          ...common,
          certificates: this.replyCertificates(req, d.certificates, d.issued),
          ...(d.crls ? { crls: d.crls } : {}),
          recipientCert: req.signerCert,
          ...this.replyRecipient(req),
          cipher: d.cipher,
        });
        return {
          httpStatus: 200,
          contentType: PKI_MESSAGE,
          body,
          log: logWith(log, { outcome: 'SUCCESS', serial: d.serial, ...(d.replay ? { replay: true } : {}) }),
        };
      } catch (e) {
        if (e instanceof KeyUnavailableError) throw e;
        this.logger?.warn(
          { err: e, transactionId: req.transactionId },
          'cannot encrypt the reply to the signer',
        );
        d = failure(FailInfo.badRequest, 'the reply cannot be encrypted to the signer certificate');
      }
    }
    if (d.status === 'UNAVAILABLE') {
      return httpError(503, d.text, logWith(log, { outcome: 'overloaded', detail: d.text, limit: d.limit }), {
        'retry-after': String(d.retryAfterSeconds),
      });
    }
    if (d.status === 'PENDING') {
      const body = encodeCertRep({ status: PkiStatus.PENDING, ...common });
      return {
        httpStatus: 200,
        contentType: PKI_MESSAGE,
        body,
        ...(d.retryAfterSeconds ? { headers: { 'retry-after': String(d.retryAfterSeconds) } } : {}),
        log: logWith(log, { outcome: 'PENDING', ...(d.challengeFailure ? { challengeFailure: true } : {}) }),
      };
    }
    const f = d as Extract<Decision, { status: 'FAILURE' }>;
    const body = encodeCertRep({
      status: PkiStatus.FAILURE,
      ...common,
      failInfo: f.failInfo,
      failInfoText: f.text,
    });
    return {
      httpStatus: 200,
      contentType: PKI_MESSAGE,
      body,
      log: logWith(log, {
        outcome: 'FAILURE',
        failInfo: failInfoName(f.failInfo),
        detail: f.text,
        ...(f.challengeFailure ? { challengeFailure: true } : {}),
        ...(f.limit ? { limit: f.limit } : {}),
      }),
    };
  }

  /**
   * Who an EC signer's SUCCESS reply is encrypted to: the request's challengePassword when it
   * sent one (PasswordRecipientInfo, RFC 8894 §3.1); otherwise its certificate by ECDH key
   * agreement (KeyAgreeRecipientInfo, RFC 5753) — the scepter extension a client asks for by
   * signing with an EC key and sending no challenge (renewal, CertPoll, GetCert, GetCRL).
   * RSA signers always get key transport.
   */
  private replyRecipient(req: PkiRequest): { recipientPassword?: Buffer } {
    const password = this.replyPasswords.get(req);
    return password ? { recipientPassword: password } : {};
  }

  /**
   * The certificates of a SUCCESS CertRep: for PKCSReq, RenewalReq and CertPoll the issued
   * certificate first, then the CA that issued it and the chain above that CA (never the RA);
   * otherwise (GetCert, GetCRL) `certs` as they are. Clients pick the certificate for their key.
   * `parsed`: the issued certificate already parsed (Decision.issued), if at hand.
   */
  private replyCertificates(req: PkiRequest, certs: Buffer[], parsed?: Certificate): Buffer[] {
    if (!REPLY_WITH_ISSUER.has(req.messageType) || certs.length !== 1) return certs;
    const der = certs[0]!;
    let issued: Certificate;
    try {
      issued = parsed?.der.equals(der) ? parsed : parseCertificate(der);
    } catch {
      return certs;
    }
    const ca = this.cas.issuerOfOwn(issued);
    if (!ca) return certs;
    // The chain above the current CA; a retired CA gets it when the same parent issued it.
    const parent = this.chain[0];
    const above =
      ca === this.cas.current ||
      (parent !== undefined &&
        !ca.cert.der.equals(parent.der) &&
        verifyCertificateSignature(ca.cert, parent.publicKey()))
        ? this.chain.map((c) => c.der)
        : [];
    return [der, ca.cert.der, ...above];
  }

  /**
   * The CA or RA key is on a token that cannot be reached (src/crypto/pkcs11-key.ts): 503, so
   * the client retries; nothing was issued without the key. The next request reconnects.
   */
  private keyUnavailable(e: KeyUnavailableError, log: OperationLog): ScepAnswer {
    this.logger?.error({ err: e, transactionId: log.transactionId }, 'the signing key is unavailable');
    const text = 'the CA key is unavailable; try again later';
    return httpError(503, text, logWith(log, { outcome: 'rejected', detail: 'key unavailable' }), {
      'retry-after': '10',
    });
  }

  private internalError(e: unknown, log: OperationLog): ScepAnswer {
    this.stats.internalErrors++;
    this.logger?.error({ err: e, transactionId: log.transactionId }, 'internal error in PKIOperation');
    return httpError(
      500,
      'internal server error',
      logWith(log, { outcome: 'rejected', detail: 'internal error' }),
    );
  }
}

function httpError(
  status: number,
  text: string,
  log: OperationLog,
  headers?: Record<string, string>,
): ScepAnswer {
  const a: ScepAnswer = { httpStatus: status, contentType: TEXT, body: Buffer.from(`${text}\n`), log };
  if (headers) a.headers = headers;
  return a;
}

/**
 * `log` with `more` over it. Object.assign, not `{ ...log, ...more }`: Node 20 gives a literal
 * that starts with a spread a new hidden class on every call (eslint.config.js).
 */
function logWith(
  log: OperationLog,
  more: Partial<OperationLog> & Pick<OperationLog, 'outcome'>,
): OperationLog {
  return Object.assign({}, log, more);
}

/** The challengePassword of an opened messageData, when it is a CSR that carries one. */
function challengeOf(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || !('challengePassword' in value)) return undefined;
  const c = (value as { challengePassword: unknown }).challengePassword;
  return typeof c === 'string' && c.length > 0 ? c : undefined;
}
