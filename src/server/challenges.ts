/**
 * Challenges on the server side (docs/server.md "Challenges"): which challenges the RA accepts
 * (static and/or one-time), the per-source throttle in front of the SCEP service, and the
 * admin endpoint `POST /admin/challenge` that mints one-time challenges for an MDM.
 *
 * The endpoint exists only with a bearer token (`--admin-token-file`, env
 * SCEPTER_ADMIN_TOKEN); without one it answers 404 like any unknown path. The token is compared
 * in constant time (HMAC of both sides under a random key, then `timingSafeEqual`). Minted
 * values appear only in the response body: never in a log line (the log has the path only).
 */
import { SecretMatcher } from '../crypto/secret-match.js';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { EnrollmentConfig } from '../ra/config.js';
import {
  MAX_ONE_TIME_TTL_SECONDS,
  MIN_ONE_TIME_TTL_SECONDS,
  OneTimeChallenges,
} from '../ra/one-time-challenge.js';
import {
  FailureThrottle,
  storeCounter,
  ThrottledScepService,
  type ThrottleLogger,
  type ThrottleOptions,
} from '../ra/throttle.js';
import type { ScepService } from '../ra/types.js';
import type { Store } from '../store/index.js';
import type { ConsoleSessions } from './console-session.js';
import type { PreparedDataDir } from './data-dir.js';
import { toHttpError } from './http-errors.js';

/** Challenge settings of `startServer` / `scepter serve`. */
export interface ChallengeSettings {
  /** Accept the static challenge (default true; false: `--no-static-challenge`). */
  static?: boolean;
  /** Throttling of challenge failures (default 10 per source and 200 overall per 15 minutes). */
  throttle?: ThrottleOptions;
  /** Bearer token that enables `POST /admin/challenge` (at least 16 characters). */
  adminToken?: string;
  /** Lifetime of a challenge minted by the admin endpoint, seconds (default 3600). */
  ttlSeconds?: number;
}

/** Largest body `POST /admin/challenge` reads (it ignores the body; 413 above this). */
export const ADMIN_CHALLENGE_BODY_LIMIT = 64 * 1024;

/** Shortest admin token accepted. */
export const MIN_ADMIN_TOKEN_LENGTH = 16;

/** The challenge part of the enrollment configuration for a prepared data directory. */
export function challengeConfig(
  prepared: PreparedDataDir,
): Pick<EnrollmentConfig, 'challenges' | 'oneTimeChallengeKey'> {
  return {
    challenges: prepared.challenge.source === 'disabled' ? [] : [prepared.challenge.value],
    oneTimeChallengeKey: prepared.challengeKey.toString('hex'),
  };
}

/**
 * `service` behind the challenge-failure throttle (src/ra/throttle.ts), or as is when disabled.
 * With `store` the counters are kept there (shared by every worker and instance on it).
 */
export function throttledService(
  service: ScepService,
  o: ThrottleOptions | undefined,
  store?: Store,
  logger?: ThrottleLogger,
): ScepService {
  const throttle = new FailureThrottle(o, store ? storeCounter(store) : undefined, logger);
  return throttle.enabled ? new ThrottledScepService(service, throttle) : service;
}

export interface AdminChallengeOptions {
  /** The bearer token; absent: the endpoint answers 404. */
  token?: string;
  store: Store;
  key: Buffer;
  /** Default lifetime, seconds (default 3600). */
  ttlSeconds?: number;
  /** Web console sessions, accepted like the bearer token (src/server/console-session.ts). */
  sessions?: ConsoleSessions;
}

/** Compares bearer tokens in constant time whatever their lengths. */
function tokenMatcher(token: string): (candidate: string) => boolean {
  const m = new SecretMatcher([token]);
  return (candidate) => m.matches(candidate);
}

/**
 * The admin check shared by every `/admin/*` route (this file's challenge endpoint, and
 * src/server/admin-routes.ts, src/server/admin-status-routes.ts): `disabled` when no token is
 * configured (answer 404); `ok` for the right `Authorization: Bearer` token, or — without an
 * Authorization header — for a web console session (src/server/console-session.ts) whose CSRF
 * token matches on a state change; `forbidden` for a console session without the right CSRF
 * token (answer 403); else `unauthorized` (answer 401).
 * Throws RangeError for a token shorter than MIN_ADMIN_TOKEN_LENGTH.
 */
export type AdminAuth = (req: FastifyRequest) => 'disabled' | 'unauthorized' | 'forbidden' | 'ok';

