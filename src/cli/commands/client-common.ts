/**
 * Shared plumbing of the client commands (`enroll`, `renew`, `get*`, `agent`): the common
 * options, the challenge source, human/JSON output and the exit codes.
 *
 * Exit codes: 0 ok · 1 other error · 2 usage (from main.ts) · 3 the server answered FAILURE
 * · 4 still pending when the poll timeout passed · 5 transport error (connect, timeout, HTTP
 * status) · 6 the server's answer was rejected (bad signature, wrong signer/nonce, wrong CA).
 */
import {
  ScepFailureError,
  ScepPendingTimeoutError,
  ScepProtocolError,
  ScepTransportError,
} from '../../client/errors.js';
import { readFileSync } from 'node:fs';
import type { ScepClientOptions } from '../../client/client.js';
import { parseFingerprint } from '../../client/ca-certs.js';
import { durationOpt, intOpt, secretOption, str, UsageError, type parseOptions } from '../command.js';
import { escapeJsonText } from '../../pkix/text.js';

export const EXIT = { ok: 0, other: 1, usage: 2, failure: 3, pending: 4, transport: 5, protocol: 6 } as const;

type Parsed = ReturnType<typeof parseOptions>;

/** parseArgs option specs every client command takes. */
export const COMMON_OPTIONS = {
  url: { type: 'string' },
  'ca-fingerprint': { type: 'string' },
  'ca-identifier': { type: 'string' },
  'tls-ca': { type: 'string' },
  timeout: { type: 'string' },
  retries: { type: 'string' },
  json: { type: 'boolean' },
} as const;

export const COMMON_USAGE = `  --url URL               SCEP endpoint, e.g. http://ca.example/scep (required)
  --ca-fingerprint FP     pin the CA: SHA-256 of its certificate (sha256:abcd… as printed; colons allowed)
  --ca-identifier ID      CA identifier sent as message= with GetCACert/GetCACaps
  --tls-ca FILE           trust this CA (PEM) for an https:// URL instead of the system store
  --timeout DURATION      HTTP timeout per attempt: 30s, 2m (default 30s; a bare number is seconds)
  --retries N             retries of transport errors (default 2)
  --json                  print one JSON object for scripts instead of text`;

export const EXIT_USAGE = `Exit codes: 0 ok, 1 other error, 2 usage, 3 FAILURE from the server, 4 still pending at
--poll-timeout, 5 transport error, 6 the server's answer was rejected (see docs/client.md).`;

/** ScepClient options from the common flags. */
export function clientOptions(p: Parsed): ScepClientOptions {
  const url = str(p, 'url');
  if (!url) throw new UsageError('--url is required');
  if (!/^https?:\/\//i.test(url)) throw new UsageError('--url must start with http:// or https://');
  const o: ScepClientOptions = {
    url,
    timeoutMs: durationOpt(p, 'timeout', 30, 1, 3600, 1) * 1000,
    retries: intOpt(p, 'retries', 2, 0, 10),
  };
  const fp = str(p, 'ca-fingerprint');
  if (fp !== undefined) {
    try {
      parseFingerprint(fp);
    } catch (e) {
      throw new UsageError(`--ca-fingerprint: ${(e as Error).message}`);
    }
    o.caFingerprint = fp;
  }
  const id = str(p, 'ca-identifier');
  if (id !== undefined) o.caIdentifier = id;
  const tlsCa = str(p, 'tls-ca');
  if (tlsCa !== undefined) o.tlsCa = readTlsCa(tlsCa);
  return o;
}

/** The PEM of --tls-ca FILE: readable, with at least one certificate. */
export function readTlsCa(file: string): string {
  let pem: string;
  try {
    pem = readFileSync(file, 'latin1');
  } catch {
    throw new UsageError(`--tls-ca: cannot read ${file}`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw new UsageError(`--tls-ca: ${file} holds no PEM certificate`);
  return pem;
}

/**
 * The challenge: --challenge, else the first line of --challenge-file, else
 * $SCEPTER_CHALLENGE. (Prefer the file or the variable: arguments show up in `ps`.)
 */
export function challengeFrom(p: Parsed): string | undefined {
  const direct = str(p, 'challenge');
  if (direct !== undefined) return direct;
  return secretOption(p, 'challenge-file', 'SCEPTER_CHALLENGE', { what: 'challenge' });
}

/** Writes human text (stdout). */
export function say(line: string): void {
  process.stdout.write(line + '\n');
}

/** Writes a warning or progress line (stderr, so stdout stays clean for data). */
export function warn(line: string): void {
  process.stderr.write(line + '\n');
}

/** Prints a JSON document (Buffers as base64, Dates as ISO strings). */
export function printJson(v: unknown): void {
  process.stdout.write(
    escapeJsonText(
      JSON.stringify(v, (_k, val: unknown) => (val instanceof Date ? val.toISOString() : val), 2),
    ) + '\n',
  );
}

/**
 * Maps a client error to an exit code and reports it (one line of text, or a JSON object
 * `{ ok: false, error, kind, … }` with --json). Errors that are not the client's are rethrown
 * for main.ts to report (exit 1 or 2).
 */
export function reportError(
  e: unknown,
  json: boolean,
  command: string,
  more: Record<string, unknown> = {},
): number {
  let code: number;
  const extra: Record<string, unknown> = { ...more };
  if (e instanceof ScepFailureError) {
    code = EXIT.failure;
    extra.failInfo = e.failInfoName;
    if (e.failInfoText !== undefined) extra.failInfoText = e.failInfoText;
    extra.transactionId = e.transactionId;
  } else if (e instanceof ScepPendingTimeoutError) {
    code = EXIT.pending;
    extra.transactionId = e.transactionId;
    extra.polls = e.polls;
  } else if (e instanceof ScepTransportError) {
    code = EXIT.transport;
    if (e.status !== undefined) extra.httpStatus = e.status;
    extra.timedOut = e.timedOut;
  } else if (e instanceof ScepProtocolError) {
    code = EXIT.protocol;
  } else {
    throw e;
  }
  const err = e as Error;
  if (json) printJson({ ok: false, error: err.message, kind: err.name, exitCode: code, ...extra });
  else warn(`scepter ${command}: ${err.message}`);
  return code;
}
