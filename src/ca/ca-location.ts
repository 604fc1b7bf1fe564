/**
 * Where a CA's files live in a data directory. The default CA (name `default`) keeps today's
 * place, `DIR/ca/`; every further CA is named and lives in `DIR/cas/NAME/` with the same layout
 * (ca.key, ca.crt, chain.pem, ra.key, ra.crt, next/, previous/: see keystore.ts, rollover.ts,
 * authorities.ts). Every function that takes a CA location accepts a bare data directory for
 * the default CA.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CaError } from './issuer.js';

/** Name of the data directory's default CA (`DIR/ca/`); the store records it as the same text. */
export const DEFAULT_CA_NAME = 'default';

/** A data directory's default CA, or a named CA of a data directory. */
export type CaLocation = string | { dataDir: string; name: string };

/** What a CA name may be: it becomes a directory, a URL path segment and a store value. */
const CA_NAME = /^[a-z0-9](?:[a-z0-9_-]{0,62})$/;

/** Throws CaError unless `name` is a valid CA name (lower-case letters, digits, `-`, `_`; ≤ 63). */
export function checkCaName(name: string): string {
  if (!CA_NAME.test(name)) {
    throw new CaError(
      'a CA name is 1 to 63 lower-case letters, digits, "-" or "_", starting with a letter or digit',
    );
  }
  return name;
}

/** The data directory and CA name of a location (a bare directory: the default CA). */
export function caLocationParts(at: CaLocation): { dataDir: string; name: string } {
  return typeof at === 'string' ? { dataDir: at, name: DEFAULT_CA_NAME } : at;
}

/** The directory holding a CA's files: `DIR/ca/` for the default CA, `DIR/cas/NAME/` otherwise. */
export function caDirectory(at: CaLocation): string {
  const { dataDir, name } = caLocationParts(at);
  return name === DEFAULT_CA_NAME ? join(dataDir, 'ca') : join(dataDir, 'cas', checkCaName(name));
}

/** The CLI options that name this CA (`--data DIR`, plus `--name NAME` for a named CA), for messages. */
export function caCommandArgs(at: CaLocation, flag = '--name'): string {
  const { dataDir, name } = caLocationParts(at);
  return name === DEFAULT_CA_NAME ? `--data ${dataDir}` : `--data ${dataDir} ${flag} ${name}`;
}

/**
 * The CAs of a data directory that exist on disk: `default` when `DIR/ca/` holds a CA
 * certificate or key, then every `DIR/cas/NAME/` that does, sorted by name.
 */
export function listCaNames(dataDir: string): string[] {
  const has = (dir: string): boolean => existsSync(join(dir, 'ca.crt')) || existsSync(join(dir, 'ca.key'));
  const out: string[] = [];
  if (has(join(dataDir, 'ca'))) out.push(DEFAULT_CA_NAME);
  const named = join(dataDir, 'cas');
  if (existsSync(named)) {
    for (const n of readdirSync(named).sort()) {
      if (n !== DEFAULT_CA_NAME && CA_NAME.test(n) && has(join(named, n))) out.push(n);
    }
  }
  return out;
}