export function adminAuth(token: string | undefined, sessions?: ConsoleSessions): AdminAuth {
  if (token !== undefined && token.length < MIN_ADMIN_TOKEN_LENGTH)
    throw new RangeError(`the admin token must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters`);
  const matches = token !== undefined ? tokenMatcher(token) : undefined;
  return (req) => {
    if (!matches) return 'disabled';
    const auth = req.headers.authorization;
    if (auth === undefined && sessions) {
      const v = sessions.check(req.method, req.headers);
      if (v.kind === 'ok') return 'ok';
      if (v.kind === 'csrf') return 'forbidden';
    }
    const m = typeof auth === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null;
    return m && matches(m[1]!) ? 'ok' : 'unauthorized';
  };
}

/** Whether `candidate` is the admin token (constant time); false when none is configured. */
export function adminTokenMatcher(token: string | undefined): (candidate: string) => boolean {
  return token !== undefined ? tokenMatcher(token) : () => false;
}

/** The `WWW-Authenticate` value of an admin 401. */
export const ADMIN_AUTH_CHALLENGE = 'Bearer realm="scepter admin"';

function text(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).header('content-type', 'text/plain; charset=utf-8').send(`${body}\n`);
}

/** `POST /admin/challenge[?ttl=SECONDS][&format=json]`: one fresh one-time challenge. */
export const adminChallengeRoutes: FastifyPluginAsync<AdminChallengeOptions> = async (app, o) => {
  const auth = adminAuth(o.token, o.sessions);
  const challenges = new OneTimeChallenges(o.key);
  const defaultTtl = o.ttlSeconds ?? 3600;

  // Any request body is ignored (the root hook labels every POST body octet-stream); it is
  // read only after the token check, and never more than ADMIN_CHALLENGE_BODY_LIMIT bytes.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    '*',
    { parseAs: 'buffer', bodyLimit: ADMIN_CHALLENGE_BODY_LIMIT },
    (_r, body, done) => done(null, body),
  );
  // This plugin's errors (a body over the limit) name this plugin's limit, not the root one.
  app.setErrorHandler(async (err, req, reply) => {
    const he = toHttpError(err, { bodyLimit: ADMIN_CHALLENGE_BODY_LIMIT });
    if (he.status >= 500) req.log.error({ err }, 'internal error while serving an admin request');
    req.scepLog = { ...req.scepLog, outcome: 'rejected', detail: he.message };
    return text(reply, he.status, he.message);
  });

  // The token is checked in onRequest: before a single byte of the body is read.
  const checkToken = async (req: FastifyRequest, reply: FastifyReply) => {
    req.scepLog = { operation: 'AdminChallenge' };
    const verdict = auth(req);
    if (verdict === 'ok') return;
    if (verdict === 'disabled') {
      req.scepLog = { outcome: 'rejected', detail: 'no such route' };
      return text(reply, 404, 'not found');
    }
    if (verdict === 'forbidden') {
      req.scepLog = { operation: 'AdminChallenge', outcome: 'rejected', detail: 'missing or wrong CSRF token' };
      return text(reply, 403, 'forbidden: missing or wrong CSRF token');
    }
    req.scepLog = {
      operation: 'AdminChallenge',
      outcome: 'rejected',
      detail: 'missing or wrong bearer token',
    };
    reply.header('www-authenticate', ADMIN_AUTH_CHALLENGE);
    return text(reply, 401, 'unauthorized');
  };

  app.post(
    '/admin/challenge',
    { onRequest: checkToken },
    async (req: FastifyRequest, reply: FastifyReply) => {
      const q = (req.query ?? {}) as Record<string, string | string[] | undefined>;
      const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
      const ttlText = one(q.ttl);
      let ttl = defaultTtl;
      if (ttlText !== undefined) {
        ttl = /^\d{1,9}$/.test(ttlText) ? Number(ttlText) : NaN;
        if (!(ttl >= MIN_ONE_TIME_TTL_SECONDS && ttl <= MAX_ONE_TIME_TTL_SECONDS)) {
          req.scepLog = { operation: 'AdminChallenge', outcome: 'rejected', detail: 'bad ttl' };
          return text(
            reply,
            400,
            `ttl must be whole seconds between ${MIN_ONE_TIME_TTL_SECONDS} and ${MAX_ONE_TIME_TTL_SECONDS}`,
          );
        }
      }
      const [c] = await challenges.mint(o.store, {
        ttlSeconds: ttl,
        meta: { source: 'admin-api', ...(req.ip ? { requester: req.ip } : {}) },
      });
      req.scepLog = { operation: 'AdminChallenge', outcome: 'SUCCESS' };
      const accept = req.headers.accept ?? '';
      if (one(q.format) === 'json' || /\bapplication\/json\b/i.test(accept)) {
        return reply
          .code(200)
          .header('content-type', 'application/json; charset=utf-8')
          .send(JSON.stringify({ challenge: c!.value, expiresAt: c!.expiresAt.toISOString() }));
      }
      return text(reply, 200, c!.value);
    },
  );
};
