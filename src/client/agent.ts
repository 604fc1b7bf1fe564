/**
 * The certificate agent (certmonger-style): keeps each configured certificate enrolled and
 * renews it once a configured share of its lifetime has passed.
 *
 * Per certificate and pass: no pair on disk → enroll (needs the challenge); pair present and
 * `now ≥ notBefore + renewAt × lifetime` → renew (RenewalReq, or PKCSReq signed by the current
 * certificate), or enroll again when it has already expired; otherwise nothing. New pairs go
 * live through `installGeneration` (files.ts: complete new directory, fsync, consistency
 * check, atomic symlink swap), then the optional hook runs. Errors back off exponentially
 * with ±50% jitter (capped); success schedules the next check at the renewal time (capped by
 * `checkIntervalSeconds`).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { Certificate } from '../pkix/certificate.js';
import {
  ScepClient,
  type EnrollResult,
  type IssuedResult,
  type KeySize,
  type KeyType,
  type ScepClientOptions,
} from './client.js';
import { ScepClientError } from './errors.js';
import { installGeneration, readPair } from './files.js';

export interface AgentCertificateConfig {
  /** Label used in logs and hook environment; default the subject. */
  name: string;
  subject: string;
  sans?: string;
  /** Output directory (key.pem, cert.pem, chain.pem, fullchain.pem, current/). */
  out: string;
  /** Share of the lifetime after which to renew, (0, 1). */
  renewAt: number;
  keySize: KeySize;
  /** Type of generated keys: rsa (default), ec-p256 or ec-p384. */
  keyType: KeyType;
  /** Renew with a fresh key (default true). */
  newKey: boolean;
  /** Shell command run after each new certificate (cwd: out). */
  hook?: string;
  /** Per-certificate challenge, else the agent-wide one. */
  challenge?: string;
}

export interface AgentConfig {
  url: string;
  caFingerprint?: string;
  challenge?: string;
  /** Send the challenge with renewals too (micromdm needs it). Default true. */
  challengeOnRenewal: boolean;
  /** Longest sleep between two checks, seconds. */
  checkIntervalSeconds: number;
  pollIntervalSeconds: number;
  pollTimeoutSeconds: number;
  /** Error backoff: base and cap, seconds. */
  backoffSeconds: number;
  maxBackoffSeconds: number;
  hookTimeoutSeconds: number;
  timeoutMs?: number;
  /** PEM of the CA to trust for an https:// URL (config `tlsCa`: a file, relative to the config). */
  tlsCa?: string;
  certificates: AgentCertificateConfig[];
}

/**
 * `code` of an {@link AgentConfigError}:
 * - `invalid-config`: a field is missing, of the wrong type or out of range;
 * - `unreadable-file`: the config file or a `challengeFile` cannot be read;
 * - `invalid-json`: the config file is not valid JSON;
 * - `missing-challenge`: a challenge source is empty or unset (`challengeEnv`, `challengeFile`),
 *   or an enrollment is needed and no challenge is configured.
 */
export type AgentConfigErrorCode =
  'invalid-config' | 'unreadable-file' | 'invalid-json' | 'missing-challenge';

export class AgentConfigError extends Error {
  readonly code: AgentConfigErrorCode;
  constructor(code: AgentConfigErrorCode, message: string) {
    super(message);
    this.name = 'AgentConfigError';
    this.code = code;
  }
}

type Json = Record<string, unknown>;

function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optStr(o: Json, k: string, where: string): string | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '')
    throw new AgentConfigError('invalid-config', `${where}.${k} must be a non-empty string`);
  return v;
}

function keyTypeField(o: Json, where: string, def: KeyType): KeyType {
  const v = optStr(o, 'keyType', where);
  if (v === undefined) return def;
  if (v !== 'rsa' && v !== 'ec-p256' && v !== 'ec-p384')
    throw new AgentConfigError('invalid-config', `${where}.keyType must be rsa, ec-p256 or ec-p384`);
  return v;
}

