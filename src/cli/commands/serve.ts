/**
 * `scepter serve`: the SCEP server on a data directory. Creates the CA and a challenge on the
 * first start, prints where they are (the generated challenge exactly once), listens, and shuts
 * down gracefully on SIGINT/SIGTERM.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { LogLevel } from '../../server/app.js';
import { permissionWarnings } from '../../server/data-dir.js';
import {
  DEFAULT_BODY_LIMIT,
  LOG_FORMATS,
  startServer,
  type LogFormat,
  type StartServerOptions,
} from '../../server/index.js';
import {
  AdminTokenError,
  checkAdminTokens,
  DEFAULT_ADMIN_NAME,
  parseAdminTokens,
  type AdminToken,
} from '../../server/admin-auth.js';
import {
  durationOpt,
  crlValidityOpt,
  durationOrAlias,
  flag,
  formatDuration,
  intOpt,
  parseOptions,
  req,
  secretOption,
  str,
  UsageError,
  type Command,
  type Parsed,
} from '../command.js';
import { DEFAULT_CLIENT_PROFILE, MAX_VALIDITY_SECONDS, MIN_VALIDITY_SECONDS } from '../../ca/profile.js';
import { DEFAULT_OCSP_VALIDITY_SECONDS, type OcspSettings } from '../../ca/ocsp-responder.js';
import { DEFAULT_OCSP_SIGNER_VALIDITY_SECONDS } from '../../ca/ocsp-signer.js';
import { APPROVAL_MODES, type ApprovalMode } from '../../ra/approval.js';
import type { LifecycleSettings } from '../../server/lifecycle-setup.js';
import { caKeyTypeOpt, resolvePassphrase } from './ca.js';
import { EC_CA_NEEDS_RA, type CaKeyType } from '../../ca/keystore.js';
import { refuseMixedFlags, serveFromConfig } from './serve-config.js';
import { configFromFlags } from '../../config/flags.js';
import { validateConfig } from '../../config/load.js';
import { serverOptions } from '../../config/runtime.js';
import { recordStoreUrl, STORE_FILE } from './data-store.js';
import type { ChallengeSettings } from '../../server/challenges.js';
import { TrustedProxies } from '../../server/client-address.js';
import { MAX_ONE_TIME_TTL_SECONDS, MIN_ONE_TIME_TTL_SECONDS } from '../../ra/one-time-challenge.js';
import { VALIDATION_MODES, type ValidationConfig, type ValidationMode } from '../../ra/validation.js';
import { tuneServerHeapGrowth } from '../heap-growth.js';

const USAGE = `Usage: scepter serve --data DIR [options]
       scepter serve --config FILE --data DIR [--host H] [--port P] [--log-level L]

Serves SCEP (RFC 8894) on every path (/scep, /cgi-bin/pkiclient.exe, ...). On the first start
DIR gets a new CA (DIR/ca/) and, unless a challenge is configured, a generated challenge
(DIR/challenge, printed once).

  --data DIR              data directory (required)
  --config FILE           run from a configuration file (YAML or JSON; docs/configuration.md):
                          profiles at /scep/NAME, reloaded on SIGHUP or \`scepter config reload\`.
                          Only --data, --host, --port and --log-level may be given with it
                          (they override the file); every other setting lives in the file
  --host H                interface to listen on (default 0.0.0.0)
  --port P                port (default 8080; 0 picks a free one)
  --challenge SECRET      challenge password (or env SCEPTER_CHALLENGE; default DIR/challenge)
  --no-static-challenge   accept only one-time challenges (\`scepter challenge new\`, /admin/challenge)
  --challenge-max-failures K  after K challenge failures from one address (IPv6: its /64) within
                          the window, its enrollments are refused unchecked until the window
                          ends (default 10; 0 disables; counted in the store, so shared by all
                          workers and instances)
  --challenge-max-global-failures G  after G failures from all addresses within the window,
                          every initial enrollment is refused until it ends (default 200; 0: none)
  --challenge-window DURATION  throttling window: 30s, 15m, 1h ... (default 15m)
  --trusted-proxy ADDR|CIDR  a reverse proxy whose Forwarded / X-Forwarded-For header gives the
                          client address (right-most untrusted hop); repeatable
  --admin-tokens F        enable the admin API (/admin/*: pending requests, certificates,
                          revocation, one-time challenges, audit) for the named bearer tokens
                          in F: one \`name secret\` per line, # comments; the name is the
                          actor in the audit trail (secrets ≥ 16 characters, never logged)
  --admin-token-file F    one more admin token, named \`admin\`: the bearer token in F (or env
                          SCEPTER_ADMIN_TOKEN; ≥ 16 characters)
  --challenge-ttl DURATION  lifetime of challenges minted by /admin/challenge (default 1h)
  --validate-url URL      external validation webhook: before an initial enrollment is issued,
                          POST its details (the challenge included: use HTTPS) to URL and issue
                          only on 200 {"allow": true}; fails closed (docs/server.md)
  --validate-token-file F send \`Authorization: Bearer <token>\` with the token in F
                          (or env SCEPTER_VALIDATE_TOKEN)
  --validate-timeout DURATION  longest wait for the validator (default 5s)
  --validate-mode M       challenge (default: the validator replaces the local challenge
                          check) or always (local challenge first, then the validator)
  --validate-renewals     send renewals to the validator too (default: not)
  --ca-only               create the CA without a separate RA certificate (first start only;
                          alias --no-ra). By default a new CA gets an RA certificate that
                          signs and decrypts the SCEP messages, as NDES and EJBCA do (certmonger
                          needs it); an existing CA keeps what it has
  --ra                    require the RA certificate (the default for a new CA)
  --ca-key-type T         key of a CA created now: rsa (default), ec-p256 or ec-p384 (EC: with
                          the RA, which stays RSA; refused with --ca-only)
  --allow-single-des      accept requests encrypted with single DES (old clients); replies use 3DES
  --allow-wildcard-san    certify wildcard dNSNames (*.example.com) requested in a CSR (default:
                          refused, see docs/security.md "What the CA refuses to sign")
  --validity DURATION     validity of issued certificates: 30s, 10m, 12h, 365d, or a bare
                          number of days (default 365d; 10s to 100 years; never beyond the
                          CA's own notAfter). notBefore is backdated 300 s for clock skew, at
                          most 10% of the validity
  --validity-days N       the same as --validity N (days)
  --approval MODE         auto (default: a valid challenge issues at once), manual (every
                          request waits for \`scepter pending approve\`; the challenge is only
                          shown to the operator) or challenge-or-manual
  --pending-ttl DURATION  a pending request expires after DURATION (default 7d;
                          --pending-ttl-hours N still works)
  --retry-after N         Retry-After hint in seconds sent with PENDING (default 60); it grows
                          while 100+ requests wait and nobody decides, up to --max-retry-after
  --max-retry-after N     longest Retry-After hint in seconds (default 3600; = --retry-after:
                          fixed)
  --max-pending-per-address N
                          new pending requests one address may queue per minute
                          (default 100; 0: no limit); more get FAILURE badRequest
  --max-open-pending N    open pending requests at most (default 10000; 0: no cap);
                          a new one over it gets HTTP 503 + Retry-After
  --no-renewal            refuse renewals (and do not advertise Renewal)
  --renewal-key K         new: refuse renewals that keep the old key; any (default)
  --renewal-window P      renew only in the last P% of a certificate's lifetime (default 100)
  --renewal-grace DURATION  accept renewals signed by a certificate expired up to DURATION
                          ago (default 0; --renewal-grace-days N still works)
  --renewal-any-subject   allow a renewal to request another subject than the old certificate
  --renewal-any-san       allow a renewal to request subjectAltNames the old certificate lacks
  --renewal-revoke-old    revoke the old certificate (superseded) once renewed
  --crl-validity DURATION CRL nextUpdate (default 7d; --crl-validity-hours N still works);
                          CRLs are re-signed at half-life
  --public-url URL        this server's public base URL: issued certificates get a CRL
                          distribution point URL/crl/<CA fingerprint>.crl and the OCSP
                          responder URL/ocsp (authorityInfoAccess)
  --ocsp-validity DURATION  nextUpdate of OCSP answers for good and revoked certificates
                          (default 1h; 60s to 7d): how long clients and caches may keep them
  --ocsp-signer S         who signs OCSP answers: ca (default: the CA key) or delegated (a
                          short-lived OCSP-signing certificate with a P-256 key held in memory,
                          issued and renewed by the server; docs/server.md "OCSP")
  --ocsp-signer-validity DURATION  validity of the delegated certificate (default 2d; at
                          least 4x --ocsp-validity); renewed at half of it
  --no-ocsp               do not answer OCSP at /ocsp (issued certificates then carry no OCSP URL)
  --body-limit N          largest request body in bytes (default ${DEFAULT_BODY_LIMIT})
  --workers N             threads doing enrollments: the HTTP thread + N-1 workers (default:
                          number of cores, ${availableParallelism()} here; 1: the HTTP thread only)
  --db URL                store: sqlite:PATH or postgres://... (or env SCEPTER_DB;
                          default sqlite:DIR/scepter.db). Recorded in DIR/store.json (without
                          a password) so the operator commands find the same store
  --tls-cert F --tls-key F  serve HTTPS with this PEM certificate and key
  --passphrase-file F     CA key passphrase (or env SCEPTER_CA_PASSPHRASE)
  --log-level L           fatal, error, warn, info (default), debug, trace or silent
  --log-format F          json (default: one JSON object per line on stdout) or text (one
                          human-readable line per event; client-supplied values escaped).
                          This start-up banner goes to stderr either way
  --no-metrics            do not serve Prometheus metrics at /metrics (/healthz and /readyz
                          are always served)
  --metrics-token-file F  /metrics requires \`Authorization: Bearer <token>\` with the token in F`;

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

/** The /metrics bearer token from --metrics-token-file (first line, trimmed). */
function metricsTokenOf(p: ReturnType<typeof parseOptions>): string | undefined {
  if (str(p, 'metrics-token-file') === undefined) return undefined;
  if (flag(p, 'no-metrics')) throw new UsageError('give --no-metrics or --metrics-token-file, not both');
  return secretOption(p, 'metrics-token-file', undefined, {
    what: 'metrics token',
    token: { minLength: 16 },
  });
}

