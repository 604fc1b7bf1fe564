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
import { adminTokenMatcher } from './challenges.js';
import type { ConsoleSessions, Session } from './console-session.js';

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

/** Largest login body (a JSON object with the token). */
const LOGIN_BODY_LIMIT = 4096;

export interface ConsoleRoutesOptions {
  /** The admin token; absent: every `/ui/` path answers 404. */
  token?: string;
  sessions: ConsoleSessions;
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
  required: ['csrfToken', 'expiresAt'],
  properties: { csrfToken: { type: 'string' }, expiresAt: { type: 'string', format: 'date-time' } },
} as const;
const errorSchema = { type: 'object', required: ['error'], properties: { error: { type: 'string' } } } as const;

export const consoleRoutes: FastifyPluginAsync<ConsoleRoutesOptions> = async (app, o) => {
  const enabled = o.token !== undefined;
  const isAdminToken = adminTokenMatcher(o.token);
  const { sessions } = o;
  const assets = enabled ? loadAssets(o.dir ?? DEFAULT_CONSOLE_DIR) : new Map<string, Asset>();

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: LOGIN_BODY_LIMIT }, (_r, body, done) =>
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
    req.scepLog = { ...req.scepLog, outcome: 'rejected', detail: message };
    return json(reply, code, { error: message });
  });

  const sessionBody = (s: Session) => ({
    csrfToken: sessions.csrfToken(s),
    expiresAt: new Date(s.expiresAt * 1000).toISOString(),
  });
  const page = (req: FastifyRequest, reply: FastifyReply, name: string) => {
    const a = assets.get(name);
    if (!a) {
      req.scepLog = { operation: 'console', outcome: 'rejected', detail: 'no such file' };
      return security(reply).code(404).header('content-type', 'text/plain; charset=utf-8').send('not found\n');
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

  app.post(
    '/ui/api/login',
    {
      schema: {
        description: 'Log in to the web console with the admin token; sets the session cookie',
        response: { 200: sessionSchema, 400: errorSchema, 401: errorSchema },
      },
    },
    async (req, reply) => {
      req.scepLog = { operation: 'console.login', outcome: 'rejected' };
      let token: unknown;
      try {
        const raw = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
        token = (JSON.parse(raw) as { token?: unknown }).token;
      } catch {
        token = undefined;
      }
      if (typeof token !== 'string' || token.length === 0 || token.length > 1024) {
        req.scepLog.detail = 'the body must be {"token": "<admin token>"}';
        return json(reply, 400, { error: 'the body must be {"token": "<admin token>"}' });
      }
      if (!isAdminToken(token)) {
        req.scepLog.detail = 'wrong admin token';
        return json(reply, 401, { error: 'wrong admin token' });
      }
      const s = sessions.create();
      req.scepLog = { operation: 'console.login', outcome: 'SUCCESS' };
      reply.header('set-cookie', sessions.cookie(s));
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
      const v = sessions.check('GET', req.headers);
      if (v.kind !== 'ok') {
        req.scepLog = { operation: 'console.session', outcome: 'rejected', detail: 'no session' };
        return json(reply, 401, { error: 'not logged in' });
      }
      const s = sessions.renew(v.session);
      req.scepLog = { operation: 'console.session', outcome: 'SUCCESS' };
      reply.header('set-cookie', sessions.cookie(s));
      return json(reply, 200, sessionBody(s));
    },
  );

  app.post(
    '/ui/api/logout',
    {
      schema: {
        description: 'End the console session (needs the CSRF token)',
        response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } }, 401: errorSchema, 403: errorSchema },
      },
    },
    async (req, reply) => {
      req.scepLog = { operation: 'console.logout', outcome: 'rejected' };
      const v = sessions.check(req.method, req.headers);
      if (v.kind === 'none') return json(reply, 401, { error: 'not logged in' });
      if (v.kind === 'csrf') {
        req.scepLog.detail = 'missing or wrong CSRF token';
        return json(reply, 403, { error: 'forbidden: missing or wrong CSRF token' });
      }
      sessions.revoke(v.session);
      req.scepLog = { operation: 'console.logout', outcome: 'SUCCESS' };
      reply.header('set-cookie', sessions.clearCookie());
      return json(reply, 200, { ok: true });
    },
  );

  app.all('/ui/*', async (req, reply) => page(req, reply, ''));
};
