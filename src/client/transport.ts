/**
 * HTTP transport for SCEP (RFC 8894 §4.1): `GET <url>?operation=X[&message=M]` and
 * `POST <url>?operation=PKIOperation`. Bounded: per-attempt timeout, body size limit, and
 * retries with jittered exponential backoff for transport failures only (connect errors,
 * timeouts, 429/502/503/504). A server that answers anything else is never retried, nor is a
 * TLS failure (a certificate that does not verify, `https://` against plain HTTP).
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { ScepTransportError, sanitize } from './errors.js';
import { readBoundedBody } from '../scep/bounded-body.js';

/** The `fetch` signature the client needs (node's global fetch by default). */
export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface TransportOptions {
  url: string;
  timeoutMs: number;
  retries: number;
  fetch: FetchLike;
  /** Largest accepted response body, bytes. */
  maxBodyBytes: number;
  /** Base delay of the retry backoff, ms (doubled per attempt, with ±50% jitter). */
  backoffMs: number;
}

export interface HttpReply {
  status: number;
  contentType: string;
  body: Buffer;
}

const RETRY_STATUS = new Set([429, 502, 503, 504]);

/** OpenSSL/Node codes of a server certificate that does not verify (never retried). */
const CERT_ERRORS = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REVOKED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * One clear sentence for a TLS failure, or undefined when `e` is not one: a server
 * certificate that does not verify, or `https://` against a server that speaks plain HTTP.
 */
export function tlsProblem(e: unknown, url: string): string | undefined {
  const c = ((e as { cause?: unknown })?.cause ?? e) as { code?: unknown; message?: unknown } | undefined;
  const code = typeof c?.code === 'string' ? c.code : '';
  const message = typeof c?.message === 'string' ? c.message : '';
  let host = url;
  try {
    host = new URL(url).host;
  } catch {
    // keep the URL
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number/i.test(message)) {
    return `${sanitize(host, 200)} does not speak TLS (it answered plain HTTP to https://): use an http:// URL, or serve TLS there`;
  }
  if (CERT_ERRORS.has(code)) {
    return `the TLS certificate of ${sanitize(host, 200)} is not trusted (${code}): trust the CA that issued it with --tls-ca FILE (library: tlsCa)`;
  }
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) {
    return `TLS with ${sanitize(host, 200)} failed (${code}): ${sanitize(message, 160)}`;
  }
  return undefined;
}

/**
 * A `fetch` over node:http/https that trusts `ca` (PEM, one or more certificates) for
 * https:// instead of the system store — the global fetch cannot be given a CA. Supports what
 * the transport uses: method, headers, a byte body, `signal`; never follows redirects.
 */
export function fetchTrusting(ca: string | Buffer): FetchLike {
  return (input, init = {}) =>
    new Promise<Response>((resolve, reject) => {
      const u = new URL(input);
      const headers: Record<string, string> = {};
      new Headers(init.headers).forEach((v, k) => (headers[k] = v));
      const onResponse = (res: IncomingMessage) => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v);
        }
        const status = res.statusCode ?? 0;
        try {
          const noBody = status === 204 || status === 304 || init.method === 'HEAD';
          if (noBody) res.resume();
          resolve(
            new Response(noBody ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), {
              status,
              headers: h,
            }),
          );
        } catch (e) {
          res.destroy();
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      };
      const options = {
        method: init.method ?? 'GET',
        headers,
        ...(init.signal ? { signal: init.signal } : {}),
      };
      const req =
        u.protocol === 'https:'
          ? httpsRequest(u, { ca, ...options }, onResponse)
          : httpRequest(u, options, onResponse);
      req.on('error', reject);
      const body = init.body;
      if (body instanceof Uint8Array) req.end(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
      else if (typeof body === 'string') req.end(body);
      else req.end();
    });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `url` with `operation` (and `message`, already escaped) appended to its query. */
export function operationUrl(base: string, operation: string, escapedMessage?: string): string {
  const sep = base.includes('?') ? '&' : '?';
  let u = `${base}${sep}operation=${encodeURIComponent(operation)}`;
  if (escapedMessage !== undefined) u += `&message=${escapedMessage}`;
  return u;
}

