/**
 * The server's data directory on first and later starts:
 *
 *   DIR/ca/          CA (and RA) keys and certificates of the default CA (see src/ca/keystore.ts)
 *   DIR/cas/NAME/    the same for each further, named CA (`scepter ca init --name NAME`;
 *                    src/ca/ca-location.ts)
 *   DIR/challenge    the generated challenge password (32 letters and digits, about 190 bits),
 *                    mode 0600 (only when none is configured)
 *   DIR/challenge-key  key of the one-time challenges (32 random bytes, hex), mode 0600
 *   DIR/scepter.db   the embedded SQLite store (default store URL)
 *
 * A missing CA is created (with an RA unless `ra: false`); a missing challenge is generated
 * once and kept.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileDurably } from '../ca/durable-file.js';
import { randomAlphanumeric } from '../crypto/random-text.js';
import { DEFAULT_CA_NAME, caCommandArgs, checkCaName, type CaLocation } from '../ca/ca-location.js';
import {
  caExists,
  caPaths,
  initCa,
  loadCa,
  type CaKeySize,
  type CaKeyType,
  type InitCaOptions,
  type LoadedCa,
} from '../ca/keystore.js';

export { listCaNames } from '../ca/ca-location.js';

export interface DataDirOptions {
  /**
   * RA or CA-only for a CA created now: undefined (default) and true give it a separate RA
   * certificate (what NDES-style clients such as certmonger expect), false creates the old
   * CA-only layout. An existing CA keeps what it has; true then requires its RA.
   */
  ra?: boolean;
  /** RSA key size of a CA created now (default 3072). */
  keySize?: CaKeySize;
  /** Key type of a CA created now (default 'rsa'; EC needs the RA). */
  caKeyType?: CaKeyType;
  /** CA key passphrase (to create or load encrypted keys). */
  passphrase?: string;
  /** A configured challenge; when given nothing is generated or read from DIR. */
  challenge?: string;
  /** False: no static challenge at all (`--no-static-challenge`); nothing is generated. */
  staticChallenge?: boolean;
  /** Store URL; default `sqlite:DIR/scepter.db`. */
  storeUrl?: string;
}

export interface ChallengeInfo {
  /** The static challenge ('' when disabled). */
  value: string;
  /**
   * 'configured': given by option/env; 'created': generated now; 'file': read from DIR;
   * 'disabled': no static challenge (only one-time challenges are accepted).
   */
  source: 'configured' | 'created' | 'file' | 'disabled';
  /** The file it lives in ('created'/'file'). */
  file?: string;
}

export interface PreparedDataDir {
  dataDir: string;
  loaded: LoadedCa;
  /** True when the CA was created by this call. */
  createdCa: boolean;
  challenge: ChallengeInfo;
  /** Key of the one-time challenges (DIR/challenge-key). */
  challengeKey: Buffer;
  storeUrl: string;
}

/** Length of a generated static challenge (letters and digits: ≈ 190 bits). */
export const STATIC_CHALLENGE_LENGTH = 32;

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
  // Letters and digits only: PrintableString-safe for Windows clients, never starts with `-`.
  const value = randomAlphanumeric(STATIC_CHALLENGE_LENGTH);
  writeFileDurably(file, value + '\n', { mode: 0o600 });
  return { value, source: 'created', file };
}

/** File name of the one-time challenge key inside the data directory. */
export const CHALLENGE_KEY_FILE = 'challenge-key';

/**
 * Reads the one-time challenge key (DIR/challenge-key, 32 bytes as hex), or creates it (0600,
 * never overwritten; a concurrent creator's key wins). Every instance serving one store needs
 * the same key: copy the file along with DIR/ca/.
 */