function optNum(o: Json, k: string, where: string, def: number, min: number, max: number): number {
  const v = o[k];
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new AgentConfigError('invalid-config', `${where}.${k} must be a number between ${min} and ${max}`);
  }
  return v;
}

function readSecret(o: Json, base: string, where: string, env: NodeJS.ProcessEnv): string | undefined {
  const direct = optStr(o, 'challenge', where);
  const envName = optStr(o, 'challengeEnv', where);
  const file = optStr(o, 'challengeFile', where);
  if ([direct, envName, file].filter((x) => x !== undefined).length > 1) {
    throw new AgentConfigError(
      'invalid-config',
      `${where}: give only one of challenge, challengeEnv, challengeFile`,
    );
  }
  if (envName !== undefined) {
    const v = env[envName];
    if (v === undefined || v === '')
      throw new AgentConfigError('missing-challenge', `${where}.challengeEnv: $${envName} is not set`);
    return v;
  }
  if (file !== undefined) {
    const p = isAbsolute(file) ? file : resolve(base, file);
    let v: string;
    try {
      v = readFileSync(p, 'utf8').replace(/\r?\n$/, '');
    } catch {
      throw new AgentConfigError('unreadable-file', `${where}.challengeFile: cannot read ${p}`);
    }
    if (v === '') throw new AgentConfigError('missing-challenge', `${where}.challengeFile: ${p} is empty`);
    return v;
  }
  return direct;
}

/**
 * Validates a parsed JSON config. Relative `out` and `challengeFile` paths are taken from
 * `baseDir` (the config file's directory). Throws AgentConfigError naming the bad field.
 */
