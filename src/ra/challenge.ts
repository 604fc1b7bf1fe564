/**
 * Shared-secret challenge check (RFC 8894 §2.4, rfc8894.md §5.1). The candidate and every
 * configured secret are both run through HMAC-SHA256 under a per-process random key and the
 * MACs compared with `crypto.timingSafeEqual`, so neither the comparison time nor the length of
 * the candidate tells anything about a secret. The secrets themselves are not kept.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Longest challenge accepted (MDM challenges can be long opaque tokens). */
export const MAX_CHALLENGE_LENGTH = 4096;

export class ChallengeVerifier {
  private readonly key = randomBytes(32);
  private readonly macs: Buffer[];

  /** `secrets`: every accepted challenge (several allow rotation); empty strings are ignored. */
  constructor(secrets: readonly string[]) {
    this.macs = secrets.filter((s) => s.length > 0).map((s) => this.mac(s));
  }

  private mac(s: string): Buffer {
    return createHmac('sha256', this.key).update(s, 'utf8').digest();
  }

  /** How many secrets are configured (0: every challenge is refused). */
  get count(): number {
    return this.macs.length;
  }

  /** True when `candidate` equals one of the secrets. Checks every secret, whatever matches. */
  verify(candidate: string | undefined): boolean {
    if (candidate === undefined || candidate.length === 0 || candidate.length > MAX_CHALLENGE_LENGTH) {
      return false;
    }
    const m = this.mac(candidate);
    let ok = false;
    for (const s of this.macs) ok = timingSafeEqual(m, s) || ok;
    return ok;
  }
}
