/**
 * The public way to run a scepter server in-process (exported from the package root as
 * `startScepServer`). It is a small, plain-data facade over `startServer` (src/server/index.ts):
 * the options a program embedding the server needs, and a handle with the URL and `close`.
 * The server modules (fastify, SQLite, PostgreSQL) are loaded only when it is called. The wider
 * `startServer` options and its `RunningServer` (service, fastify app, metrics, lifecycle) are
 * internal and may change in any release.
 */
import type { LogLevel } from './app.js';

/** Options of {@link startScepServer}. Everything not listed here keeps the `scepter serve` defaults. */
export interface ScepServerOptions {
  /** Data directory: CA (created when missing), generated challenge, default SQLite store. */
  dataDir: string;
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** Port (default 0: any free port; read the bound one from `port`). */
  port?: number;
  /** Static challenge password (default: DATA/challenge, generated on first start). */
  challenge?: string;
  /**
   * A CA created now gets a separate RA certificate unless this is false (CA-only); an
   * existing CA keeps what it has.
   */
  ra?: boolean;
  /** Key size of a CA created now (default 3072). */
  keySize?: 2048 | 3072 | 4096;
  /** Passphrase of the CA key. */
  caPassphrase?: string;
  /** Store URL: `sqlite:PATH` or `postgres://…` (default `sqlite:DATA/scepter.db`). */
  storeUrl?: string;
  /** Engines for PKIOperations: the HTTP thread plus `workers − 1` worker threads (default 1). */
  workers?: number;
  /** PEM certificate and key: serve HTTPS (client certificates are never requested). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Log level of the JSON log on stdout (default `info`; `silent` turns it off). */
  logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Serve Prometheus metrics at `/metrics` (default true). */
  metrics?: boolean;
  /** Bearer token `/metrics` requires (default none). */
  metricsToken?: string;
}

/** A running server started by {@link startScepServer}. */
export interface ScepServer {
  /** The SCEP endpoint URL (`…/scep`; any path under the origin works). */
  readonly url: string;
  /** `http(s)://host:port` without a path. */
  readonly origin: string;
  /** The bound port. */
  readonly port: number;
  /** Stops accepting connections, finishes in-flight requests and closes the store. */
  close(): Promise<void>;
}

/** Starts a SCEP server on a data directory and resolves once the port is bound. */
export async function startScepServer(o: ScepServerOptions): Promise<ScepServer> {
  // Loaded on first use: importing the package (say, for the client) must not load fastify,
  // the SQLite native module or the PostgreSQL driver.
  const { startServer } = await import('./index.js');
  const logLevel: LogLevel | undefined = o.logLevel;
  const s = await startServer({
    dataDir: o.dataDir,
    ...(o.host !== undefined ? { host: o.host } : {}),
    ...(o.port !== undefined ? { port: o.port } : {}),
    ...(o.challenge !== undefined ? { challenge: o.challenge } : {}),
    ...(o.ra !== undefined ? { ra: o.ra } : {}),
    ...(o.keySize !== undefined ? { keySize: o.keySize } : {}),
    ...(o.caPassphrase !== undefined ? { caPassphrase: o.caPassphrase } : {}),
    ...(o.storeUrl !== undefined ? { storeUrl: o.storeUrl } : {}),
    ...(o.workers !== undefined ? { workers: o.workers } : {}),
    ...(o.tls !== undefined ? { tls: o.tls } : {}),
    ...(logLevel !== undefined ? { logLevel } : {}),
    ...(o.metrics !== undefined ? { metrics: o.metrics } : {}),
    ...(o.metricsToken !== undefined ? { metricsToken: o.metricsToken } : {}),
  });
  return { url: s.url, origin: s.origin, port: s.port, close: () => s.close() };
}
