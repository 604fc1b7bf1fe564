/**
 * Health and metrics routes as a fastify plugin:
 * - `GET /healthz`: liveness, 200 `ok` whenever the process serves HTTP;
 * - `GET /readyz`: readiness, 200 `ready` when the readiness check passes (CA loaded and not
 *   expired, the store answers a trivial query in time), else 503 with a one-line reason;
 * - `GET /metrics` (when a ServerMetrics is given): Prometheus text format 0.0.4, optionally
 *   behind a bearer token (`Authorization: Bearer <token>`, compared in constant time).
 *
 * These requests are logged at debug level only (load balancers and scrapers would flood the
 * log) and are not counted in the request metrics. Static routes take precedence over the SCEP
 * routes' `/*`, so these three paths are the only ones not answered as SCEP.
 */
import { SecretMatcher } from '../crypto/secret-match.js';
import type { FastifyPluginAsync } from 'fastify';
import { METRICS_CONTENT_TYPE, type ServerMetrics } from './metrics.js';
import type { ScepRequestLog } from './scep-routes.js';

/** Resolves to undefined when ready, else a one-line reason. */
export type ReadinessCheck = () => Promise<string | undefined>;

export interface OpsRoutesOptions {
  /** Serve `/metrics` from these metrics (absent: no `/metrics` route). */
  metrics?: ServerMetrics;
  /** Bearer token `/metrics` requires (absent: open). */
  metricsToken?: string;
  /** What `/readyz` checks (absent: ready whenever it serves). */
  readiness?: ReadinessCheck;
  /** Longest wait for the readiness check, ms (default 2000; slower counts as not ready). */
  readinessTimeoutMs?: number;
  /** The configuration version, reported by `/readyz` (line `config: …` and header `scepter-config`). */
  configVersion?: () => string;
}

const TEXT = 'text/plain; charset=utf-8';

const HEALTH_OK: ScepRequestLog = Object.freeze({ operation: 'health', outcome: 'SUCCESS', quiet: true });
const HEALTH_NOT_READY: ScepRequestLog = Object.freeze({
  operation: 'health',
  outcome: 'rejected',
  quiet: true,
});
const METRICS_OK: ScepRequestLog = Object.freeze({ operation: 'metrics', outcome: 'SUCCESS', quiet: true });

/** Runs `check` with a time limit; a throw or a timeout is a reason, never an exception. */
async function runCheck(check: ReadinessCheck, timeoutMs: number): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      check(),
      new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve(`readiness check took longer than ${timeoutMs} ms`), timeoutMs);
      }),
    ]);
  } catch {
    return 'readiness check failed';
  } finally {
    clearTimeout(timer);
  }
}

/** Registers `/healthz`, `/readyz` and (with `metrics`) `/metrics`. */
export const opsRoutes: FastifyPluginAsync<OpsRoutesOptions> = async (app, o) => {
  app.get('/healthz', async (req, reply) => {
    req.scepLog = HEALTH_OK;
    return reply.code(200).header('content-type', TEXT).send('ok\n');
  });

  // Concurrent probes share one check, so a burst of /readyz costs one store query.
  let running: Promise<string | undefined> | undefined;
  let lastReason: string | undefined;
  const timeoutMs = o.readinessTimeoutMs ?? 2000;
  app.get('/readyz', async (req, reply) => {
    let reason: string | undefined;
    if (o.readiness) {
      running ??= runCheck(o.readiness, timeoutMs).finally(() => (running = undefined));
      reason = await running;
    }
    if (reason !== lastReason) {
      // Log transitions only (the requests themselves are debug-level).
      if (reason !== undefined) req.log.warn({ reason }, 'not ready');
      else req.log.info('ready again');
      lastReason = reason;
    }
    const version = o.configVersion?.();
    if (version !== undefined) reply.header('scepter-config', version);
    if (reason === undefined) {
      req.scepLog = HEALTH_OK;
      return reply
        .code(200)
        .header('content-type', TEXT)
        .send(version !== undefined ? `ready\nconfig: ${version}\n` : 'ready\n');
    }
    req.scepLog = HEALTH_NOT_READY;
    return reply
      .code(503)
      .header('content-type', TEXT)
      .send(`not ready: ${reason.replace(/[\r\n]+/g, ' ')}\n`);
  });

  const metrics = o.metrics;
  if (!metrics) return;
  const expected = o.metricsToken !== undefined ? new SecretMatcher([o.metricsToken]) : undefined;
  app.get('/metrics', async (req, reply) => {
    if (expected) {
      const h = req.headers.authorization;
      const m = typeof h === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
      if (!m || !expected.matches(m[1] ?? '')) {
        // Not quiet: failed authentication is worth an info line.
        req.scepLog = { operation: 'metrics', outcome: 'rejected', detail: 'metrics token missing or wrong' };
        return reply
          .code(401)
          .header('www-authenticate', 'Bearer realm="scepter metrics"')
          .header('content-type', TEXT)
          .send('unauthorized\n');
      }
    }
    req.scepLog = METRICS_OK;
    return reply
      .code(200)
      .header('content-type', METRICS_CONTENT_TYPE)
      .send(await metrics.render());
  });
};
