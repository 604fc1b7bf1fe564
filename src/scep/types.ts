/**
 * SCEP message types, statuses, failure codes (RFC 8894 §3.2.1) and the codec's error type.
 */

/** messageType values (§3.2.1.2). */
export enum MessageType {
  CertRep = 3,
  RenewalReq = 17,
  PKCSReq = 19,
  CertPoll = 20,
  GetCert = 21,
  GetCRL = 22,
}

/** pkiStatus values (§3.2.1.3). */
export enum PkiStatus {
  SUCCESS = 0,
  FAILURE = 2,
  PENDING = 3,
}

/** failInfo values (§3.2.1.4). */
export enum FailInfo {
  badAlg = 0,
  badMessageCheck = 1,
  badRequest = 2,
  badTime = 3,
  badCertId = 4,
}

/** The message types a client may send to a server. */
export const REQUEST_TYPES: ReadonlySet<number> = new Set([
  MessageType.RenewalReq,
  MessageType.PKCSReq,
  MessageType.CertPoll,
  MessageType.GetCert,
  MessageType.GetCRL,
]);

/** Human name of a messageType number (`"PKCSReq"`), or `"unknown"`. */
export function messageTypeName(n: number): string {
  return MessageType[n] ?? 'unknown';
}

/** Human name of a pkiStatus number, or `"unknown"`. */
export function pkiStatusName(n: number): string {
  return PkiStatus[n] ?? 'unknown';
}

/** Human name of a failInfo number, or `"unknown"`. */
export function failInfoName(n: number): string {
  return FailInfo[n] ?? 'unknown';
}

/**
 * The one error type of `src/scep`.
 * - `undecodable`: no CertRep can be built (HTTP 400 on the server; a broken reply on the client).
 * - `failure`: answer with a signed CertRep FAILURE carrying `failInfo`.
 * The message is one line, safe to show to the peer: it never carries a challenge or key material.
 */
export class ScepError extends Error {
  readonly kind: 'undecodable' | 'failure';
  readonly failInfo: FailInfo | undefined;
  constructor(kind: 'undecodable' | 'failure', message: string, failInfo?: FailInfo) {
    super(message.replace(/[\r\n]+/g, ' '));
    this.name = 'ScepError';
    this.kind = kind;
    this.failInfo = kind === 'failure' ? (failInfo ?? FailInfo.badRequest) : undefined;
  }

  /** An input from which no CertRep can be built. */
  static undecodable(message: string): ScepError {
    return new ScepError('undecodable', message);
  }

  /** A failure to report in a signed CertRep FAILURE. */
  static failure(failInfo: FailInfo, message: string): ScepError {
    return new ScepError('failure', message, failInfo);
  }

  /**
   * The same failure without a stack trace, for an error built on every request before it is
   * known whether it will be thrown (`openEnvelopeAs` prepares its one envelope error so that
   * every outcome does the same work): capturing the stack is most of what an Error costs.
   * Its `stack` is just the name and message.
   */
  static prepared(failInfo: FailInfo, message: string): ScepError {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return new ScepError('failure', message, failInfo);
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
}

/**
 * The text of every failure that happens at or after decryption of a pkcsPKIEnvelope (wrong
 * key, bad padding, garbage plaintext, undecodable message data). Kept identical on purpose so
 * the server is no padding oracle (RFC 3218).
 */
export const ENVELOPE_FAILURE_TEXT = 'the pkcsPKIEnvelope could not be decrypted or its content decoded';