/** The named admin tokens of --admin-tokens FILE (none without it). */
function adminTokensOf(p: ReturnType<typeof parseOptions>): AdminToken[] {
  const file = str(p, 'admin-tokens');
  if (file === undefined) return [];
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UsageError(`cannot read --admin-tokens ${file}`);
  }
  try {
    const tokens = parseAdminTokens(text);
    if (tokens.length === 0) throw new UsageError(`--admin-tokens ${file} holds no token`);
    return tokens;
  } catch (e) {
    if (e instanceof AdminTokenError) throw new UsageError(`--admin-tokens ${file}: ${e.message}`);
    throw e;
  }
}

/** The challenge options of `scepter serve` (static on/off, throttle, admin endpoint). */
function challengeSettings(p: ReturnType<typeof parseOptions>): ChallengeSettings {
  const noStatic = flag(p, 'no-static-challenge');
  if (noStatic && str(p, 'challenge') !== undefined)
    throw new UsageError('give --challenge or --no-static-challenge, not both');
  const adminToken = secretOption(p, 'admin-token-file', 'SCEPTER_ADMIN_TOKEN', {
    what: 'admin token',
    token: { minLength: 16 },
  });
  return {
    ...(noStatic ? { static: false } : {}),
    throttle: {
      maxFailures: intOpt(p, 'challenge-max-failures', 10, 0, 1_000_000),
      maxGlobalFailures: intOpt(p, 'challenge-max-global-failures', 200, 0, 100_000_000),
      windowSeconds: durationOpt(p, 'challenge-window', 900, 1, 86_400),
    },
    ...(adminToken !== undefined ? { adminToken } : {}),
    ttlSeconds: durationOpt(p, 'challenge-ttl', 3600, MIN_ONE_TIME_TTL_SECONDS, MAX_ONE_TIME_TTL_SECONDS),
  };
}

