/**
 * Typed errors of the SCEP client. Every error message is one line and never carries a
 * challenge, a key or bytes from the server beyond short, sanitised text.
 *
 * - `ScepFailureError`: the server answered a signed CertRep FAILURE (a business decision).
 * - `ScepTransportError`: HTTP-level trouble (connect error, timeout, non-2xx status, oversize
 *   body). Only these are retried.
 * - `ScepProtocolError`: the server answered, but the answer is unusable or untrustworthy
 *   (bad signature, wrong signer, wrong nonce or transactionID, undecodable, wrong CA).
 * - `ScepPendingTimeoutError`: polling gave up while the request was still PENDING.
 * - `ScepArgumentError`: a caller mistake (bad URL, fingerprint, serial or key) found before
 *   any request is sent.
 *
 * Each class has a `code`, a documented string union (`ScepFailureCode`, ...): callers branch
 * on the class and `code`, never on the message text.
 */
import { escapeText } from '../pkix/text.js';
import { FailInfo } from '../scep/types.js';

/**
 * Keeps server-supplied text single-line, terminal-safe and short: line breaks and tabs become
 * spaces, other control, bidi and invisible characters visible escapes (`escapeText`).
 */
export function sanitize(text: string, max = 300): string {
  const s = escapeText(text.replace(/[\r\n\t]+/g, ' ')).trim();
  return s.length > max ? s.slice(0, max) + '…' : s;
}

/** `code` of a {@link ScepFailureError}: the CertRep's failInfo (RFC 8894 §3.2.1.4), kebab-case. */
export type ScepFailureCode =
  'bad-alg' | 'bad-message-check' | 'bad-request' | 'bad-time' | 'bad-cert-id' | 'unknown-fail-info';

/**
 * `code` of a {@link ScepTransportError}:
 * - `unreachable`: connect or network error before an answer;
 * - `timeout`: no (complete) answer within `timeoutMs`;
 * - `connection-broken`: the connection failed while the answer was being read;
 * - `http-status`: the server answered with a non-2xx status (see `status`);
 * - `body-too-large`: the answer exceeds the client's size limit;
 * - `tls`: the TLS handshake failed: the server's certificate does not verify (trust its CA
 *   with `tlsCa`), or the server speaks plain HTTP to an https:// URL. Never retried.
 */
export type ScepTransportCode =
  'unreachable' | 'timeout' | 'connection-broken' | 'http-status' | 'body-too-large' | 'tls';

/**
 * `code` of a {@link ScepProtocolError}:
 * - `bad-ca-certs`: the GetCACert answer is undecodable or holds no (CA) certificate;
 * - `ca-not-pinned`: no GetCACert certificate matches the pinned fingerprint;
 * - `ca-not-trusted`: no CA certificate chains to the trust anchor;
 * - `bad-next-ca-cert`: the GetNextCACert answer is undecodable or not signed by the current CA;
 * - `bad-reply`: a CertRep failed decoding or checks (signature, signer, nonce, transactionID);
 * - `certificate-missing`: a SUCCESS reply lacks the expected certificate;
 * - `crl-missing`: a GetCRL reply holds no CRL;
 * - `not-signed-by-ca`: a returned certificate or CRL is not signed by the CA;
 * - `unexpected-pending`: the server answered PENDING to a GetCert or GetCRL.
 */
export type ScepProtocolCode =
  | 'bad-ca-certs'
  | 'ca-not-pinned'
  | 'ca-not-trusted'
  | 'bad-next-ca-cert'
  | 'bad-reply'
  | 'certificate-missing'
  | 'crl-missing'
  | 'not-signed-by-ca'
  | 'unexpected-pending';

/** `code` of a {@link ScepPendingTimeoutError}. */
export type ScepPendingTimeoutCode = 'pending-timeout';

/**
 * `code` of a {@link ScepArgumentError} (a caller mistake, found before any network traffic):
 * - `invalid-url`: the SCEP URL is not http(s);
 * - `invalid-fingerprint`: the CA fingerprint is not a SHA-256 digest;
 * - `invalid-serial`: a serial number is not hex digits;
 * - `not-rsa-key`: the key is neither an RSA private key nor an EC private key on P-256 or
 *   P-384 (the name predates EC support);
 * - `key-cert-mismatch`: the key given to `renew` is not the certificate's key;
 * - `single-des-refused`: single DES was asked for as the request cipher.
 */
