/** Certificate serial numbers (RFC 5280 §4.1.2.2; CA/B BR: ≥64 bits of CSPRNG output). */
import { publicRandomBytes } from '../crypto/random-pool.js';

/**
 * 16 random octets with the top bit cleared (so the INTEGER is positive and fits in 16
 * octets) and never all-zero: 127 bits of entropy. Uniqueness is enforced by the store's
 * unique index; the RA retries on a collision.
 */
export function randomSerial(): Buffer {
  for (;;) {
    const b = publicRandomBytes(16);
    b[0] = b[0]! & 0x7f;
    if (b.some((x) => x !== 0)) return b;
  }
}
