/**
 * Random text safe in an ASN.1 PrintableString and on a command line: letters and digits only
 * (Windows clients put the challengePassword in a PrintableString and break on `_ @ * # ! ~`;
 * a leading `-` reads as an option), drawn uniformly with rejection sampling.
 */
import { randomBytes } from 'node:crypto';

export const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `length` characters from ALPHANUMERIC, uniform (log2(62) ≈ 5.95 bits each). */
export function randomAlphanumeric(length: number): string {
  if (!Number.isInteger(length) || length < 1) throw new RangeError('length must be a positive integer');
  // 248 = 4 × 62: bytes at or above it are dropped so that every character is equally likely.
  const limit = 4 * ALPHANUMERIC.length;
  let out = '';
  while (out.length < length) {
    for (const b of randomBytes(length - out.length + 8)) {
      if (b >= limit) continue;
      out += ALPHANUMERIC[b % ALPHANUMERIC.length];
      if (out.length === length) break;
    }
  }
  return out;
}
