/**
 * The ONE constant-time comparison of secrets (challenge passwords, bearer tokens): both sides
 * are MACed with HMAC-SHA256 under a random per-instance key and the MACs compared with
 * `timingSafeEqual`, so neither the time nor an early exit reveals how much of a candidate
 * matched or how long the secret is. Every configured secret is checked whatever matches.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export class SecretMatcher {
  private readonly key = randomBytes(32);
  private readonly macs: Buffer[];
  /** Index in the constructor's list of each entry of `macs`. */
  private readonly positions: number[] = [];

  /** `secrets`: every accepted value (several allow rotation); empty strings are ignored. */
  constructor(secrets: readonly string[]) {
    this.macs = [];
    secrets.forEach((s, i) => {
      if (s.length === 0) return;
      this.macs.push(this.mac(s));
      this.positions.push(i);
    });
  }

  private mac(s: string): Buffer {
    return createHmac('sha256', this.key).update(s, 'utf8').digest();
  }

  /** How many secrets are configured (0: nothing matches). */
  get count(): number {
    return this.macs.length;
  }

  /** True when `candidate` equals one of the secrets. */
  matches(candidate: string): boolean {
    return this.indexOf(candidate) >= 0;
  }

  /**
   * Which secret `candidate` equals: its index in the constructor's list (the first when
   * several are equal), or -1. Every secret is compared whatever matches.
   */
  indexOf(candidate: string): number {
    const m = this.mac(candidate);
    let found = -1;
    this.macs.forEach((s, i) => {
      const eq = timingSafeEqual(m, s);
      if (eq && found < 0) found = this.positions[i]!;
    });
    return found;
  }
}
