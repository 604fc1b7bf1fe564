/**
 * SCEP over HTTP (RFC 8894 §4.1) as a fastify plugin: `operation=` on any path, matched
 * case-insensitively; PKIOperation by POST (any or no Content-Type; a POST without a query is
 * a PKIOperation) or by GET with a base64 `message`. The plugin only moves bytes: every
 * decision is the service's.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { decodeGetMessage } from '../scep/get-message.js';
import { ScepError } from '../scep/types.js';
import type { HttpAnswer, OperationLog, RequestContext, ScepService } from '../ra/types.js';
import { HttpError } from './http-errors.js';
import type { ScepEndpoints } from './profiles.js';

/** What the per-request log line says about the SCEP side of a request. */
export interface ScepRequestLog extends Partial<OperationLog> {
  operation?: string;
  /** The admin (token name) an admin API request authenticated as. */
  admin?: string;
  /** The configuration profile of the request path. */
  profile?: string;
  /** Log at debug level only (health checks and scrapes: src/server/ops-routes.ts). */
  quiet?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Filled by the SCEP routes, written out by the one-line request log. */
    scepLog: ScepRequestLog | null;
  }
}

export interface ScepRoutesOptions {
  service: ScepService;
  /** Profiles: the service of each request path (src/server/profiles.ts); absent: `service` on every path. */
  endpoints?: ScepEndpoints;
}

type Query = Record<string, string | string[] | undefined>;

/** The first value of a query parameter (clients sometimes repeat them). */
function param(q: Query, name: string): string | undefined {
  const v = q[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Canonical operation names by their lower-case form. */
const OPERATIONS: ReadonlyMap<string, string> = new Map(
  ['GetCACaps', 'GetCACert', 'GetNextCACert', 'PKIOperation'].map((o) => [o.toLowerCase(), o]),
);

function send(reply: FastifyReply, a: HttpAnswer): FastifyReply {
  if (a.headers) reply.headers(a.headers);
  return reply.code(a.httpStatus).header('content-type', a.contentType).send(a.body);
}

function contextOf(req: FastifyRequest): RequestContext {
  const ctx: RequestContext = {};
  const remote = req.clientAddress ?? req.ip;
  if (remote) ctx.remoteAddress = remote;
  const ua = req.headers['user-agent'];
  if (typeof ua === 'string') ctx.userAgent = ua.slice(0, 256);
  return ctx;
}

async function pkiOperation(
  service: ScepService,
  req: FastifyRequest,
  reply: FastifyReply,
  message: Buffer,
): Promise<FastifyReply> {
  const answer = await service.pkiOperation(message, contextOf(req));
  req.scepLog = Object.assign({}, req.scepLog, answer.log);
  return send(reply, answer);
}

/** Registers the SCEP routes on every path. */
export const scepRoutes: FastifyPluginAsync<ScepRoutesOptions> = async (app: FastifyInstance, opts) => {
  const { endpoints } = opts;

  // A pkiMessage arrives as application/x-pki-message, application/octet-stream, anything else
  // or nothing at all: every body is taken as raw bytes.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  async function handle(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const q = (req.query ?? {}) as Query;
    const given = param(q, 'operation');
    const isPost = req.method === 'POST';
    let operation: string | undefined;
    if (given === undefined || given === '') {
      if (!isPost) throw new HttpError(400, 'missing operation parameter');
      operation = 'PKIOperation';
    } else {
      operation = OPERATIONS.get(given.trim().toLowerCase());
      if (!operation) throw new HttpError(400, 'unknown operation');
    }
    req.scepLog = { operation };
    let service = opts.service;
    if (endpoints) {
      const q = req.url.indexOf('?');
      const e = endpoints.forPath(q < 0 ? req.url : req.url.slice(0, q));
      if (!e) throw new HttpError(404, 'no SCEP profile at this path');
      service = e.service;
      if (e.profile !== undefined) req.scepLog.profile = e.profile;
    }

    switch (operation) {
      case 'GetCACaps': {
        const a = service.getCaCaps();
        req.scepLog.outcome = 'SUCCESS';
        return send(reply, a);
      }
      case 'GetCACert': {
        const a = service.getCaCert(param(q, 'message'));
        req.scepLog.outcome = 'SUCCESS';
        return send(reply, a);
      }
      case 'GetNextCACert': {
        const a = service.getNextCaCert?.(param(q, 'message'));
        if (!a) throw new HttpError(400, 'GetNextCACert is not available: no CA rollover is in progress');
        req.scepLog.outcome = 'SUCCESS';
        return send(reply, a);
      }
      default: {
        if (isPost) {
          const body = req.body;
          if (!Buffer.isBuffer(body) || body.length === 0)
            throw new HttpError(400, 'empty PKIOperation body');
          return pkiOperation(service, req, reply, body);
        }
        const m = param(q, 'message');
        if (m === undefined || m === '') throw new HttpError(400, 'missing message parameter');
        let der: Buffer;
        try {
          der = decodeGetMessage(m);
        } catch (e) {
          if (e instanceof ScepError) throw new HttpError(400, e.message);
          throw e;
        }
        return pkiOperation(service, req, reply, der);
      }
    }
  }

  app.route({ method: ['GET', 'POST'], url: '/', handler: handle });
  app.route({ method: ['GET', 'POST'], url: '/*', handler: handle });
};
