/**
 * SoftHSM2 tokens for tests: each test gets its own token directory and configuration
 * (SOFTHSM2_CONF points at it while the test runs), tokens are created with the real
 * `softhsm2-util`, and `remove()`/`restore()` take the whole token directory away and back
 * (a token that goes away while the server runs).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { SOFTHSM_MODULE } from './peers.js';
import { tempDir } from './scep-server.js';

export const SOFTHSM_PIN = '4711-pin';
const SO_PIN = '0815-so-pin';

export interface SoftHsm {
  dir: string;
  /** File holding the user PIN (for pin-source=file:…). */
  pinFile: string;
  /** Creates a token with this label and the user PIN SOFTHSM_PIN. */
  initToken(label: string): void;
  /** A PKCS#11 URI for a key on `token` (label `object`, CKA_ID one byte `id`). */
  uri(token: string, object: string, id: number, query?: string): string;
  /** Takes every token away (renames the token directory). */
  remove(): void;
  /** Brings them back. */
  restore(): void;
}

export function softHsm(t: TestContext): SoftHsm {
  const dir = tempDir(t, 'scepter-hsm-');
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens, { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  const pinFile = join(dir, 'pin');
  writeFileSync(pinFile, `${SOFTHSM_PIN}\n`, { mode: 0o600 });
  const before = process.env.SOFTHSM2_CONF;
  process.env.SOFTHSM2_CONF = conf;
  t.after(() => {
    if (before === undefined) delete process.env.SOFTHSM2_CONF;
    else process.env.SOFTHSM2_CONF = before;
  });
  return {
    dir,
    pinFile,
    initToken(label) {
      execFileSync(
        'softhsm2-util',
        ['--init-token', '--free', '--label', label, '--pin', SOFTHSM_PIN, '--so-pin', SO_PIN],
        { env: { ...process.env, SOFTHSM2_CONF: conf }, stdio: 'pipe' },
      );
    },
    uri(token, object, id, query = `pin-source=file:${pinFile}`) {
      const idHex = id.toString(16).padStart(2, '0');
      return `pkcs11:token=${token};object=${object};id=%${idHex}?module-path=${SOFTHSM_MODULE}${query ? `&${query}` : ''}`;
    },
    remove() {
      renameSync(tokens, `${tokens}.away`);
    },
    restore() {
      renameSync(`${tokens}.away`, tokens);
    },
  };
}