/** The external validation webhook options (--validate-*), or undefined without --validate-url. */
function validationSettings(p: ReturnType<typeof parseOptions>): ValidationConfig | undefined {
  const url = str(p, 'validate-url');
  const others = ['validate-token-file', 'validate-timeout', 'validate-mode'].filter(
    (n) => str(p, n) !== undefined,
  );
  if (url === undefined) {
    if (others.length > 0 || flag(p, 'validate-renewals'))
      throw new UsageError('the --validate-* options need --validate-url');
    return undefined;
  }
  if (!/^https?:\/\/\S+$/.test(url)) throw new UsageError('--validate-url must be an http(s) URL');
  const mode = str(p, 'validate-mode') ?? 'challenge';
  if (!VALIDATION_MODES.includes(mode as ValidationMode))
    throw new UsageError(`--validate-mode must be one of ${VALIDATION_MODES.join(', ')}`);
  const token = secretOption(p, 'validate-token-file', 'SCEPTER_VALIDATE_TOKEN', {
    what: 'validation token',
    token: { minLength: 1 },
  });
  return {
    url,
    mode: mode as ValidationMode,
    timeoutMs: durationOpt(p, 'validate-timeout', 5, 1, 300) * 1000,
    ...(token !== undefined ? { token } : {}),
    ...(flag(p, 'validate-renewals') ? { renewals: true } : {}),
  };
}

