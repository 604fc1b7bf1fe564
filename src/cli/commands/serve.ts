/**
 * `scepter serve`: the SCEP server on a data directory. Creates the CA and a challenge on the
 * first start, prints where they are (the generated challenge exactly once), listens, and shuts
 * down gracefully on SIGINT/SIGTERM.
 */
import { readFileSync } from 'node:fs';
import type { LogLevel } from '../../server/app.js';
import { DEFAULT_BODY_LIMIT, startServer, type StartServerOptions } from '../../server/index.js';
import { flag, intOpt, parseOptions, req, str, UsageError, type Command } from '../command.js';
import { resolvePassphrase } from './ca.js';

const USAGE = `Usage: scepter serve --data DIR [options]

Serves SCEP (RFC 8894) on every path (/scep, /cgi-bin/pkiclient.exe, ...). On the first start
DIR gets a new CA (DIR/ca/) and, unless a challenge is configured, a generated challenge
(DIR/challenge, printed once).

  --data DIR              data directory (required)
  --host H                interface to listen on (default 0.0.0.0)
  --port P                port (default 8080; 0 picks a free one)
  --challenge SECRET      challenge password (or env SCEPTER_CHALLENGE; default DIR/challenge)
  --ra                    create the CA with a separate RA certificate (first start only)
  --allow-single-des      accept requests encrypted with single DES (old clients); replies use 3DES
  --validity-days N       validity of issued certificates (default 365)
  --body-limit N          largest request body in bytes (default ${DEFAULT_BODY_LIMIT})
  --db URL                store: sqlite:PATH or postgres://... (or env SCEPTER_DB;
                          default sqlite:DIR/scepter.db)
  --tls-cert F --tls-key F  serve HTTPS with this PEM certificate and key
  --passphrase-file F     CA key passphrase (or env SCEPTER_CA_PASSPHRASE)
  --log-level L           fatal, error, warn, info (default), debug, trace or silent`;

const LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch {
    throw new UsageError(`cannot read ${what} ${path}`);
  }
}

/** Resolves when the process receives SIGINT or SIGTERM. */
function shutdownSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (s: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(s);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

export const serveCommand: Command = {
  name: 'serve',
  summary: 'run the SCEP server (creates a CA and a challenge on first start)',
  usage: USAGE,
  async run(argv) {
    const p = parseOptions(argv, {
      data: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      challenge: { type: 'string' },
      ra: { type: 'boolean' },
      'allow-single-des': { type: 'boolean' },
      'validity-days': { type: 'string' },
      'body-limit': { type: 'string' },
      db: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'passphrase-file': { type: 'string' },
      'log-level': { type: 'string' },
    });
    const data = req(p, 'data');
    const logLevel = (str(p, 'log-level') ?? 'info') as LogLevel;
    if (!LEVELS.includes(logLevel)) throw new UsageError(`--log-level must be one of ${LEVELS.join(', ')}`);
    const tlsCert = str(p, 'tls-cert');
    const tlsKey = str(p, 'tls-key');
    if ((tlsCert === undefined) !== (tlsKey === undefined)) {
      throw new UsageError('--tls-cert and --tls-key go together');
    }
    const challenge = str(p, 'challenge') ?? process.env.SCEPTER_CHALLENGE;
    const db = str(p, 'db') ?? process.env.SCEPTER_DB;
    const passphrase = resolvePassphrase(str(p, 'passphrase-file'));

    const o: StartServerOptions = {
      dataDir: data,
      host: str(p, 'host') ?? '0.0.0.0',
      port: intOpt(p, 'port', 8080, 0, 65535),
      bodyLimit: intOpt(p, 'body-limit', DEFAULT_BODY_LIMIT, 1024, 64 * 1024 * 1024),
      logLevel,
      enrollment: {
        allowSingleDes: flag(p, 'allow-single-des'),
        validityDays: intOpt(p, 'validity-days', 365, 1, 36500),
      },
      ...(flag(p, 'ra') ? { ra: true } : {}),
      ...(challenge !== undefined && challenge !== '' ? { challenge } : {}),
      ...(db !== undefined && db !== '' ? { storeUrl: db } : {}),
      ...(passphrase !== undefined ? { caPassphrase: passphrase } : {}),
      ...(tlsCert !== undefined && tlsKey !== undefined
        ? { tls: { cert: readPem(tlsCert, '--tls-cert'), key: readPem(tlsKey, '--tls-key') } }
        : {}),
    };

    const server = await startServer(o);
    const out = (s: string) => process.stdout.write(s + '\n');
    const d = server.dataDir!;
    const mode = d.loaded.ra ? 'RA mode: the RA certificate signs and decrypts' : 'CA-only mode';
    if (d.createdCa) out(`created a new CA in ${d.loaded.paths.dir} (${mode})`);
    else out(`CA loaded from ${d.loaded.paths.dir} (${mode})`);
    switch (d.challenge.source) {
      case 'created':
        out(`generated challenge password (shown only now; kept in ${d.challenge.file}):`);
        out(`  ${d.challenge.value}`);
        break;
      case 'file':
        out(`challenge loaded from ${d.challenge.file}`);
        break;
      default:
        out('challenge password from configuration');
    }
    if (o.enrollment?.allowSingleDes) out('warning: single-DES requests are accepted (--allow-single-des)');
    out(`store: ${d.storeUrl.startsWith('postgres') ? 'PostgreSQL' : d.storeUrl}`);
    const wildcard = o.host === '0.0.0.0' || o.host === '::';
    out(`SCEP server listening on ${server.url}${wildcard ? ` (all interfaces, port ${server.port})` : ''}`);

    const signal = await shutdownSignal();
    out(`${signal}: finishing in-flight requests and shutting down`);
    await server.close();
    out('stopped');
    return 0;
  },
};
