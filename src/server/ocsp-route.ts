/**
 * OCSP over HTTP (RFC 6960 Appendix A, RFC 5019 §5): `POST /ocsp` with the DER request as the
 * body (`application/ocsp-request`; any or no Content-Type is read the same way), or
 * `GET /ocsp/<base64 of the DER request>` — percent-encoded as RFC 5019 says, or raw, or
 * base64url. Answers are `application/ocsp-response`, HTTP 200 whatever the OCSP status
 * (malformedRequest, unauthorized, successful); only a fault on our side (store down) is HTTP
 * 500 with an internalError response.
 *
 * A GET answer without a nonce whose certificates are all good or revoked is cacheable until
 * its nextUpdate (RFC 5019 §6.2): `Cache-Control: public, max-age, no-transform,
 * must-revalidate`, `Expires`, `Last-Modified` (thisUpdate) and `ETag`; `If-None-Match` with
 * that ETag is answered 304. POST answers are not cacheable by HTTP caches.
 */
import { createHash } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { OcspAnswer } from '../ca/ocsp-responder.js';
import { MAX_OCSP_REQUEST_BYTES, OcspStatus, ocspErrorResponse } from '../pkix/ocsp.js';

/** The path of the responder under the server origin. */
export const OCSP_PATH = '/ocsp';

/** Where the route gets answers from (the OcspResponder). */
export interface OcspSource {
  respond(request: Uint8Array): Promise<OcspAnswer>;
}

export interface OcspRoutesOptions {
  responder: OcspSource;
  /** Clock for max-age (tests). */
  now?: () => Date;
}

const STATUS_NAMES: Readonly<Record<number, string>> = {
  [OcspStatus.malformedRequest]: 'malformedRequest',
  [OcspStatus.internalError]: 'internalError',
  [OcspStatus.unauthorized]: 'unauthorized',
};

/** Longest GET request path we decode: the base64 of the largest request, percent-encoded. */
const MAX_GET_CHARS = Math.ceil((MAX_OCSP_REQUEST_BYTES * 4) / 3) * 3 + 16;

/** Cache-Control of a cacheable answer, set again in this plugin's onSend (the root hook sets no-store). */
const cacheControl = new WeakMap<FastifyReply, string>();

/**
 * The DER request of a GET path (`/ocsp/<encoded>`), or undefined when it is not base64 text.
 * Standard and URL-safe alphabets, padding optional, percent-encoding undone first.
 */
export function decodeGetRequest(encoded: string): Buffer | undefined {
  if (encoded.length === 0 || encoded.length > MAX_GET_CHARS) return undefined;
  let text: string;
  try {
    text = decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) return undefined;
  return Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

/** Registers `POST /ocsp`, `POST /ocsp/` and `GET /ocsp/<request>`. */
export const ocspRoutes: FastifyPluginAsync<OcspRoutesOptions> = async (app, opts) => {
  const now = opts.now ?? (() => new Date());
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  // Runs after the root onSend hook (which marks every answer no-store).
  app.addHook('onSend', async (_req, reply, payload) => {
    const cc = cacheControl.get(reply);
    if (cc !== undefined) reply.header('cache-control', cc);
    return payload;
  });

  async function answer(req: FastifyRequest, reply: FastifyReply, der: Buffer | undefined, get: boolean) {
    req.scepLog = { operation: 'OCSP' };
    let a: OcspAnswer;
    if (!der || der.length === 0) {
      a = {
        body: ocspErrorResponse(OcspStatus.malformedRequest),
        status: OcspStatus.malformedRequest,
        detail: 'no OCSP request',
      };
    } else {
      try {
        a = await opts.responder.respond(der);
      } catch (e) {
        req.log.error({ err: e }, 'internal error while answering an OCSP request');
        req.scepLog = { operation: 'OCSP', outcome: 'rejected', detail: 'internalError' };
        return reply
          .code(500)
          .header('content-type', 'application/ocsp-response')
          .send(ocspErrorResponse(OcspStatus.internalError));
      }
    }
    if (a.status === OcspStatus.successful) {
      req.scepLog = {
        operation: 'OCSP',
        outcome: 'SUCCESS',
        ...(a.certStatus ? { detail: a.certStatus } : {}),
        ...(a.serial ? { serial: a.serial } : {}),
      };
    } else {
      req.scepLog = {
        operation: 'OCSP',
        outcome: 'rejected',
        detail: `${STATUS_NAMES[a.status] ?? 'error'}${a.detail ? `: ${a.detail}` : ''}`.slice(0, 200),
        ...(a.serial ? { serial: a.serial } : {}),
      };
    }
    reply.header('content-type', 'application/ocsp-response');
    if (get && a.cacheable) {
      const t = now();
      const maxAge = Math.max(0, Math.floor((a.cacheable.nextUpdate.getTime() - t.getTime()) / 1000));
      const etag = `"${createHash('sha256').update(a.body).digest('hex').slice(0, 32)}"`;
      const cc = `public, max-age=${maxAge}, no-transform, must-revalidate`;
      cacheControl.set(reply, cc);
      reply.headers({
        expires: a.cacheable.nextUpdate.toUTCString(),
        'last-modified': a.cacheable.thisUpdate.toUTCString(),
        etag,
      });
      const inm = req.headers['if-none-match'];
      if (typeof inm === 'string' && inm.split(',').some((v) => v.trim().replace(/^W\//, '') === etag))
        return reply.code(304).send();
    }
    return reply.code(200).send(a.body);
  }

  const post = async (req: FastifyRequest, reply: FastifyReply) =>
    answer(req, reply, Buffer.isBuffer(req.body) ? req.body : undefined, false);
  app.post(OCSP_PATH, post);
  app.post(`${OCSP_PATH}/`, post);
  app.get(`${OCSP_PATH}/*`, async (req, reply) => {
    // The raw request target: the router's decoding and slash handling must not touch base64.
    const q = req.url.indexOf('?');
    const path = q < 0 ? req.url : req.url.slice(0, q);
    const i = path.indexOf(`${OCSP_PATH}/`);
    return answer(
      req,
      reply,
      i < 0 ? undefined : decodeGetRequest(path.slice(i + OCSP_PATH.length + 1)),
      true,
    );
  });
  app.get(OCSP_PATH, async (req, reply) => answer(req, reply, undefined, true));
};
