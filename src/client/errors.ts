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

/** Base class of every client error. */
export class ScepClientError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message.replace(/[\r\n]+/g, ' '), options);
    this.name = 'ScepClientError';
  }
}

/** A CertRep with pkiStatus FAILURE. */
export class ScepFailureError extends ScepClientError {
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
    super(`the server refused the request: ${name}${text ? ` (${text})` : ''}`);
    this.name = 'ScepFailureError';
    this.failInfo = o.failInfo;
    this.failInfoName = name;
    this.failInfoText = text;
    this.transactionId = o.transactionId;
  }
}

/** Connect error, timeout, HTTP error status or an oversize/empty body. */
export class ScepTransportError extends ScepClientError {
  /** HTTP status when the server answered, otherwise undefined. */
  readonly status: number | undefined;
  readonly timedOut: boolean;
  constructor(message: string, o: { status?: number; timedOut?: boolean; cause?: unknown } = {}) {
    super(message, { cause: o.cause });
    this.name = 'ScepTransportError';
    this.status = o.status;
    this.timedOut = o.timedOut ?? false;
  }
}

/** An answer that cannot be used or trusted. */
export class ScepProtocolError extends ScepClientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ScepProtocolError';
  }
}

/** Polling stopped (time or count limit) while the server still said PENDING. */
export class ScepPendingTimeoutError extends ScepClientError {
  readonly transactionId: string;
  readonly polls: number;
  constructor(transactionId: string, polls: number) {
    super(`still pending after ${polls} poll(s); transaction ${transactionId}`);
    this.name = 'ScepPendingTimeoutError';
    this.transactionId = transactionId;
    this.polls = polls;
  }
}