/** --validity DURATION, or its older spelling --validity-days N (days). */
function validitySeconds(p: ReturnType<typeof parseOptions>): number {
  const days = str(p, 'validity-days');
  if (days !== undefined) {
    if (str(p, 'validity') !== undefined)
      throw new UsageError('give --validity or --validity-days, not both');
    if (!/^\d+$/.test(days)) throw new UsageError('--validity-days must be a whole number');
  }
  const name = days !== undefined ? 'validity-days' : 'validity';
  return durationOpt(
    p,
    name,
    DEFAULT_CLIENT_PROFILE.validitySeconds,
    MIN_VALIDITY_SECONDS,
    MAX_VALIDITY_SECONDS,
  );
}

/** The lifecycle options of `scepter serve` (approval, renewal, CRL, public URL). */
function lifecycleSettings(p: ReturnType<typeof parseOptions>): LifecycleSettings {
  const mode = str(p, 'approval') ?? 'auto';
  if (!APPROVAL_MODES.includes(mode as ApprovalMode))
    throw new UsageError(`--approval must be one of ${APPROVAL_MODES.join(', ')}`);
  const key = str(p, 'renewal-key') ?? 'any';
  if (key !== 'new' && key !== 'any') throw new UsageError('--renewal-key must be new or any');
  const publicUrl = str(p, 'public-url');
  if (publicUrl !== undefined && !/^https?:\/\/\S+$/.test(publicUrl))
    throw new UsageError('--public-url must be an http(s) URL');
  return {
    approval: {
      mode: mode as ApprovalMode,
      pendingTtlSeconds: durationOrAlias(
        p,
        'pending-ttl',
        'pending-ttl-hours',
        3600,
        7 * 86_400,
        3600,
        3650 * 86_400,
      ),
      retryAfterSeconds: intOpt(p, 'retry-after', 60, 1, 86_400),
      maxRetryAfterSeconds: intOpt(
        p,
        'max-retry-after',
        Math.max(3600, intOpt(p, 'retry-after', 60, 1, 86_400)),
        1,
        86_400,
      ),
      maxPendingPerAddress: intOpt(p, 'max-pending-per-address', 100, 0, 1_000_000),
      maxOpenPending: intOpt(p, 'max-open-pending', 10_000, 0, 100_000_000),
    },
    renewal: {
      enabled: !flag(p, 'no-renewal'),
      key,
      windowPercent: intOpt(p, 'renewal-window', 100, 1, 100),
      graceSeconds: durationOrAlias(p, 'renewal-grace', 'renewal-grace-days', 86_400, 0, 0, 3650 * 86_400),
      sameSubject: !flag(p, 'renewal-any-subject'),
      sameSubjectAltNames: !flag(p, 'renewal-any-san'),
      revokeOld: flag(p, 'renewal-revoke-old'),
    },
    crlValiditySeconds: crlValidityOpt(p),
    ...(publicUrl !== undefined ? { publicUrl } : {}),
    ocsp: ocspSettings(p),
  };
}

