/**
 * The server's data directory on first and later starts:
 *
 *   DIR/ca/          CA (and RA) keys and certificates (see src/ca/keystore.ts)
 *   DIR/challenge    the generated challenge password, mode 0600 (only when none is configured)
 *   DIR/scepter.db   the embedded SQLite store (default store URL)
 *
 * A missing CA is created; a missing challenge is generated once and kept.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { caExists, caPaths, initCa, loadCa, type CaKeySize, type LoadedCa } from '../ca/keystore.js';

export interface DataDirOptions {
  /** Create the CA with a separate RA certificate (only when the CA is created now). */
  ra?: boolean;
  /** RSA key size of a CA created now (default 3072). */
  keySize?: CaKeySize;
  /** CA key passphrase (to create or load encrypted keys). */
  passphrase?: string;
  /** A configured challenge; when given nothing is generated or read from DIR. */
  challenge?: string;
  /** Store URL; default `sqlite:DIR/scepter.db`. */
  storeUrl?: string;
}

export interface ChallengeInfo {
  value: string;
  /** 'configured': given by option/env; 'created': generated now; 'file': read from DIR. */
  source: 'configured' | 'created' | 'file';
  /** The file it lives in ('created'/'file'). */
  file?: string;
}

export interface PreparedDataDir {
  dataDir: string;
  loaded: LoadedCa;
  /** True when the CA was created by this call. */
  createdCa: boolean;
  challenge: ChallengeInfo;
  storeUrl: string;
}

/** File name of the generated challenge inside the data directory. */
export const CHALLENGE_FILE = 'challenge';

/** Reads the persisted challenge, or generates and persists one (0600, never overwritten). */
export function loadOrCreateChallenge(dataDir: string): ChallengeInfo {
  const file = join(dataDir, CHALLENGE_FILE);
  if (existsSync(file)) {
    const mode = statSync(file).mode & 0o077;
    if (mode !== 0) chmodSync(file, 0o600);
    const value = readFileSync(file, 'utf8').trim();
    if (value === '') throw new Error(`${file} is empty; delete it to generate a new challenge`);
    return { value, source: 'file', file };
  }
  const value = randomBytes(24).toString('base64url');
  writeFileSync(file, value + '\n', { mode: 0o600, flag: 'wx' });
  return { value, source: 'created', file };
}

/** Makes sure DIR holds a CA and a challenge; loads the CA. */
export async function prepareDataDir(dataDir: string, o: DataDirOptions = {}): Promise<PreparedDataDir> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  let createdCa = false;
  if (!caExists(dataDir)) {
    await initCa(dataDir, {
      ...(o.ra ? { ra: true } : {}),
      ...(o.keySize ? { keySize: o.keySize } : {}),
      ...(o.passphrase ? { passphrase: o.passphrase } : {}),
    });
    createdCa = true;
  }
  const loaded = loadCa(dataDir, o.passphrase);
  if (o.ra && !loaded.ra) {
    throw new Error(
      `--ra was given but the existing CA in ${caPaths(dataDir).dir} has no RA certificate ` +
        '(create the CA with `scepter ca init --ra`, or start without --ra)',
    );
  }
  const challenge: ChallengeInfo =
    o.challenge !== undefined && o.challenge !== ''
      ? { value: o.challenge, source: 'configured' }
      : loadOrCreateChallenge(dataDir);
  return {
    dataDir,
    loaded,
    createdCa,
    challenge,
    storeUrl: o.storeUrl ?? `sqlite:${join(dataDir, 'scepter.db')}`,
  };
}
