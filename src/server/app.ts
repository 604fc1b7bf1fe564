/**
 * The fastify application: limits, error mapping, the one-line request log, and the SCEP
 * routes plugin. Further concerns (admin API, health and metrics) register as their own plugins.
 */
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Writable } from 'node:stream';
import Fastify, {
  LogController,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerFactory,
} from 'fastify';
import type { ScepService } from '../ra/types.js';
import { crlRoutes, type CrlSource } from './crl-route.js';
import { errorBody, handleClientError, HttpError, toHttpError } from './http-errors.js';
import { clientAddress, TrustedProxies } from './client-address.js';
import { ocspRoutes, type OcspSource } from './ocsp-route.js';
import { opsRoutes, type OpsRoutesOptions } from './ops-routes.js';
import type { ScepEndpoints } from './profiles.js';
import { scepRoutes } from './scep-routes.js';
import { textLogStream, type LogFormat } from './log-format.js';
import './admin-auth.js';

/** Default largest request body (a pkiMessage is a few KiB; RFC 8894 notes recommend 256 KiB). */
export const DEFAULT_BODY_LIMIT = 256 * 1024;
/** Default longest request target (path + query); a GET PKIOperation carries the message in it. */
export const DEFAULT_URL_LIMIT = 64 * 1024;

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface AppOptions {
  service: ScepService;
  /** Profiles: the service of each request path (src/server/profiles.ts); absent: `service` everywhere. */
  endpoints?: ScepEndpoints;
  /** Largest request body in bytes; bigger → 413 before anything is parsed. */
  bodyLimit?: number;
  /** Longest request target in characters; longer → 414. */
  urlLimit?: number;
  /** PEM certificate and key: serve HTTPS (client certificates are never requested). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Default 'info'. 'silent' turns logging off. */
  logLevel?: LogLevel;
  /** Where log lines go (default stdout). */
  logStream?: Writable;
  /** JSON lines (default) or human-readable text lines (src/server/log-format.ts). */
  logFormat?: LogFormat;
  /** Per-request timeout in ms (default 30 s). */
  requestTimeout?: number;
  /**
   * Serve CRLs as DER at `/crl`, `/crl/<issuer fingerprint>.crl` and `/crl/<CA name>.crl`
   * (src/server/crl-route.ts; several CAs: `severalCaCrls`).
   */
  crl?: CrlSource;
  /** Answer OCSP requests at `/ocsp` (src/server/ocsp-route.ts). */
  ocsp?: OcspSource;
  /**
   * Health and metrics (src/server/ops-routes.ts): `/healthz`, `/readyz` (with `readiness`) and,
   * when `metrics` is given, `/metrics`; every other request is counted into `metrics`.
   */
  ops?: OpsRoutesOptions;
  /**
   * Reverse proxies (addresses or CIDRs) whose `Forwarded` / `X-Forwarded-For` header names the
   * client (src/server/client-address.ts); default none: the client is the socket's peer.
   */
  trustedProxies?: readonly string[];
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The client's address (the peer, or what a trusted proxy says; see client-address.ts). */
    clientAddress: string | undefined;
  }
}