/** `--ca-key-type` of a CA created at first start; EC with --ca-only is refused. */
function caKeyTypeOption(p: Parsed): { caKeyType?: CaKeyType } {
  const t = caKeyTypeOpt(p);
  if (t === 'rsa') return {};
  if (flag(p, 'ca-only') || flag(p, 'no-ra')) throw new UsageError(`--ca-key-type ${t}: ${EC_CA_NEEDS_RA}`);
  return { caKeyType: t };
}

/** The OCSP responder options (--ocsp-*, --no-ocsp). */
function ocspSettings(p: ReturnType<typeof parseOptions>): OcspSettings | false {
  const given = ['ocsp-validity', 'ocsp-signer', 'ocsp-signer-validity'].filter(
    (n) => str(p, n) !== undefined,
  );
  if (flag(p, 'no-ocsp')) {
    if (given.length > 0) throw new UsageError(`--no-ocsp and --${given[0]!} do not go together`);
    return false;
  }
  const signer = str(p, 'ocsp-signer') ?? 'ca';
  if (signer !== 'ca' && signer !== 'delegated')
    throw new UsageError('--ocsp-signer must be ca or delegated');
  const validitySeconds = durationOpt(p, 'ocsp-validity', DEFAULT_OCSP_VALIDITY_SECONDS, 60, 7 * 86_400);
  const signerValiditySeconds = durationOpt(
    p,
    'ocsp-signer-validity',
    Math.max(DEFAULT_OCSP_SIGNER_VALIDITY_SECONDS, 4 * validitySeconds),
    4 * validitySeconds,
    366 * 86_400,
  );
  if (signer === 'ca' && str(p, 'ocsp-signer-validity') !== undefined)
    throw new UsageError('--ocsp-signer-validity needs --ocsp-signer delegated');
  return { signer, validitySeconds, ...(signer === 'delegated' ? { signerValiditySeconds } : {}) };
}

/** `--ra` (require the RA), `--ca-only`/`--no-ra` (create without one) or neither (default). */
function raOption(p: Parsed): { ra?: boolean } {
  const caOnly = flag(p, 'ca-only') || flag(p, 'no-ra');
  if (caOnly && flag(p, 'ra')) throw new UsageError('give --ra or --ca-only, not both');
  return caOnly ? { ra: false } : flag(p, 'ra') ? { ra: true } : {};
}

