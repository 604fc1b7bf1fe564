/**
 * What the operator commands (`pending`, `certs`, `challenge`, `revoke`) share: the options
 * `--data DIR`, `--db URL`, `--json`; finding the server's store; the CAs for signing CRLs; and
 * safe text output (every value a client supplied goes through `escapeText`).
 *
 * The store of a data directory is, in this order: `--db`, env SCEPTER_DB, the URL recorded in
 * DIR/store.json by `scepter serve`, else `sqlite:DIR/scepter.db`. An operator command never
 * creates a store: a missing data directory or SQLite file is an error (exit 1), so a typo in
 * `--data` cannot mint challenges into, or report "nothing found" from, a new empty database.
 */
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CaSet, loadPreviousCas } from '../../ca/authorities.js';
import { DEFAULT_CA_NAME } from '../../ca/ca-location.js';
import { loadCa } from '../../ca/keystore.js';
import { escapeJsonText, escapeText } from '../../pkix/text.js';
import { openStore, type Store } from '../../store/index.js';
import { str, UsageError, type Parsed } from '../command.js';

/** `parseOptions` entries of the options every operator command takes. */
export const OPERATOR_OPTIONS = {
  data: { type: 'string' },
  db: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** Their help text (appended to each operator command's usage). */
export const OPERATOR_USAGE = `Common options:
  --data DIR        the server's data directory (required; must exist)
  --db URL          store URL; default: env SCEPTER_DB, else the URL \`scepter serve\` recorded
                    in DIR/store.json, else sqlite:DIR/scepter.db (never created here)
  --json            machine-readable output (lists: {"total", "items", "nextCursor"?})

Exit codes: 0 done, 1 failed (not found, wrong state, no such store), 2 usage error.`;

/** The file in a data directory that records the server's store URL. */
export const STORE_FILE = 'store.json';

/** A runtime failure of an operator command (exit 1, one line). */
export class OperatorCliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OperatorCliError';
  }
}

interface StoreFile {
  url: string;
  /** True when the URL had a password, which was left out (give it with PGPASSWORD or --db). */
  passwordOmitted?: boolean;
}

/** `url` without its password (and whether there was one). */
export function redactStoreUrl(url: string): StoreFile {
  if (!/^postgres(ql)?:\/\//i.test(url)) return { url };
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { url: 'postgres://(unparsable URL not recorded)', passwordOmitted: true };
  }
  if (u.password === '') return { url };
  u.password = '';
  return { url: u.toString(), passwordOmitted: true };
}

/**
 * Records the store URL of a data directory (`scepter serve` at start), without a password:
 * SQLite paths are made absolute; a PostgreSQL password is replaced by `passwordOmitted: true`.
 */
export function recordStoreUrl(dataDir: string, url: string): void {
  let rec: StoreFile;
  if (/^sqlite:/i.test(url)) {
    const path = url.replace(/^sqlite:(\/\/)?/i, '');
    rec = { url: `sqlite:${resolve(path)}` };
  } else rec = redactStoreUrl(url);
  const file = join(dataDir, STORE_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(rec, null, 2) + '\n', { mode: 0o644 });
  renameSync(tmp, file);
}

function readStoreFile(dataDir: string): StoreFile | undefined {
  const file = join(dataDir, STORE_FILE);
  if (!existsSync(file)) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    throw new OperatorCliError(`${file} is not valid JSON; fix it or pass --db`);
  }
  const o = v as Partial<StoreFile> | null;
  if (typeof o?.url !== 'string' || o.url === '')
    throw new OperatorCliError(`${file} has no "url"; fix it or pass --db`);
  return { url: o.url, ...(o.passwordOmitted === true ? { passwordOmitted: true } : {}) };
}

/** Throws unless `dataDir` is an existing directory. */
export function checkDataDir(dataDir: string): void {
  let dir = false;
  try {
    dir = statSync(dataDir).isDirectory();
  } catch {
    throw new OperatorCliError(`no data directory ${escapeText(dataDir)} (check --data)`);
  }
  if (!dir) throw new OperatorCliError(`--data ${escapeText(dataDir)} is not a directory`);
}

/**
 * The store URL of a data directory (see the top of this file). Throws `OperatorCliError` when
 * the data directory or the SQLite file does not exist, or the recorded URL needs a password
 * that is not given (PGPASSWORD).
 */
export function storeUrlOf(dataDir: string, db: string | undefined): string {
  checkDataDir(dataDir);
  const env = process.env.SCEPTER_DB;
  let url: string;
  if (db !== undefined && db !== '') url = db;
  else if (env !== undefined && env !== '') url = env;
  else {
    const rec = readStoreFile(dataDir);
    if (rec?.passwordOmitted && !process.env.PGPASSWORD)
      throw new OperatorCliError(
        `the server's store (${rec.url}, recorded in ${join(dataDir, STORE_FILE)}) needs a password: set PGPASSWORD or pass --db`,
      );
    url = rec?.url ?? `sqlite:${join(dataDir, 'scepter.db')}`;
  }
  if (!/^postgres(ql)?:\/\//i.test(url)) {
    const path = url.replace(/^sqlite:(\/\/)?/i, '');
    if (!existsSync(path))
      throw new OperatorCliError(
        `no store at ${escapeText(path)}: start \`scepter serve --data ${escapeText(dataDir)}\` once, or pass --db`,
      );
  }
  return url;
}

/** Opens the data directory's existing store, runs `fn`, closes the store. */
export async function withStore<T>(
  dataDir: string,
  db: string | undefined,
  fn: (s: Store) => Promise<T>,
): Promise<T> {
  const store = await openStore(storeUrlOf(dataDir, db));
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** `--data` (required) and `--db` of parsed operator options. */
export function storeOptions(p: Parsed): { data: string; db: string | undefined } {
  const data = str(p, 'data');
  if (data === undefined || data === '') throw new UsageError('--data is required');
  return { data, db: str(p, 'db') };
}

/**
 * The current and retired certificates of one CA of the data directory (default: the default
 * CA; needs the keys: passphrase when they are encrypted).
 */
export function loadCaSet(dataDir: string, passphrase: string | undefined, caName = DEFAULT_CA_NAME): CaSet {
  const at = { dataDir, name: caName };
  const loaded = loadCa(at, passphrase);
  return new CaSet(loaded.ca, loadPreviousCas(at, passphrase));
}

/** A table cell or output value: client-supplied text escaped, null/empty as `-`. */
export function cell(v: unknown): string {
  if (v === null || v === undefined || v === '') return '-';
  if (Array.isArray(v)) return v.length === 0 ? '-' : v.map((x) => escapeText(String(x))).join(', ');
  return escapeText(String(v));
}

/** A fixed-width text table (header + rows); every cell is escaped. */
export function table(header: string[], rows: string[][]): string {
  const safe = rows.map((r) => r.map((c) => escapeText(c)));
  const widths = header.map((h, i) => Math.max(h.length, ...safe.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...safe.map(line)].join('\n');
}

/** `key value` lines of a record, values escaped (`show` commands). */
export function keyValues(o: Record<string, unknown>, width: number): string {
  return Object.entries(o)
    .map(([k, v]) => `${k.padEnd(width)} ${cell(v)}`)
    .join('\n');
}

/** Pretty JSON for output, terminal-safe (`escapeJsonText`). */
export function safeJson(v: unknown): string {
  return escapeJsonText(JSON.stringify(v, null, 2));
}
