/**
 * Operator commands that work on a server's data directory while the server runs: the store
 * URL (`--db`, env SCEPTER_DB, default `sqlite:DIR/scepter.db` — SQLite in WAL mode lets a
 * second process read and write), and the CAs (current and retired) for signing CRLs.
 */
import { join } from 'node:path';
import { CaSet, loadPreviousCas } from '../../ca/authorities.js';
import { loadCa } from '../../ca/keystore.js';
import { openStore, type Store } from '../../store/index.js';

/** The store URL of a data directory: `--db`, else SCEPTER_DB, else its SQLite file. */
export function storeUrlOf(dataDir: string, db: string | undefined): string {
  const env = process.env.SCEPTER_DB;
  if (db !== undefined && db !== '') return db;
  if (env !== undefined && env !== '') return env;
  return `sqlite:${join(dataDir, 'scepter.db')}`;
}

/** Opens the store, runs `fn`, closes the store. */
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

/** Every CA of the data directory (needs the keys: passphrase when they are encrypted). */
export function loadCaSet(dataDir: string, passphrase: string | undefined): CaSet {
  const loaded = loadCa(dataDir, passphrase);
  return new CaSet(loaded.ca, loadPreviousCas(dataDir, passphrase));
}

/** A fixed-width text table (header + rows). */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