export const serveCommand: Command = {
  name: 'serve',
  summary: 'run the SCEP server (creates a CA and a challenge on first start)',
  usage: USAGE,
  async run(argv) {
    const p = parseOptions(argv, {
      config: { type: 'string' },
      data: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      challenge: { type: 'string' },
      'no-static-challenge': { type: 'boolean' },
      'challenge-max-failures': { type: 'string' },
      'challenge-window': { type: 'string' },
      'challenge-max-global-failures': { type: 'string' },
      'trusted-proxy': { type: 'string', multiple: true },
      'admin-token-file': { type: 'string' },
      'admin-tokens': { type: 'string' },
      'challenge-ttl': { type: 'string' },
      'validate-url': { type: 'string' },
      'validate-token-file': { type: 'string' },
      'validate-timeout': { type: 'string' },
      'validate-mode': { type: 'string' },
      'validate-renewals': { type: 'boolean' },
      ra: { type: 'boolean' },
      'ca-only': { type: 'boolean' },
      'ca-key-type': { type: 'string' },
      'no-ra': { type: 'boolean' },
      'allow-single-des': { type: 'boolean' },
      'allow-wildcard-san': { type: 'boolean' },
      validity: { type: 'string' },
      'validity-days': { type: 'string' },
      approval: { type: 'string' },
      'pending-ttl': { type: 'string' },
      'pending-ttl-hours': { type: 'string' },
      'retry-after': { type: 'string' },
      'max-retry-after': { type: 'string' },
      'max-pending-per-address': { type: 'string' },
      'max-open-pending': { type: 'string' },
      'no-renewal': { type: 'boolean' },
      'renewal-key': { type: 'string' },
      'renewal-window': { type: 'string' },
      'renewal-grace': { type: 'string' },
      'renewal-grace-days': { type: 'string' },
      'renewal-any-subject': { type: 'boolean' },
      'renewal-any-san': { type: 'boolean' },
      'renewal-revoke-old': { type: 'boolean' },
      'crl-validity': { type: 'string' },
      'crl-validity-hours': { type: 'string' },
      'public-url': { type: 'string' },
      'ocsp-validity': { type: 'string' },
      'ocsp-signer': { type: 'string' },
      'ocsp-signer-validity': { type: 'string' },
      'no-ocsp': { type: 'boolean' },
      'body-limit': { type: 'string' },
      db: { type: 'string' },
      workers: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'passphrase-file': { type: 'string' },
      'log-level': { type: 'string' },
      'log-format': { type: 'string' },
      'no-metrics': { type: 'boolean' },
      'metrics-token-file': { type: 'string' },
    });
    const data = req(p, 'data');
    // Before the server allocates anything: fewer, spaced-out full collections (src/cli/heap-growth.ts).
    tuneServerHeapGrowth();
    const configFile = str(p, 'config');
    if (configFile !== undefined) {
      refuseMixedFlags(Object.keys(p.values));
      const level = str(p, 'log-level');
      if (level !== undefined && !LEVELS.includes(level as LogLevel))
        throw new UsageError(`--log-level must be one of ${LEVELS.join(', ')}`);
      const format = str(p, 'log-format');
      if (format !== undefined && !LOG_FORMATS.includes(format as LogFormat))
        throw new UsageError(`--log-format must be one of ${LOG_FORMATS.join(', ')}`);
      return serveFromConfig(
        {
          file: configFile,
          dataDir: data,
          overrides: {
            ...(str(p, 'host') !== undefined ? { host: str(p, 'host')! } : {}),
            ...(str(p, 'port') !== undefined ? { port: intOpt(p, 'port', 8080, 0, 65535) } : {}),
            ...(level !== undefined ? { logLevel: level } : {}),
            ...(format !== undefined ? { logFormat: format } : {}),
          },
        },
        shutdownSignal(),
      );
    }
    const logLevel = (str(p, 'log-level') ?? 'info') as LogLevel;
    if (!LEVELS.includes(logLevel)) throw new UsageError(`--log-level must be one of ${LEVELS.join(', ')}`);
    const logFormat = (str(p, 'log-format') ?? 'json') as LogFormat;
    if (!LOG_FORMATS.includes(logFormat))
      throw new UsageError(`--log-format must be one of ${LOG_FORMATS.join(', ')}`);
    const tlsCert = str(p, 'tls-cert');
    const tlsKey = str(p, 'tls-key');
    if ((tlsCert === undefined) !== (tlsKey === undefined)) {
      throw new UsageError('--tls-cert and --tls-key go together');
    }
    const challenge = str(p, 'challenge') ?? process.env.SCEPTER_CHALLENGE;
    const db = str(p, 'db') ?? process.env.SCEPTER_DB;
    const passphrase = resolvePassphrase(str(p, 'passphrase-file'));
    const lifecycle = lifecycleSettings(p);
    const validity = validitySeconds(p);
    const challenges = challengeSettings(p);
    const metricsToken = metricsTokenOf(p);
    const adminTokens = adminTokensOf(p);
    if (challenges.adminToken !== undefined) {
      try {
        checkAdminTokens([...adminTokens, { name: DEFAULT_ADMIN_NAME, secret: challenges.adminToken }]);
      } catch (e) {
        if (e instanceof AdminTokenError)
          throw new UsageError(`--admin-token-file with --admin-tokens: ${e.message}`);
        throw e;
      }
    }
    const validation = validationSettings(p);
    const tp = p.values['trusted-proxy'];
    const trustedProxies = Array.isArray(tp) ? tp.filter((x): x is string => typeof x === 'string') : [];
    if (trustedProxies.length) {
      try {
        new TrustedProxies(trustedProxies);
      } catch (e) {
        throw new UsageError(`--trusted-proxy: ${(e as Error).message}`);
      }
    }

    if (tlsCert !== undefined) readPem(tlsCert, '--tls-cert');
    if (tlsKey !== undefined) readPem(tlsKey, '--tls-key');
    // The flags as a configuration object: the same checks and mapping as a file (one profile,
    // `default`, on every path).
    const raFlag = raOption(p).ra;
    const config = validateConfig(
      configFromFlags({
        host: str(p, 'host') ?? '0.0.0.0',
        port: intOpt(p, 'port', 8080, 0, 65535),
        bodyLimit: intOpt(p, 'body-limit', DEFAULT_BODY_LIMIT, 1024, 64 * 1024 * 1024),
        logLevel,
        logFormat,
        workers: intOpt(p, 'workers', availableParallelism(), 1, 256),
        ...(tlsCert !== undefined && tlsKey !== undefined ? { tls: { cert: tlsCert, key: tlsKey } } : {}),
        trustedProxies,
        ...(lifecycle.publicUrl !== undefined ? { publicUrl: lifecycle.publicUrl } : {}),
        metrics: !flag(p, 'no-metrics'),
        ...(metricsToken !== undefined ? { metricsToken } : {}),
        ...(challenges.adminToken !== undefined ? { adminToken: challenges.adminToken } : {}),
        ...(adminTokens.length > 0 ? { adminTokens } : {}),
        ...(challenges.ttlSeconds !== undefined ? { challengeTtlSeconds: challenges.ttlSeconds } : {}),
        ...(db !== undefined && db !== '' ? { storeUrl: db } : {}),
        ...(passphrase !== undefined ? { caPassphrase: passphrase } : {}),
        ...(raFlag !== undefined ? { ra: raFlag } : {}),
        throttle: challenges.throttle ?? {},
        ...(lifecycle.crlValiditySeconds !== undefined
          ? { crlValiditySeconds: lifecycle.crlValiditySeconds }
          : {}),
        staticChallenge: challenges.static !== false,
        allowSingleDes: flag(p, 'allow-single-des'),
        allowWildcards: flag(p, 'allow-wildcard-san'),
        validitySeconds: validity,
        ...(validation ? { validation } : {}),
        approval: lifecycle.approval ?? {},
        renewal: lifecycle.renewal ?? {},
        ...(lifecycle.ocsp !== undefined ? { ocsp: lifecycle.ocsp } : {}),
      }),
      'serve flags',
    );
    const o: StartServerOptions = {
      ...serverOptions(config, data, 'flags'),
      // A --challenge (or SCEPTER_CHALLENGE) stands in for DIR/challenge, as before.
      ...caKeyTypeOption(p),
      ...(challenge !== undefined && challenge !== '' ? { challenge } : {}),
    };
    const allowSingleDes = flag(p, 'allow-single-des');
    const allowWildcards = flag(p, 'allow-wildcard-san');

    const server = await startServer(o);
    // The banner goes to stderr: stdout carries the log lines only (JSON or text).
    const out = (s: string) => process.stderr.write(s + '\n');
    const d = server.dataDir!;
    // So `scepter pending/certs/challenge/revoke --data DIR` open this store without --db.
    try {
      recordStoreUrl(data, d.storeUrl);
    } catch (e) {
      out(`warning: cannot record the store URL in ${data}/${STORE_FILE}: ${(e as Error).message}`);
    }
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
      case 'disabled':
        out('static challenge disabled (--no-static-challenge): one-time challenges only');
        break;
      default:
        out('challenge password from configuration');
    }
    const admins = [
      ...adminTokens.map((t) => t.name),
      ...(challenges.adminToken !== undefined ? [DEFAULT_ADMIN_NAME] : []),
    ];
    out(
      `one-time challenges: \`scepter challenge new --data ${data}\`${admins.length ? `, POST ${server.origin}/admin/challenge (bearer token)` : ''}`,
    );
    out(
      admins.length
        ? `admin API: ${server.origin}/admin/ for ${admins.length} named token${admins.length > 1 ? 's' : ''} (${admins.join(', ')})`
        : 'admin API: off (--admin-tokens FILE to enable)',
    );
    const maxFailures = challenges.throttle?.maxFailures ?? 0;
    out(
      maxFailures > 0
        ? `challenge failures throttled: ${maxFailures} per ${formatDuration(challenges.throttle?.windowSeconds ?? 900)} and address${challenges.throttle?.maxGlobalFailures ? `, ${challenges.throttle.maxGlobalFailures} overall` : ''}`
        : 'challenge failures are not throttled (--challenge-max-failures 0)',
    );
    const approval = lifecycle.approval?.mode ?? 'auto';
    if (approval !== 'auto') out(`approval: ${approval} (decide with \`scepter pending --data ${data}\`)`);
    if (validation) {
      const where = new URL(validation.url);
      out(
        `external validation: ${where.origin}${where.pathname} (mode ${validation.mode ?? 'challenge'}, ${validation.token !== undefined ? 'bearer token' : 'no token'}, renewals ${validation.renewals ? 'included' : 'not sent'})`,
      );
      if (where.protocol === 'http:' && !['127.0.0.1', 'localhost', '[::1]'].includes(where.hostname))
        out('warning: --validate-url is plain HTTP: challenges cross the network unencrypted');
    }
    out(`issued certificates are valid for ${formatDuration(validity)}`);
    out(`renewal: ${lifecycle.renewal?.enabled === false ? 'disabled' : 'enabled'}`);
    const ocsp = lifecycle.ocsp;
    out(
      ocsp === false || ocsp === undefined
        ? 'OCSP: off (--no-ocsp)'
        : `OCSP: ${server.origin}/ocsp, signed by ${ocsp.signer === 'delegated' ? 'a delegated responder certificate' : 'the CA key'}, answers valid for ${formatDuration(ocsp.validitySeconds ?? DEFAULT_OCSP_VALIDITY_SECONDS)}`,
    );
    if (allowSingleDes) out('warning: single-DES requests are accepted (--allow-single-des)');
    if (allowWildcards) out('warning: wildcard dNSNames are certified (--allow-wildcard-san)');
    const tokenFile = str(p, 'admin-token-file');
    const tokensFile = str(p, 'admin-tokens');
    for (const w of permissionWarnings({
      dataDir: data,
      ...(tokenFile ? { adminTokenFile: tokenFile } : {}),
      ...(tokensFile ? { adminTokensFile: tokensFile } : {}),
    }))
      out(`warning: ${w}`);
    out(`store: ${d.storeUrl.startsWith('postgres') ? 'PostgreSQL' : d.storeUrl}`);
    out(
      `enrollments: ${o.workers === 1 ? 'in the HTTP thread (--workers 1)' : `the HTTP thread + ${(o.workers ?? 1) - 1} worker thread${(o.workers ?? 1) > 2 ? 's' : ''}`}`,
    );
    if (o.metrics === false) out('metrics: off (--no-metrics); health: /healthz, /readyz');
    else
      out(
        `metrics: ${server.origin}/metrics (${metricsToken !== undefined ? 'bearer token required' : 'open: --metrics-token-file to protect, --no-metrics to disable'}); health: /healthz, /readyz`,
      );
    const wildcard = o.host === '0.0.0.0' || o.host === '::';
    out(`SCEP server listening on ${server.url}${wildcard ? ` (all interfaces, port ${server.port})` : ''}`);

    const signal = await shutdownSignal();
    out(`${signal}: finishing in-flight requests and shutting down`);
    await server.close();
    out('stopped');
    return 0;
  },
};
