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

  /** `secrets`: every accepted value (several allow rotation); empty strings are ignored. */
  constructor(secrets: readonly string[]) {
    this.macs = secrets.filter((s) => s.length > 0).map((s) => this.mac(s));
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
    const m = this.mac(candidate);
    let ok = false;
    for (const s of this.macs) ok = timingSafeEqual(m, s) || ok;
    return ok;
  }
}