export type ScepArgumentCode =
  | 'invalid-url'
  | 'invalid-fingerprint'
  | 'invalid-serial'
  | 'not-rsa-key'
  | 'key-cert-mismatch'
  | 'single-des-refused';

/** Every `code` a {@link ScepClientError} can carry. */
export type ScepClientErrorCode =
  ScepFailureCode | ScepTransportCode | ScepProtocolCode | ScepPendingTimeoutCode | ScepArgumentCode;

/**
 * Base class of every client error. Branch on the class and its `code` (a stable, documented
 * string union); the message is for humans and may change.
 */
export class ScepClientError extends Error {
  readonly code: ScepClientErrorCode;
  constructor(code: ScepClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(message.replace(/[\r\n]+/g, ' '), options);
    this.name = 'ScepClientError';
    this.code = code;
  }
}

const FAILURE_CODES: Readonly<Record<string, ScepFailureCode>> = {
  badAlg: 'bad-alg',
  badMessageCheck: 'bad-message-check',
  badRequest: 'bad-request',
  badTime: 'bad-time',
  badCertId: 'bad-cert-id',
};

/** A CertRep with pkiStatus FAILURE. */
export class ScepFailureError extends ScepClientError {
  declare readonly code: ScepFailureCode;
  readonly failInfo: FailInfo | undefined;
  /** The failInfo as a name (`badRequest`), or `unknown`. */
  readonly failInfoName: string;
  /** The server's failInfoText, sanitised, if it sent one. */
  readonly failInfoText: string | undefined;
  readonly transactionId: string;
  constructor(o: {
    failInfo: FailInfo | undefined;
    failInfoText?: string | undefined;
    transactionId: string;
  }) {
    const name = o.failInfo === undefined ? 'unknown' : (FailInfo[o.failInfo] ?? 'unknown');
    const text = o.failInfoText === undefined ? undefined : sanitize(o.failInfoText);
    super(
      FAILURE_CODES[name] ?? 'unknown-fail-info',
      `the server refused the request: ${name}${text ? ` (${text})` : ''}`,
    );
    this.name = 'ScepFailureError';
    this.failInfo = o.failInfo;
    this.failInfoName = name;
    this.failInfoText = text;
    this.transactionId = o.transactionId;
  }
}

/** Connect error, timeout, HTTP error status or an oversize body. */
export class ScepTransportError extends ScepClientError {
  declare readonly code: ScepTransportCode;
  /** HTTP status when the server answered, otherwise undefined. */
  readonly status: number | undefined;
  readonly timedOut: boolean;
  constructor(
    code: ScepTransportCode,
    message: string,
    o: { status?: number; timedOut?: boolean; cause?: unknown } = {},
  ) {
    super(code, message, { cause: o.cause });
    this.name = 'ScepTransportError';
    this.status = o.status;
    this.timedOut = o.timedOut ?? false;
  }
}

/** An answer that cannot be used or trusted. */
export class ScepProtocolError extends ScepClientError {
  declare readonly code: ScepProtocolCode;
  constructor(code: ScepProtocolCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ScepProtocolError';
  }
}

/** Polling stopped (time or count limit) while the server still said PENDING. */
export class ScepPendingTimeoutError extends ScepClientError {
  declare readonly code: ScepPendingTimeoutCode;
  readonly transactionId: string;
  readonly polls: number;
  constructor(transactionId: string, polls: number) {
    super('pending-timeout', `still pending after ${polls} poll(s); transaction ${transactionId}`);
    this.name = 'ScepPendingTimeoutError';
    this.transactionId = transactionId;
    this.polls = polls;
  }
}

/** A bad argument to the client (URL, fingerprint, serial, key), detected before any request. */
export class ScepArgumentError extends ScepClientError {
  declare readonly code: ScepArgumentCode;
  constructor(code: ScepArgumentCode, message: string) {
    super(code, message);
    this.name = 'ScepArgumentError';
  }
}
