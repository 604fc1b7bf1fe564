/**
 * The contract between the enrollment service (`src/ra/`) and whatever carries its bytes
 * (the fastify server, in-process or in a worker thread). Plain data only: no HTTP framework types,
 * so the service can run anywhere and its answers can cross a `postMessage`.
 */

/** A complete HTTP answer: status, content type and body. */
export interface HttpAnswer {
  httpStatus: number;
  contentType: string;
  body: Buffer;
  /** Extra response headers (e.g. `retry-after` with a PENDING CertRep). */
  headers?: Record<string, string>;
}

/**
 * What happened to one request, for the single structured log line the transport writes.
 * Never carries the challenge or key material; `detail` is a one-line, client-safe reason.
 */
export interface OperationLog {
  /** SCEP messageType name of the request (`PKCSReq`, ...), when it could be read. */
  messageType?: string;
  transactionId?: string;
  /**
   * pkiStatus of the CertRep, `rejected` when the request got an HTTP error instead, or
   * `overloaded` for an HTTP 503 because a server-wide limit is reached (not an internal fault).
   */
  outcome: 'SUCCESS' | 'FAILURE' | 'PENDING' | 'rejected' | 'overloaded';
  /** failInfo name (`badRequest`, ...) when the outcome is FAILURE. */
  failInfo?: string;
  /** A short reason (the failInfoText, or why the HTTP error). */
  detail?: string;
  /** Serial (hex) of the certificate the answer carries. */
  serial?: string;
  /** True when the answer repeats an earlier issuance (a resend). */
  replay?: boolean;
  /** True when the request's challenge was checked and failed (counted by the throttle). */
  challengeFailure?: boolean;
  /** The limit that refused the request (`pending-rate`, `pending-queue`, `challenge-throttle`). */
  limit?: string;
  /** The configuration profile that answered. */
  profile?: string;
}

/** A PKIOperation answer plus what to log about it. */
export interface ScepAnswer extends HttpAnswer {
  log: OperationLog;
}

/** Who sent the request (for logs and the transaction record). */
export interface RequestContext {
  remoteAddress?: string;
  userAgent?: string;
  /** The configuration profile the request was sent to (its URL path; src/server/profiles.ts). */
  profile?: string;
}

/**
 * Whether a client address is locked by the challenge-failure throttle (src/ra/throttle.ts
 * `FailureThrottle.blocked`). The RA asks it only where a challenge would be checked (an
 * initial enrollment that passed its other policies), so polls, renewals, resends and GetCert
 * never read the failure counters; a locked source's initial enrollment is refused without
 * its challenge being looked at.
 */
export type ChallengeLock = (remoteAddress: string | undefined) => Promise<boolean>;

/**
 * The SCEP service, one method per protocol operation (RFC 8894 §4). Transports call these
 * and send the answers as they are.
 */
export interface ScepService {
  /** GetCACaps keywords, exactly what is supported (the list grows as operations are added). */
  capabilities(): readonly string[];
  /** GetCACaps answer (text/plain, one keyword per line). */
  getCaCaps(): HttpAnswer;
  /** GetCACert answer; `message` (the CA identifier) is accepted and ignored. */
  getCaCert(message?: string): HttpAnswer;
  /**
   * GetNextCACert answer, or undefined while no CA rollover certificate exists (the transport
   * then answers HTTP 400 and `capabilities()` does not list `GetNextCACert`).
   */
  getNextCaCert?(message?: string): HttpAnswer | undefined;
  /**
   * PKIOperation: one pkiMessage in, one answer out. Never throws for anything the client sent:
   * undecodable input is an HTTP 400 answer, every business failure a signed CertRep FAILURE.
   */
  pkiOperation(message: Buffer, ctx: RequestContext): Promise<ScepAnswer>;
}

/** The subset of a pino logger the service uses (server-side detail only, never sent to clients). */
export interface ServiceLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}
