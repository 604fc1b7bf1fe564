/**
 * HTTP-level errors: the few cases where a client gets an HTTP error instead of a signed
 * CertRep (undecodable input, size limits, unknown operation). Every such answer is one
 * line of plain text that is safe to show: no stack, no internal detail, no secret.
 */
import type { Socket } from 'node:net';
import { KeyUnavailableError } from '../crypto/private-key.js';

/** An error the transport answers with `status` and the one-line `message`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message.replace(/[\r\n]+/g, ' '));
    this.name = 'HttpError';
  }
}

const REASONS: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  414: 'URI Too Long',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

interface FastifyLikeError {
  code?: unknown;
  statusCode?: unknown;
}

/**
 * Maps anything thrown while serving a request to a status and a client-safe message.
 * Fastify's own client errors keep their 4xx status with a fixed text; anything else is a
 * 500 whose detail stays in the server log.
 */
export function toHttpError(e: unknown, limits: { bodyLimit: number }): HttpError {
  if (e instanceof HttpError) return e;
  // A CA key on a token that is unreachable (CRL signing, GetNextCACert): try again later.
  if (e instanceof KeyUnavailableError)
    return new HttpError(503, 'the CA key is unavailable; try again later');
  const fe = (typeof e === 'object' && e !== null ? e : {}) as FastifyLikeError;
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HttpError(413, `request body larger than ${limits.bodyLimit} bytes`);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new HttpError(400, 'request body length does not match Content-Length');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new HttpError(400, 'invalid Content-Type');
    case 'FST_ERR_BAD_URL':
      return new HttpError(400, 'malformed URL');
    default:
      break;
  }
  const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
  if (status === 413) return new HttpError(413, `request body larger than ${limits.bodyLimit} bytes`);
  if (status >= 400 && status < 500) return new HttpError(status, REASONS[status] ?? 'bad request');
  return new HttpError(500, 'internal server error');
}

/** Body text for an error answer. */
export function errorBody(e: HttpError): string {
  return `${e.message}\n`;
}

/**
 * Answers connection-level parse errors (before any request object exists) with a minimal,
 * well-formed HTTP response and closes the socket: headers too large → 431, anything else → 400.
 */
export function handleClientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const status =
    err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const body =
    status === 431
      ? 'request line or headers too large\n'
      : status === 408
        ? 'request timeout\n'
        : 'malformed HTTP request\n';
  socket.end(
    `HTTP/1.1 ${status} ${REASONS[status]}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
  );
}