async function readLimited(res: Response, max: number): Promise<Buffer> {
  const body = await readBoundedBody(res, max);
  if (body === undefined)
    throw new ScepTransportError('body-too-large', `response body exceeds the limit of ${max} bytes`, {
      status: res.status,
    });
  return body;
}

/** Sends SCEP HTTP requests with timeouts, limits and retries. */
export class Transport {
  constructor(private readonly o: TransportOptions) {}

  /** GET `operation` (with an optional already-escaped `message`). */
  get(operation: string, escapedMessage?: string): Promise<HttpReply> {
    const url = operationUrl(this.o.url, operation, escapedMessage);
    return this.withRetries(operation, () => this.once(url, { method: 'GET' }));
  }

  /** POST a binary pkiMessage with operation=PKIOperation. */
  post(operation: string, body: Buffer): Promise<HttpReply> {
    const url = operationUrl(this.o.url, operation);
    return this.withRetries(operation, () =>
      this.once(url, {
        method: 'POST',
        body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength),
        headers: { 'content-type': 'application/x-pki-message' },
      }),
    );
  }

  private async withRetries(operation: string, attempt: () => Promise<HttpReply>): Promise<HttpReply> {
    let last: unknown;
    for (let i = 0; i <= this.o.retries; i++) {
      if (i > 0) {
        const base = this.o.backoffMs * 2 ** (i - 1);
        await sleep(base * (0.5 + Math.random()));
      }
      try {
        return await attempt();
      } catch (e) {
        last = e;
        // A TLS failure (untrusted certificate, plain HTTP) fails the same way every time.
        const retryable =
          e instanceof ScepTransportError &&
          e.code !== 'tls' &&
          (e.status === undefined || RETRY_STATUS.has(e.status));
        if (!retryable) throw e;
      }
    }
    if (last instanceof ScepTransportError) {
      throw new ScepTransportError(
        last.code,
        `${operation}: ${last.message} (after ${this.o.retries + 1} attempts)`,
        {
          timedOut: last.timedOut,
          cause: last,
          ...(last.status === undefined ? {} : { status: last.status }),
        },
      );
    }
    throw last;
  }

  private async once(url: string, init: RequestInit): Promise<HttpReply> {
    const signal = AbortSignal.timeout(this.o.timeoutMs);
    let res: Response;
    try {
      res = await this.o.fetch(url, Object.assign({}, init, { signal, redirect: 'error' as const }));
    } catch (e) {
      const timedOut = (e as Error)?.name === 'TimeoutError' || (e as Error)?.name === 'AbortError';
      const tls = timedOut ? undefined : tlsProblem(e, this.o.url);
      if (tls !== undefined) throw new ScepTransportError('tls', tls, { cause: e });
      const why = timedOut
        ? `no answer within ${this.o.timeoutMs} ms`
        : sanitize(((e as Error & { cause?: Error }).cause ?? (e as Error)).message ?? String(e));
      throw new ScepTransportError(
        timedOut ? 'timeout' : 'unreachable',
        `cannot reach ${safeUrl(this.o.url)}: ${why}`,
        { timedOut, cause: e },
      );
    }
    let body: Buffer;
    try {
      body = await readLimited(res, this.o.maxBodyBytes);
    } catch (e) {
      if (e instanceof ScepTransportError) throw e;
      const timedOut = (e as Error)?.name === 'TimeoutError' || (e as Error)?.name === 'AbortError';
      throw new ScepTransportError(
        timedOut ? 'timeout' : 'connection-broken',
        timedOut
          ? `the answer did not complete within ${this.o.timeoutMs} ms`
          : 'the connection broke while reading the answer',
        { status: res.status, timedOut, cause: e },
      );
    }
    if (res.status < 200 || res.status > 299) {
      const hint = (res.headers.get('content-type') ?? '').startsWith('text/')
        ? `: ${sanitize(body.toString('utf8'), 120)}`
        : '';
      throw new ScepTransportError('http-status', `HTTP ${res.status}${hint}`, { status: res.status });
    }
    return { status: res.status, contentType: res.headers.get('content-type') ?? '', body };
  }
}

/** The URL without user-info, for messages. */
export function safeUrl(u: string): string {
  try {
    const p = new URL(u);
    p.username = '';
    p.password = '';
    return p.toString();
  } catch {
    return sanitize(u, 200);
  }
}