export function parseAgentConfig(
  raw: unknown,
  baseDir: string,
  env: NodeJS.ProcessEnv = process.env,
): AgentConfig {
  if (!isObj(raw)) throw new AgentConfigError('invalid-config', 'the config must be a JSON object');
  const url = optStr(raw, 'url', 'config');
  if (!url || !/^https?:\/\//i.test(url))
    throw new AgentConfigError('invalid-config', 'config.url must be an http(s) URL');
  const certs = raw.certificates;
  if (!Array.isArray(certs) || certs.length === 0)
    throw new AgentConfigError('invalid-config', 'config.certificates must be a non-empty array');
  const defRenewAt = optNum(raw, 'renewAt', 'config', 0.66, 0.01, 0.99);
  const defKeySize = optNum(raw, 'keySize', 'config', 2048, 2048, 4096);
  const defKeyType = keyTypeField(raw, 'config', 'rsa');
  const list: AgentCertificateConfig[] = certs.map((c: unknown, i) => {
    const where = `config.certificates[${i}]`;
    if (!isObj(c)) throw new AgentConfigError('invalid-config', `${where} must be an object`);
    const subject = optStr(c, 'subject', where);
    if (!subject) throw new AgentConfigError('invalid-config', `${where}.subject is required`);
    const out = optStr(c, 'out', where);
    if (!out) throw new AgentConfigError('invalid-config', `${where}.out is required`);
    const keySize = optNum(c, 'keySize', where, defKeySize, 2048, 4096);
    if (![2048, 3072, 4096].includes(keySize))
      throw new AgentConfigError('invalid-config', `${where}.keySize must be 2048, 3072 or 4096`);
    const newKey = c.newKey === undefined ? true : c.newKey;
    if (typeof newKey !== 'boolean')
      throw new AgentConfigError('invalid-config', `${where}.newKey must be true or false`);
    const entry: AgentCertificateConfig = {
      name: optStr(c, 'name', where) ?? subject,
      subject,
      out: isAbsolute(out) ? out : resolve(baseDir, out),
      renewAt: optNum(c, 'renewAt', where, defRenewAt, 0.01, 0.99),
      keySize: keySize as KeySize,
      keyType: keyTypeField(c, where, defKeyType),
      newKey,
    };
    const sans = optStr(c, 'sans', where);
    if (sans !== undefined) entry.sans = sans;
    const hook = optStr(c, 'hook', where);
    if (hook !== undefined) entry.hook = hook;
    const ch = readSecret(c, baseDir, where, env);
    if (ch !== undefined) entry.challenge = ch;
    return entry;
  });
  const cfg: AgentConfig = {
    url,
    challengeOnRenewal: raw.challengeOnRenewal === undefined ? true : raw.challengeOnRenewal === true,
    checkIntervalSeconds: optNum(raw, 'checkIntervalSeconds', 'config', 3600, 1, 86_400),
    pollIntervalSeconds: optNum(raw, 'pollIntervalSeconds', 'config', 30, 1, 86_400),
    pollTimeoutSeconds: optNum(raw, 'pollTimeoutSeconds', 'config', 3600, 0, 7 * 86_400),
    backoffSeconds: optNum(raw, 'backoffSeconds', 'config', 30, 0.1, 86_400),
    maxBackoffSeconds: optNum(raw, 'maxBackoffSeconds', 'config', 3600, 1, 7 * 86_400),
    hookTimeoutSeconds: optNum(raw, 'hookTimeoutSeconds', 'config', 120, 1, 86_400),
    certificates: list,
  };
  const fp = optStr(raw, 'caFingerprint', 'config');
  if (fp !== undefined) cfg.caFingerprint = fp;
  const ch = readSecret(raw, baseDir, 'config', env);
  if (ch !== undefined) cfg.challenge = ch;
  const tlsCa = optStr(raw, 'tlsCa', 'config');
  if (tlsCa !== undefined) {
    const p = isAbsolute(tlsCa) ? tlsCa : resolve(baseDir, tlsCa);
    let pem: string;
    try {
      pem = readFileSync(p, 'latin1');
    } catch {
      throw new AgentConfigError('unreadable-file', `config.tlsCa: cannot read ${p}`);
    }
    if (!pem.includes('-----BEGIN CERTIFICATE-----'))
      throw new AgentConfigError('invalid-config', `config.tlsCa: ${p} holds no PEM certificate`);
    cfg.tlsCa = pem;
  }
  if (raw.timeoutSeconds !== undefined)
    cfg.timeoutMs = optNum(raw, 'timeoutSeconds', 'config', 30, 1, 600) * 1000;
  return cfg;
}

/** Reads and validates a JSON agent config file. */
export function loadAgentConfig(path: string, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new AgentConfigError('unreadable-file', `cannot read ${path}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new AgentConfigError('invalid-json', `${path} is not valid JSON: ${(e as Error).message}`);
  }
  return parseAgentConfig(raw, dirname(resolve(path)), env);
}

/** What one pass did for one certificate. */
export interface AgentOutcome {
  name: string;
  action: 'enrolled' | 'renewed' | 'valid' | 'error';
  /** Serial (hex) and expiry of the certificate now on disk. */
  serial?: string;
  notAfter?: Date;
  /** When the agent will look at this certificate again. */
  nextCheck: Date;
  /** For errors: a one-line reason and the error class name. */
  error?: string;
  errorKind?: string;
  insecureCipher?: 'des';
  hookExitCode?: number | null;
}

export interface AgentEvents {
  /**
   * One line per notable event on the way (safe: never a key or challenge). The result of a
   * pass for a certificate (issued, valid, error and when it is looked at again) is reported
   * once, through `outcome`, not here too.
   */
  log?: (line: string) => void;
  /** Called with each outcome. */
  outcome?: (o: AgentOutcome) => void;
  /** Injected client factory (tests). */
  client?: (o: ScepClientOptions) => ScepClient;
  now?: () => number;
}

/** The renewal moment of a certificate: notBefore + share × lifetime. */
export function renewalTime(cert: Certificate, share: number): Date {
  const nb = cert.notBefore.getTime();
  return new Date(nb + share * (cert.notAfter.getTime() - nb));
}

function jitter(ms: number): number {
  return ms * (0.5 + Math.random());
}

/**
 * Resolves after `ms`, or as soon as `signal` aborts — including when it aborted already
 * (e.g. SIGTERM while a renewal was in flight: the agent must stop after that pass, not sleep
 * until the next check). The abort listener is removed again, so a long-running agent does
 * not pile up one listener per sleep.
 */
function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise<void>((res) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      res();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

interface CertState {
  cfg: AgentCertificateConfig;
  failures: number;
  nextAt: number;
}

/** Keeps the configured certificates enrolled and fresh. */
export class Agent {
  private readonly client: ScepClient;
  private readonly states: CertState[];
  private readonly now: () => number;

  constructor(
    private readonly cfg: AgentConfig,
    private readonly ev: AgentEvents = {},
  ) {
    const opts: ScepClientOptions = { url: cfg.url };
    if (cfg.caFingerprint !== undefined) opts.caFingerprint = cfg.caFingerprint;
    if (cfg.timeoutMs !== undefined) opts.timeoutMs = cfg.timeoutMs;
    if (cfg.tlsCa !== undefined) opts.tlsCa = cfg.tlsCa;
    this.client = ev.client ? ev.client(opts) : new ScepClient(opts);
    this.now = ev.now ?? Date.now;
    this.states = cfg.certificates.map((c) => ({ cfg: c, failures: 0, nextAt: 0 }));
  }

  private log(line: string): void {
    this.ev.log?.(line);
  }

  /** One pass over every certificate (due or not). */
  async runOnce(): Promise<AgentOutcome[]> {
    const out: AgentOutcome[] = [];
    for (const s of this.states) out.push(await this.process(s));
    return out;
  }

  /** Runs until `signal` aborts, processing each certificate when it is due. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const now = this.now();
      for (const s of this.states) {
        if (signal.aborted) return;
        if (s.nextAt <= now) await this.process(s);
      }
      const next = Math.min(...this.states.map((s) => s.nextAt));
      const wait = Math.max(50, Math.min(next - this.now(), this.cfg.checkIntervalSeconds * 1000));
      await sleepUnlessAborted(wait, signal);
    }
  }

  private async process(s: CertState): Promise<AgentOutcome> {
    const c = s.cfg;
    let outcome: AgentOutcome;
    try {
      outcome = await this.step(c);
      s.failures = 0;
    } catch (e) {
      s.failures++;
      const delay = Math.min(
        this.cfg.maxBackoffSeconds * 1000,
        this.cfg.backoffSeconds * 1000 * 2 ** (s.failures - 1),
      );
      const msg = e instanceof Error ? e.message : String(e);
      outcome = {
        name: c.name,
        action: 'error',
        error: msg,
        errorKind: e instanceof ScepClientError ? e.name : e instanceof Error ? e.name : 'Error',
        nextCheck: new Date(this.now() + jitter(delay)),
      };
    }
    s.nextAt = outcome.nextCheck.getTime();
    this.ev.outcome?.(outcome);
    return outcome;
  }

  private nextCheckFor(cert: Certificate, share: number): Date {
    const due = renewalTime(cert, share).getTime();
    const cap = this.now() + this.cfg.checkIntervalSeconds * 1000;
    return new Date(Math.max(this.now() + 1000, Math.min(due, cap)));
  }

  private async step(c: AgentCertificateConfig): Promise<AgentOutcome> {
    const current = await readPair(c.out);
    const challenge = c.challenge ?? this.cfg.challenge;
    let result: EnrollResult;
    let action: 'enrolled' | 'renewed';
    if (current && this.now() < renewalTime(current.certificate, c.renewAt).getTime()) {
      return {
        name: c.name,
        action: 'valid',
        serial: current.certificate.serialHex,
        notAfter: current.certificate.notAfter,
        nextCheck: this.nextCheckFor(current.certificate, c.renewAt),
      };
    }
    if (current && this.now() < current.certificate.notAfter.getTime()) {
      this.log(
        `${c.name}: renewing certificate ${current.certificate.serialHex} (expires ${current.certificate.notAfter.toISOString()})`,
      );
      result = await this.client.renew({
        cert: current.certificate,
        key: current.key,
        newKey: c.newKey,
        keySize: c.keySize,
        keyType: c.keyType,
        subject: c.subject,
        ...(c.sans !== undefined ? { sans: c.sans } : {}),
        ...(challenge !== undefined && this.cfg.challengeOnRenewal ? { challenge } : {}),
      });
      action = 'renewed';
    } else {
      if (challenge === undefined) {
        throw new AgentConfigError(
          'missing-challenge',
          `${c.name}: no valid certificate on disk and no challenge configured to enroll`,
        );
      }
      this.log(`${c.name}: ${current ? 'certificate expired; enrolling again' : 'enrolling'}`);
      result = await this.client.enroll({
        subject: c.subject,
        challenge,
        keySize: c.keySize,
        keyType: c.keyType,
        ...(c.sans !== undefined ? { sans: c.sans } : {}),
      });
      action = 'enrolled';
    }
    let issued: IssuedResult;
    if (result.status === 'pending') {
      this.log(`${c.name}: request ${result.transactionId} is pending approval; polling`);
      issued = await this.client.waitForCertificate(result, {
        intervalMs: this.cfg.pollIntervalSeconds * 1000,
        timeoutMs: this.cfg.pollTimeoutSeconds * 1000,
      });
    } else {
      issued = result;
    }
    if (issued.insecureCipher) this.log(`${c.name}: WARNING: the server answered with single DES (insecure)`);
    await installGeneration(c.out, { key: issued.key, certificate: issued.certificate, chain: issued.chain });
    const outcome: AgentOutcome = {
      name: c.name,
      action,
      serial: issued.certificate.serialHex,
      notAfter: issued.certificate.notAfter,
      nextCheck: this.nextCheckFor(issued.certificate, c.renewAt),
    };
    if (issued.insecureCipher) outcome.insecureCipher = issued.insecureCipher;
    if (c.hook) outcome.hookExitCode = await this.runHook(c);
    return outcome;
  }

  /** The agent's environment without any variable that holds a configured challenge. */
  private hookEnv(c: AgentCertificateConfig): NodeJS.ProcessEnv {
    const secrets = new Set([c.challenge, this.cfg.challenge].filter((x): x is string => x !== undefined));
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && !secrets.has(v) && k !== 'SCEPTER_CHALLENGE') env[k] = v;
    }
    return env;
  }

  private runHook(c: AgentCertificateConfig): Promise<number | null> {
    return new Promise((res) => {
      const child = spawn('/bin/sh', ['-c', c.hook!], {
        cwd: c.out,
        stdio: ['ignore', 'inherit', 'inherit'],
        env: Object.assign({}, this.hookEnv(c), {
          SCEPTER_NAME: c.name,
          SCEPTER_OUT: c.out,
          SCEPTER_CERT: resolve(c.out, 'cert.pem'),
          SCEPTER_KEY: resolve(c.out, 'key.pem'),
          SCEPTER_CHAIN: resolve(c.out, 'chain.pem'),
        }),
      });
      const t = setTimeout(() => child.kill('SIGTERM'), this.cfg.hookTimeoutSeconds * 1000);
      child.on('error', (e) => {
        clearTimeout(t);
        this.log(`${c.name}: hook could not start: ${e.message}`);
        res(null);
      });
      child.on('exit', (code, sig) => {
        clearTimeout(t);
        if (code !== 0) this.log(`${c.name}: hook exited with ${code ?? sig}`);
        res(code);
      });
    });
  }
}
