/**
 * Challenges on the server side (docs/server.md "Challenges"): which challenges the RA accepts
 * (static and/or one-time), the per-source throttle in front of the SCEP service, and the
 * admin endpoint `POST /admin/challenge` that mints one-time challenges for an MDM.
 *
 * The endpoint exists only with an admin credential (src/server/admin-auth.ts:
 * `--admin-tokens`, `--admin-token-file`, env SCEPTER_ADMIN_TOKEN); without one it answers 404
 * like any unknown path. Tokens are compared in constant time (`SecretMatcher`). Minted
 * values appear only in the response body: never in a log line (the log has the path only).
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
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
import { adminGuard, type AdminAuth } from './admin-auth.js';
import { adminSchema } from './admin-schemas.js';
import { toHttpError } from './http-errors.js';

/** Challenge settings of `startServer` / `scepter serve`. */
export interface ChallengeSettings {
  /** Accept the static challenge (default true; false: `--no-static-challenge`). */
  static?: boolean;
  /** Throttling of challenge failures (default 10 per source and 200 overall per 15 minutes). */
  throttle?: ThrottleOptions;
  /**
   * Bearer token that enables the admin API, `POST /admin/challenge` included (at least 16
   * characters): the token named `admin`. Several named tokens: `StartServerOptions.adminTokens`.
   */
  adminToken?: string;
  /** Lifetime of a challenge minted by the admin endpoint, seconds (default 3600). */
  ttlSeconds?: number;
}

/** Largest body `POST /admin/challenge` reads (it ignores the body; 413 above this). */
export const ADMIN_CHALLENGE_BODY_LIMIT = 64 * 1024;

/** Shortest admin token accepted (src/server/admin-auth.ts). */
export { MIN_ADMIN_TOKEN_LENGTH } from './admin-auth.js';

/**
 * The challenge-failure throttle (src/ra/throttle.ts), or undefined when disabled. With
 * `store` the counters are kept there (shared by every worker and instance on it). The RA asks
 * its `blocked` where a challenge is checked (`challengeLock`); `throttledService` counts the
 * failures.
 */
export function challengeThrottle(
  o: ThrottleOptions | undefined,
  store?: Store,
  logger?: ThrottleLogger,
): FailureThrottle | undefined {
  const throttle = new FailureThrottle(o, store ? storeCounter(store) : undefined, logger);
  return throttle.enabled ? throttle : undefined;
}

/** `service` with its challenge failures counted by `throttle` (as is without one). */
export function throttledService(service: ScepService, throttle: FailureThrottle | undefined): ScepService {
  return throttle ? new ThrottledScepService(service, throttle) : service;
}

export interface AdminChallengeOptions {
  /** Who may call (src/server/admin-auth.ts); disabled: the endpoint answers 404. */
  auth: AdminAuth;
  store: Store;
  key: Buffer;
  /** Default lifetime, seconds (default 3600). */
  ttlSeconds?: number;
}

function text(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).header('content-type', 'text/plain; charset=utf-8').send(`${body}\n`);
}

/** `POST /admin/challenge[?ttl=SECONDS][&format=json]`: one fresh one-time challenge. */
export const adminChallengeRoutes: FastifyPluginAsync<AdminChallengeOptions> = async (app, o) => {
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
    req.scepLog = Object.assign({}, req.scepLog, { outcome: 'rejected' as const, detail: he.message });
    return text(reply, he.status, he.message);
  });

  // The token is checked in onRequest: before a single byte of the body is read.
  const checkToken = adminGuard(o.auth, (req, reply, why) => {
    req.scepLog =
      why === 'disabled'
        ? { outcome: 'rejected', detail: 'no such route' }
        : { operation: 'AdminChallenge', outcome: 'rejected', detail: 'missing or wrong bearer token' };
    return why === 'disabled' ? text(reply, 404, 'not found') : text(reply, 401, 'unauthorized');
  });

  app.setValidatorCompiler(() => () => true);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.post(
    '/admin/challenge',
    { onRequest: checkToken, ...adminSchema('POST /admin/challenge') },
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
        actor: req.admin ?? 'admin',
      });
      req.scepLog = {
        operation: 'AdminChallenge',
        outcome: 'SUCCESS',
        ...(req.admin ? { admin: req.admin } : {}),
      };
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
