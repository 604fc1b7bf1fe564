import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';

export type Parsed = {
  values: Record<string, string | boolean | Array<string | boolean> | undefined>;
  positionals: string[];
};

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** The help of one subcommand (`scepter ca rollover --help`), when it has its own. */
  helpFor?(sub: string): string | undefined;
  /** Returns the process exit code. Throw `UsageError` for bad arguments. */
  run(argv: string[]): Promise<number>;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** `util.parseArgs` with errors turned into `UsageError`. */
export function parseOptions(argv: string[], options: Options, allowPositionals = false): Parsed {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true }) as Parsed;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** A string option's value, or undefined. */
export function str(p: Parsed, name: string): string | undefined {
  const v = p.values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A required string option. */
export function req(p: Parsed, name: string): string {
  const v = str(p, name);
  if (v === undefined || v === '') throw new UsageError(`--${name} is required`);
  return v;
}

export function flag(p: Parsed, name: string): boolean {
  return p.values[name] === true;
}

/** An integer option within [min, max], or the default. */
export function intOpt(p: Parsed, name: string, def: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = str(p, name);
  if (v === undefined) return def;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${name} must be a whole number`);
  const n = Number(v);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}`);
  return n;
}

const DURATION_UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400 };

/**
 * Seconds of a duration written `30s`, `10m`, `12h`, `365d`, or a bare number in
 * `bareUnitSeconds` (default days: `365`, what the older `--…-days N` options take; options that
 * always took seconds, like `--timeout`, pass 1). Throws RangeError for anything else.
 */
export function parseDuration(text: string, bareUnitSeconds = 86_400): number {
  const m = /^(\d+)([smhd]?)$/.exec(text.trim());
  if (!m) throw new RangeError(`'${text}' is not a duration (e.g. 30s, 10m, 12h, 365d)`);
  const n = Number(m[1]) * (m[2] ? DURATION_UNITS[m[2]]! : bareUnitSeconds);
  if (!Number.isSafeInteger(n)) throw new RangeError(`'${text}' is too long`);
  return n;
}

/** The shortest exact spelling of a number of seconds: `365d`, `12h`, `10m`, `90s`. */
export function formatDuration(seconds: number): string {
  for (const [unit, n] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
  ] as const) {
    if (seconds >= n && seconds % n === 0) return `${seconds / n}${unit}`;
  }
  return `${seconds}s`;
}

/**
 * A duration option (parseDuration; a bare number in `bareUnitSeconds`, default days) in
 * seconds within [min, max], or the default.
 */
export function durationOpt(
  p: Parsed,
  name: string,
  def: number,
  min: number,
  max: number,
  bareUnitSeconds = 86_400,
): number {
  const v = str(p, name);
  if (v === undefined) return def;
  let n: number;
  try {
    n = parseDuration(v, bareUnitSeconds);
  } catch (e) {
    throw new UsageError(`--${name}: ${(e as Error).message}`);
  }
  if (n < min || n > max)
    throw new UsageError(`--${name} must be between ${formatDuration(min)} and ${formatDuration(max)}`);
  return n;
}

/**
 * A duration option with an older whole-number alias in a fixed unit (`--pending-ttl 72h` or
 * `--pending-ttl-hours 72`): seconds within [min, max], or the default. Giving both is an error.
 */
export function durationOrAlias(
  p: Parsed,
  name: string,
  alias: string,
  aliasUnitSeconds: number,
  def: number,
  min: number,
  max: number,
): number {
  const old = str(p, alias);
  if (old === undefined) return durationOpt(p, name, def, min, max);
  if (str(p, name) !== undefined) throw new UsageError(`give --${name} or --${alias}, not both`);
  if (!/^\d{1,12}$/.test(old)) throw new UsageError(`--${alias} must be a whole number`);
  const n = Number(old) * aliasUnitSeconds;
  if (n < min || n > max)
    throw new UsageError(`--${alias} must be between ${formatDuration(min)} and ${formatDuration(max)}`);
  return n;
}

/** `--crl-validity DURATION` (alias `--crl-validity-hours N`) of `serve` and `revoke`: seconds. */
export function crlValidityOpt(p: Parsed): number {
  return durationOrAlias(p, 'crl-validity', 'crl-validity-hours', 3600, 7 * 86_400, 3600, 3650 * 86_400);
}

/** The first positional argument that is not expected, as a usage error. */
export function noExtra(extra: readonly string[]): void {
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]!}'`);
}

/**
 * THE reader of secrets given as `--<option> FILE` (else env `envName`): the file's first line
 * (an empty one is a usage error), else the variable (empty: undefined). With `token`, the value
 * is trimmed and must be printable ASCII without spaces, at least `token.minLength` characters.
 * The secret never appears in an error message.
 */
export function secretOption(
  p: Parsed,
  option: string,
  envName: string | undefined,
  o: { what: string; token?: { minLength: number } },
): string | undefined {
  const file = str(p, option);
  let secret: string | undefined;
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      throw new UsageError(`cannot read --${option} ${file}`);
    }
    secret = text.split(/\r?\n/)[0] ?? '';
    if (o.token) secret = secret.trim();
    if (secret === '') throw new UsageError(`--${option} is empty`);
  } else {
    const env = envName !== undefined ? process.env[envName] : undefined;
    if (env === undefined || env === '') return undefined;
    secret = o.token ? env.trim() : env;
  }
  if (o.token && (!/^[\x21-\x7e]+$/.test(secret) || secret.length < o.token.minLength))
    throw new UsageError(
      `the ${o.what} must be ${o.token.minLength > 1 ? `at least ${o.token.minLength} ` : ''}printable characters without spaces`,
    );
  return secret;
}
