/**
 * Isolated databases for store tests, one per call of `fresh()`: SQLite files in a temp
 * directory, or PostgreSQL schemas at PG_URL (dropped by `cleanup`); `raw` runs SQL outside
 * the store to inspect or plant problems.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { StoreOptions } from '../../src/store/index.js';
import { PG_URL, pgReachable } from './peers.js';

const pgAvailable = await pgReachable();

/** One isolated database: a SQLite file or a PostgreSQL schema. */
export interface Db {
  url: string;
  opts: StoreOptions;
  /** Runs raw SQL (with `?` placeholders) outside the store, to inspect or plant problems. */
  raw(sql: string, params?: unknown[]): Promise<Array<Record<string, unknown>>>;
  /** Runs a script of several statements (no parameters), e.g. an old schema. */
  script(sql: string): Promise<void>;
}

export interface Backend {
  name: 'sqlite' | 'postgres';
  available: () => boolean;
  /** A fresh, empty, isolated database. */
  fresh(): Db;
  cleanup(): Promise<void>;
}

export function sqliteBackend(): Backend {
  const dir = mkdtempSync(join(tmpdir(), 'scepter-store-'));
  let n = 0;
  return {
    name: 'sqlite',
    available: () => true,
    fresh() {
      const file = join(dir, `db${n++}.sqlite`);
      return {
        url: `sqlite:${file}`,
        opts: {},
        async raw(sql, params = []) {
          const db = new Database(file, { timeout: 5000 });
          try {
            const st = db.prepare(sql);
            return st.reader
              ? (st.all(...params) as Array<Record<string, unknown>>)
              : (st.run(...params), []);
          } finally {
            db.close();
          }
        },
        async script(sql) {
          const db = new Database(file, { timeout: 5000 });
          try {
            db.exec(sql);
          } finally {
            db.close();
          }
        },
      };
    },
    async cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function postgresBackend(): Backend {
  const schemas: string[] = [];
  return {
    name: 'postgres',
    available: () => pgAvailable,
    fresh() {
      const schema = `scepter_test_${randomBytes(6).toString('hex')}`;
      schemas.push(schema);
      return {
        url: PG_URL,
        opts: { schema },
        async raw(sql, params = []) {
          const c = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
          await c.connect();
          try {
            let i = 0;
            const r = await c.query(
              sql.replace(/\?/g, () => `$${++i}`),
              params,
            );
            return r.rows as Array<Record<string, unknown>>;
          } finally {
            await c.end();
          }
        },
        async script(sql) {
          const c = new pg.Client({ connectionString: PG_URL });
          await c.connect();
          try {
            await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}; SET search_path = ${schema}; ${sql}`);
          } finally {
            await c.end();
          }
        },
      };
    },
    async cleanup() {
      if (!schemas.length) return;
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      try {
        for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}
