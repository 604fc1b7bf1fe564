/**
 * Random bytes that are sent in the clear (senderNonces, CBC IVs, certificate serials), taken
 * from a per-thread pool refilled from node's CSPRNG 4 KiB at a time: one `randomFillSync`
 * per ~80 enrollments instead of three per enrollment. Every byte of the pool is handed out
 * at most once (the offset only moves forward until the next refill overwrites the whole
 * pool), and each worker thread loads its own copy of this module, so no two callers, threads
 * or requests ever share bytes. Keys (content-encryption keys, secrets) do not come from here:
 * they keep their own `randomBytes` call, so no key material waits in memory before use.
 */
import { randomBytes, randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
/** Larger requests bypass the pool. */
const MAX_POOLED = 64;

const pool = Buffer.allocUnsafeSlow(POOL_BYTES);
let used = POOL_BYTES;

/** `n` fresh random bytes for a public value (nonce, IV, serial), in a new Buffer (a copy). */
export function publicRandomBytes(n: number): Buffer {
  if (n > MAX_POOLED) return randomBytes(n);
  if (used + n > POOL_BYTES) {
    randomFillSync(pool);
    used = 0;
  }
  const out = Buffer.allocUnsafe(n);
  pool.copy(out, 0, used, used + n);
  used += n;
  return out;
}