/** Builds (but does not start) the HTTP application. */
export async function buildApp(o: AppOptions): Promise<FastifyInstance> {
  const bodyLimit = o.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const urlLimit = o.urlLimit ?? DEFAULT_URL_LIMIT;
  const requestTimeout = o.requestTimeout ?? 30_000;
  // Node refuses a request line + headers above maxHeaderSize with 431 before we see it; leave
  // room above the URL limit so our own check answers 414 first.
  const maxHeaderSize = urlLimit + 16 * 1024;

  const serverFactory: FastifyServerFactory = (handler) => {
    const common = { maxHeaderSize, requestTimeout, keepAliveTimeout: 5_000 };
    const server: Server = o.tls
      ? createHttpsServer(
          Object.assign({}, common, { cert: o.tls.cert, key: o.tls.key, requestCert: false }),
          handler,
        )
      : createHttpServer(common, handler);
    return server;
  };

  const logStream = o.logFormat === 'text' ? textLogStream(o.logStream ?? process.stdout) : o.logStream;
  const app = Fastify({
    serverFactory,
    bodyLimit,
    logger: {
      level: o.logLevel ?? 'info',
      ...(logStream ? { stream: logStream } : {}),
    },
    // Our own onResponse hook writes the one line per request; fastify's would duplicate it.
    logController: new LogController({ disableRequestLogging: true }),
    clientErrorHandler: handleClientError,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // maxParamLength: admin path parameters (src/server/admin-routes.ts) such as renewal
    // transactionIDs `renewal:<serial>:<id>` exceed find-my-way's default of 100.
    routerOptions: { ignoreDuplicateSlashes: true, maxParamLength: 512 },
  });

  app.decorateRequest('scepLog', null);
  const trusted = o.trustedProxies?.length ? new TrustedProxies(o.trustedProxies) : undefined;
  app.decorateRequest('clientAddress', undefined);
  app.decorateRequest('admin', null);

  // The hooks take callbacks rather than being async: they run on every request, GetCACaps and
  // GetCACert included, and a promise per hook is measurable there (docs/benchmarks.md).
  app.addHook('onRequest', (req, _reply, done) => {
    req.clientAddress = clientAddress(req.socket.remoteAddress, req.headers, trusted);
    if (req.url.length > urlLimit)
      return done(new HttpError(414, `request URL longer than ${urlLimit} characters`));
    // Any Content-Type (or none) is a raw pkiMessage; normalising it keeps fastify from
    // refusing odd media types with 415 before our parser runs.
    if (req.method === 'POST') req.headers['content-type'] = 'application/octet-stream';
    done();
  });

  app.addHook('onSend', (_req, reply, payload, done) => {
    reply.header('cache-control', 'no-store');
    done(null, payload);
  });

  const metrics = o.ops?.metrics;
  app.addHook('onResponse', (req, reply, done) => {
    logRequest(req, reply);
    done();
  });

  function logRequest(req: FastifyRequest, reply: FastifyReply): void {
    const s = req.scepLog;
    const status = reply.statusCode;
    const q = req.url.indexOf('?');
    const line = {
      method: req.method,
      path: (q < 0 ? req.url : req.url.slice(0, q)).slice(0, 256),
      status,
      ms: Math.round(reply.elapsedTime * 100) / 100,
      remote: req.clientAddress ?? req.ip,
      ...(s?.operation ? { operation: s.operation } : {}),
      ...(s?.admin ? { admin: s.admin } : {}),
      ...(s?.profile ? { profile: s.profile } : {}),
      ...(s?.messageType ? { messageType: s.messageType } : {}),
      ...(s?.transactionId ? { transactionId: s.transactionId } : {}),
      outcome: s?.outcome ?? (status >= 400 ? 'rejected' : 'SUCCESS'),
      ...(s?.failInfo ? { failInfo: s.failInfo } : {}),
      ...(s?.serial ? { serial: s.serial } : {}),
      ...(s?.replay ? { replay: true } : {}),
      ...(s?.detail ? { detail: s.detail } : {}),
      ...(s?.limit ? { limit: s.limit } : {}),
    };
    // Health checks and scrapes: debug only, not counted (src/server/ops-routes.ts).
    if (s?.quiet) return void req.log.debug(line, 'request');
    metrics?.observeRequest(s, status, reply.elapsedTime / 1000);
    if (s?.outcome === 'overloaded' || s?.limit) req.log.warn(line, 'request');
    else if (status >= 500) req.log.error(line, 'request');
    else req.log.info(line, 'request');
  }

  app.setErrorHandler(async (err, req, reply) => {
    const he = toHttpError(err, { bodyLimit });
    if (he.status >= 500) req.log.error({ err }, 'internal error while serving a request');
    req.scepLog = Object.assign({}, req.scepLog, { outcome: 'rejected' as const, detail: he.message });
    return reply.code(he.status).header('content-type', 'text/plain; charset=utf-8').send(errorBody(he));
  });

  app.setNotFoundHandler(async (req, reply) => {
    req.scepLog = { outcome: 'rejected', detail: 'no such route' };
    return reply.code(404).header('content-type', 'text/plain; charset=utf-8').send('not found\n');
  });

  await app.register(opsRoutes, o.ops ?? {});
  if (o.crl) await app.register(crlRoutes, { source: o.crl });
  if (o.ocsp) await app.register(ocspRoutes, { responder: o.ocsp });
  await app.register(scepRoutes, { service: o.service, ...(o.endpoints ? { endpoints: o.endpoints } : {}) });
  return app;
}