export function loadOrCreateChallengeKey(dataDir: string): { key: Buffer; created: boolean; file: string } {
  const file = join(dataDir, CHALLENGE_KEY_FILE);
  const read = (): Buffer => {
    if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
    const text = readFileSync(file, 'utf8').trim();
    if (!/^(?:[0-9a-f]{2}){32,}$/i.test(text))
      throw new Error(`${file} does not hold a key of at least 32 bytes in hex`);
    return Buffer.from(text, 'hex');
  };
  if (existsSync(file)) return { key: read(), created: false, file };
  const key = randomBytes(32);
  try {
    writeFileDurably(file, key.toString('hex') + '\n', { mode: 0o600 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return { key: read(), created: false, file };
    throw e;
  }
  return { key, created: true, file };
}

/** How a CA of the data directory is loaded, and created when missing. */
export interface PrepareCaOptions {
  /** RA or CA-only for a CA created now; true also requires an existing CA's RA (see DataDirOptions). */
  ra?: boolean;
  /** RSA key size of a CA created now (default 3072). */
  keySize?: CaKeySize;
  /** Key type of a CA created now (default 'rsa'; EC needs the RA). */
  caKeyType?: CaKeyType;
  /** CA key passphrase (to create or load encrypted keys). */
  passphrase?: string;
  /** False: a missing CA is an error instead of being created (default true). */
  create?: boolean;
}

export interface PreparedCa {
  /** The CA's name (`default`: DIR/ca/). */
  name: string;
  loaded: LoadedCa;
  /** True when the CA was created by this call. */
  created: boolean;
}

/**
 * Loads the CA `name` of a data directory (`default`: DIR/ca/, any other name: DIR/cas/NAME/),
 * creating it first when it is missing (with an RA unless `ra: false`; not with `create: false`).
 * `scepter serve` prepares its default CA here, and a configuration naming further CAs creates
 * each missing one here on first start.
 */
export async function prepareCa(
  dataDir: string,
  name: string,
  o: PrepareCaOptions = {},
): Promise<PreparedCa> {
  const at: CaLocation = { dataDir, name: checkCaName(name) };
  let created = false;
  if (!caExists(at)) {
    if (o.create === false)
      throw new Error(`no CA named ${name} in ${dataDir}: run \`scepter ca init ${caCommandArgs(at)}\``);
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    if (name !== DEFAULT_CA_NAME) mkdirSync(join(dataDir, 'cas'), { recursive: true, mode: 0o700 });
    const init: InitCaOptions = {};
    if (o.ra !== false) init.ra = true;
    if (o.keySize) init.keySize = o.keySize;
    if (o.caKeyType) init.caKeyType = o.caKeyType;
    if (o.passphrase) init.passphrase = o.passphrase;
    await initCa(at, init);
    created = true;
  }
  const loaded = loadCa(at, o.passphrase);
  if (o.ra === true && !loaded.ra) {
    throw new Error(
      `--ra was given but the existing CA in ${caPaths(at).dir} has no RA certificate ` +
        `(create the CA with \`scepter ca init ${caCommandArgs(at)} --ra\`, or start without --ra)`,
    );
  }
  return { name, loaded, created };
}

/** Makes sure DIR holds a (default) CA and a challenge; loads the CA. */
export async function prepareDataDir(dataDir: string, o: DataDirOptions = {}): Promise<PreparedDataDir> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const caOpts: PrepareCaOptions = {};
  if (o.ra !== undefined) caOpts.ra = o.ra;
  if (o.keySize) caOpts.keySize = o.keySize;
  if (o.caKeyType) caOpts.caKeyType = o.caKeyType;
  if (o.passphrase) caOpts.passphrase = o.passphrase;
  const { loaded, created: createdCa } = await prepareCa(dataDir, DEFAULT_CA_NAME, caOpts);
  const challenge: ChallengeInfo =
    o.staticChallenge === false
      ? { value: '', source: 'disabled' }
      : o.challenge !== undefined && o.challenge !== ''
        ? { value: o.challenge, source: 'configured' }
        : loadOrCreateChallenge(dataDir);
  return {
    dataDir,
    loaded,
    createdCa,
    challenge,
    challengeKey: loadOrCreateChallengeKey(dataDir).key,
    storeUrl: o.storeUrl ?? `sqlite:${join(dataDir, 'scepter.db')}`,
  };
}

/**
 * Start-up warnings (one line each, no secrets) for files that hold secrets but can be read by
 * group or others: the data directory, its `ca/` and `cas/` subdirectories (CA keys, challenge
 * files, the SQLite store), and the admin token file. Missing paths are skipped; Windows has no modes.
 */
export function permissionWarnings(o: {
  dataDir: string;
  adminTokenFile?: string;
  adminTokensFile?: string;
}): string[] {
  if (process.platform === 'win32') return [];
  const out: string[] = [];
  const check = (path: string, what: string, fix: string): void => {
    let mode: number;
    try {
      mode = statSync(path).mode;
    } catch {
      return;
    }
    if (mode & 0o044) {
      out.push(
        `${what} ${path} is readable by group or others (mode ${(mode & 0o777).toString(8).padStart(3, '0')}): ${fix}`,
      );
    }
  };
  check(o.dataDir, 'the data directory', `chmod 700 ${o.dataDir}`);
  check(caPaths(o.dataDir).dir, 'the CA directory', `chmod 700 ${caPaths(o.dataDir).dir}`);
  const named = join(o.dataDir, 'cas');
  check(named, 'the directory of the named CAs', `chmod 700 ${named}`);
  if (o.adminTokenFile !== undefined)
    check(o.adminTokenFile, 'the admin token file', `chmod 600 ${o.adminTokenFile}`);
  if (o.adminTokensFile !== undefined)
    check(o.adminTokensFile, 'the admin tokens file', `chmod 600 ${o.adminTokensFile}`);
  return out;
}
