/**
 * Client keys for the benchmark, kept between runs in .tmp/bench-keys/ (generating RSA keys
 * is slow and untimed anyway). The pool is larger than the server's public-key cache
 * (src/pkix/public-key.ts, 256 entries) and used round-robin, so no request finds its key
 * already parsed — as with distinct devices.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateRsaKeys } from '../../test/helpers/enrollment.js';

/** `count` RSA keys of `bits`, read from (and topped up into) `dir`/rsaBITS.pem. */
export async function benchKeys(dir: string, count: number, bits = 2048): Promise<KeyObject[]> {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `rsa${bits}.pem`);
  const pems = existsSync(file)
    ? (readFileSync(file, 'utf8').match(/-----BEGIN PRIVATE KEY-----[^-]+-----END PRIVATE KEY-----/g) ?? [])
    : [];
  const keys = pems.slice(0, count).map((p) => createPrivateKey(p));
  if (keys.length < count) {
    const fresh = await generateRsaKeys(count - keys.length, bits);
    appendFileSync(file, fresh.map((k) => k.export({ type: 'pkcs8', format: 'pem' }).toString()).join(''), {
      mode: 0o600,
    });
    keys.push(...fresh);
  }
  return keys;
}
