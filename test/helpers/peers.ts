/**
 * Optional peers (micromdm `scepclient`/`scepserver`, `openssl`, PostgreSQL, SoftHSM2, Debian's
 * `chromium` for the web console tests). On a bare
 * machine a test that needs a missing peer is skipped with a printed reason; with
 * SCEPTER_REQUIRE_PEERS=1 (set by .ci/run) a missing peer fails the test instead.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import pg from 'pg';
import type { TestContext } from 'node:test';

const REQUIRE = process.env.SCEPTER_REQUIRE_PEERS === '1';

export function hasCommand(cmd: string): boolean {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
  return r.status === 0;
}

/**
 * Returns true when the peer is there. Otherwise skips the test with a reason (bare machine)
 * or throws (CI), so a missing peer can never pass silently in CI.
 */
export function needPeer(t: TestContext, available: boolean, what: string): boolean {
  if (available) return true;
  const reason = `${what} is not available`;
  if (REQUIRE) throw new Error(`${reason} (SCEPTER_REQUIRE_PEERS=1)`);
  console.log(`# SKIP: ${reason}`);
  t.skip(reason);
  return false;
}

export const PG_URL = process.env.SCEPTER_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Whether the PostgreSQL server at PG_URL answers (2 s connection timeout). */
export async function pgReachable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** SoftHSM2's PKCS#11 module (Debian `softhsm2`). */
export const SOFTHSM_MODULE = process.env.SCEPTER_SOFTHSM_MODULE ?? '/usr/lib/softhsm/libsofthsm2.so';

/**
 * Whether SoftHSM2 can be driven: `softhsm2-util`, its module and the optional `pkcs11js`
 * binding scepter uses.
 */
export function softHsmAvailable(): boolean {
  if (!hasCommand('softhsm2-util') || !existsSync(SOFTHSM_MODULE)) return false;
  try {
    createRequire(import.meta.url)('pkcs11js');
    return true;
  } catch {
    return false;
  }
}

/** Debian's Chromium, driven by playwright-core in the web console tests (test/helpers/browser.ts). */
export const CHROMIUM = process.env.SCEPTER_TEST_CHROMIUM ?? '/usr/bin/chromium';

export function hasChromium(): boolean {
  return existsSync(CHROMIUM);
}
