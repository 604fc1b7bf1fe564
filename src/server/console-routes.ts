/**
 * The web console (docs/console.md) at `/ui/`: the bundled single-page app (built by
 * scripts/build-console.mjs into dist/console/, read once at start-up and served from memory)
 * and its session endpoints `POST /ui/api/login`, `GET /ui/api/session`, `POST /ui/api/logout`.
 * Everything the console shows comes from the `/admin/*` API, which accepts the session
 * (src/server/console-session.ts) like the admin bearer token.
 *
 * Served only with an admin token configured: otherwise every `/ui/` path answers 404. Every
 * answer carries a strict Content-Security-Policy (no inline script or style, nothing but this
 * origin), `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` and framing denied.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { randomBytes } from 'node:crypto';
import type { AdminAuth } from './admin-auth.js';
import { ConsoleSessions, type Session } from './console-session.js';

/** The bundle shipped in the package: dist/console/ next to dist/server/. */
export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL('../console/', import.meta.url));

export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

/** Largest body read (the session endpoints take none). */
const BODY_LIMIT = 4096;

export interface ConsoleRoutesOptions {
  /** The admin bearer tokens the login checks; disabled: every `/ui/` path answers 404. */
  bearer: AdminAuth;
  /** Present whenever `bearer` is enabled. */
  sessions?: ConsoleSessions;
  /** The built console (default DEFAULT_CONSOLE_DIR). */
  dir?: string;
}

interface Asset {
  type: string;
  body: Buffer;
}

/** The files of the built console, by name (flat directory; nothing else is ever served). */
function loadAssets(dir: string): Map<string, Asset> {
  const out = new Map<string, Asset>();
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    const path = join(dir, name);
    if (type && /^[A-Za-z0-9._-]+$/.test(name) && statSync(path).isFile())
      out.set(name, { type, body: readFileSync(path) });
  }
  return out;
}

function security(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY')
    .header('cross-origin-opener-policy', 'same-origin')
    .header('cross-origin-resource-policy', 'same-origin');
}

function json(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return security(reply)
    .code(status)
    .header('content-type', 'application/json; charset=utf-8')
    .send(JSON.stringify(body));
}

const sessionSchema = {
  type: 'object',
  required: ['csrfToken', 'expiresAt', 'admin'],
  properties: {
    csrfToken: { type: 'string' },
    expiresAt: { type: 'string', format: 'date-time' },
    admin: { type: 'string' },
  },
} as const;
const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: { error: { type: 'string' } },
} as const;

export const consoleRoutes: FastifyPluginAsync<ConsoleRoutesOptions> = async (app, o) => {
  const enabled = o.bearer.enabled;
  const sessions = o.sessions ?? new ConsoleSessions({ key: randomBytes(32), secure: false });
  const assets = enabled ? loadAssets(o.dir ?? DEFAULT_CONSOLE_DIR) : new Map<string, Asset>();

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: BODY_LIMIT }, (_r, body, done) =>
    done(null, body),
  );
  app.addHook('onRequest', async (req, reply) => {
    req.scepLog = { operation: 'console', outcome: 'rejected' };
    if (!enabled) {
      req.scepLog = { outcome: 'rejected', detail: 'no such route' };
      return reply.code(404).header('content-type', 'text/plain; charset=utf-8').send('not found\n');
    }
  });
  app.setErrorHandler(async (err, req, reply) => {
    const status = (err as { statusCode?: number }).statusCode;
    const code = status === 413 ? 413 : status !== undefined && status >= 400 && status < 500 ? 400 : 500;
    if (code === 500) req.log.error({ err }, 'internal error while serving a console request');
    const message = code === 413 ? 'request body too large' : code === 400 ? 'bad request' : 'internal error';
    req.scepLog = Object.assign({}, req.scepLog, { outcome: 'rejected', detail: message });
    return json(reply, code, { error: message });
  });

  const sessionBody = (s: Session) => ({
    csrfToken: sessions.csrfToken(s),
    expiresAt: new Date(s.expiresAt * 1000).toISOString(),
    admin: s.admin,
  });
  const page = (req: FastifyRequest, reply: FastifyReply, name: string) => {
    const a = assets.get(name);
    if (!a) {
      req.scepLog = { operation: 'console', outcome: 'rejected', detail: 'no such file' };
      return security(reply)
        .code(404)
        .header('content-type', 'text/plain; charset=utf-8')
        .send('not found\n');
    }
    req.scepLog = { operation: 'console', outcome: 'SUCCESS' };
    return security(reply).code(200).header('content-type', a.type).send(a.body);
  };

  app.get('/ui', async (req, reply) => {
    req.scepLog = { operation: 'console', outcome: 'SUCCESS' };
    return security(reply).redirect('/ui/', 308);
  });
  app.get('/ui/', async (req, reply) => page(req, reply, 'index.html'));
  app.get<{ Params: { file: string } }>('/ui/assets/:file', async (req, reply) =>
    page(req, reply, req.params.file),
  );

  // The login authenticates exactly like the admin API: `Authorization: Bearer <token>`
  // through the bearer seam (src/server/admin-auth.ts); the session carries the token's name.
  app.post(
    '/ui/api/login',
    {
      schema: {
        description: 'Log in to the web console with an admin bearer token; sets the session cookie',
        response: { 200: sessionSchema, 401: errorSchema },
      },
    },
    async (req, reply) => {
      const admin = o.bearer.authenticate(req);
      if (admin === null) {
        req.scepLog = {
          operation: 'console.login',
          outcome: 'rejected',
          detail: 'missing or wrong admin token',
        };
        return json(reply, 401, { error: 'wrong admin token' });
      }
      const s = sessions.create(admin);
      req.scepLog = { operation: 'console.login', outcome: 'SUCCESS', admin };
      sessions.setCookie(reply, s);
      return json(reply, 200, sessionBody(s));
    },
  );

  // The current session (renewed for another idle period) and its CSRF token: the app calls
  // it on start and on every page change.
  app.get(
    '/ui/api/session',
    {
      schema: {
        description: 'The current console session, renewed; 401 without one',
        response: { 200: sessionSchema, 401: errorSchema },
      },
    },
    async (req, reply) => {
      const v = sessions.check(req);
      if (v.kind !== 'ok') {
        req.scepLog = { operation: 'console.session', outcome: 'rejected', detail: 'no session' };
        return json(reply, 401, { error: 'not logged in' });
      }
      const s = sessions.renew(v.session);
      req.scepLog = { operation: 'console.session', outcome: 'SUCCESS' };
      sessions.setCookie(reply, s);
      return json(reply, 200, sessionBody(s));
    },
  );

  app.post(
    '/ui/api/logout',
    {
      schema: {
        description: 'End the console session (needs the CSRF token)',
        response: {
          200: { type: 'object', properties: { ok: { type: 'boolean' } } },
          401: errorSchema,
          403: errorSchema,
        },
      },
    },
    async (req, reply) => {
      req.scepLog = { operation: 'console.logout', outcome: 'rejected' };
      const v = sessions.check(req);
      if (v.kind === 'none') return json(reply, 401, { error: 'not logged in' });
      if (v.kind === 'csrf') {
        req.scepLog.detail = 'missing or wrong CSRF token';
        return json(reply, 403, { error: 'forbidden: missing or wrong CSRF token' });
      }
      sessions.revoke(v.session);
      req.scepLog = { operation: 'console.logout', outcome: 'SUCCESS' };
      sessions.clearCookie(reply);
      return json(reply, 200, { ok: true });
    },
  );

  app.all('/ui/*', async (req, reply) => page(req, reply, ''));
};
