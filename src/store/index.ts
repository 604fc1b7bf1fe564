/**
 * Store entry point: `openStore(url)` picks the adapter from the URL.
 *   `postgres://…` / `postgresql://…` → PostgreSQL; `sqlite:PATH`, `:memory:` or a plain
 *   file path → SQLite.
 */
import { openPostgresStore, type PostgresOptions } from './postgres.js';
import { openSqliteStore, type SqliteOptions } from './sqlite.js';
import type { Store } from './types.js';

export type StoreOptions = SqliteOptions & PostgresOptions;

/** Opens a store and applies pending migrations. */
export async function openStore(url: string, opts: StoreOptions = {}): Promise<Store> {
  if (/^postgres(ql)?:\/\//i.test(url)) return openPostgresStore(url, opts);
  let path = url;
  if (path.startsWith('sqlite://')) path = path.slice('sqlite://'.length);
  else if (path.startsWith('sqlite:')) path = path.slice('sqlite:'.length);
  if (path === '') throw new TypeError('empty SQLite path');
  return openSqliteStore(path, opts);
}

export * from './types.js';
export * from './errors.js';
export type { SqliteOptions } from './sqlite.js';
export type { PostgresOptions } from './postgres.js';
