/**
 * One-time challenge passwords (docs/conformance.md §5.1): high-entropy, short-lived, single-use tokens
 * minted by an operator (`scepter challenge new`) or an MDM (`POST /admin/challenge`).
 *
 * Token (32 bytes as 64 lowercase hex digits): 20 random bytes (160 bits) ‖ expiry (unix
 * seconds, u32 BE) ‖ tag (first 8 bytes of HMAC-SHA256(key, "scepter-otc-tag" ‖ random ‖
 * expiry)). Hex keeps it inside the PrintableString alphabet (Windows clients break on `_`)
 * and never starts with `-`. Tokens minted by older versions, the same 32 bytes as 43
 * base64url characters, are still accepted until they expire. The tag lets the RA recognise its own tokens and read their expiry without a store
 * lookup, so garbage and forgeries cost no database write and an authentic, unexpired token
 * whose consumption fails is known to be a REUSE (a compromise signal, logged).
 *
 * The store keeps only HMAC-SHA256(key, "scepter-otc-id" ‖ token) in hex (`addSecret`), with
 * the expiry; `consumeSecret` marks it used exactly once across workers and instances. The
 * key (32 random bytes) lives in the data directory (`DIR/challenge-key`, 0600), apart from
 * the database: a database dump alone lets nobody test or mint tokens.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { JsonObject, Store } from '../store/index.js';
import { recordAudit } from './audit.js';

const RANDOM_BYTES = 20;
const EXPIRY_BYTES = 4;
const TAG_BYTES = 8;
const TOKEN_BYTES = RANDOM_BYTES + EXPIRY_BYTES + TAG_BYTES;
/** Length of a token (hex digits). */
export const ONE_TIME_CHALLENGE_LENGTH = TOKEN_BYTES * 2;
const TOKEN_RE = /^[0-9a-f]+$/;
/** Length of a token minted by older versions (base64url), still accepted. */
export const LEGACY_ONE_TIME_CHALLENGE_LENGTH = Math.ceil((TOKEN_BYTES * 8) / 6);
const LEGACY_TOKEN_RE = /^[A-Za-z0-9_-]+$/;

/** Longest lifetime of a one-time challenge (30 days). */
export const MAX_ONE_TIME_TTL_SECONDS = 30 * 86_400;
/** Shortest lifetime of a one-time challenge. */
export const MIN_ONE_TIME_TTL_SECONDS = 10;

/** What a candidate challenge is, as far as the token itself tells (no store access). */
export type OneTimeCheck =
  | { kind: 'one-time'; hash: string; expiresAt: Date }
  | { kind: 'expired' }
  /** Not one of our tokens (maybe a static challenge, or garbage). */
  | { kind: 'foreign' };

export interface MintedChallenge {
  /** The challenge password to hand to the device (never stored). */
  value: string;
  expiresAt: Date;
}

export class OneTimeChallenges {
  private readonly key: Buffer;

  /** `key`: the server's challenge key (at least 32 bytes). */
  constructor(key: Buffer | Uint8Array) {
    if (key.length < 32) throw new RangeError('the one-time challenge key must be at least 32 bytes');
    this.key = Buffer.from(key);
  }

  private tag(body: Buffer): Buffer {
    return createHmac('sha256', this.key)
      .update('scepter-otc-tag\0')
      .update(body)
      .digest()
      .subarray(0, TAG_BYTES);
  }

  /** The store key of a token: keyed hash, hex. */
  hash(token: string): string {
    return createHmac('sha256', this.key).update('scepter-otc-id\0').update(token, 'utf8').digest('hex');
  }

  /** A new token valid until `expiresAt` (whole seconds); nothing is stored. */
  create(expiresAt: Date): MintedChallenge {
    const seconds = Math.floor(expiresAt.getTime() / 1000);
    const body = Buffer.alloc(RANDOM_BYTES + EXPIRY_BYTES);
    randomBytes(RANDOM_BYTES).copy(body);
    body.writeUInt32BE(seconds, RANDOM_BYTES);
    const token = Buffer.concat([body, this.tag(body)]);
    return { value: token.toString('hex'), expiresAt: new Date(seconds * 1000) };
  }

  /** Whether `candidate` is one of our tokens and still unexpired (constant-time tag check). */
  check(candidate: string | undefined, now: Date): OneTimeCheck {
    let encoding: 'hex' | 'base64url';
    if (candidate?.length === ONE_TIME_CHALLENGE_LENGTH && TOKEN_RE.test(candidate)) encoding = 'hex';
    else if (candidate?.length === LEGACY_ONE_TIME_CHALLENGE_LENGTH && LEGACY_TOKEN_RE.test(candidate))
      encoding = 'base64url';
    else return { kind: 'foreign' };
    const raw = Buffer.from(candidate, encoding);
    if (raw.length !== TOKEN_BYTES) return { kind: 'foreign' };
    const body = raw.subarray(0, RANDOM_BYTES + EXPIRY_BYTES);
    if (!timingSafeEqual(this.tag(body), raw.subarray(RANDOM_BYTES + EXPIRY_BYTES)))
      return { kind: 'foreign' };
    // Re-encoding must give the same text (base64url decoding ignores stray trailing bits).
    if (raw.toString(encoding) !== candidate) return { kind: 'foreign' };
    const expiresAt = new Date(body.readUInt32BE(RANDOM_BYTES) * 1000);
    if (expiresAt.getTime() <= now.getTime()) return { kind: 'expired' };
    return { kind: 'one-time', hash: this.hash(candidate), expiresAt };
  }

  /**
   * Mints `count` tokens valid for `ttlSeconds` and stores their hashes (durable before this
   * resolves). `meta` is kept with each (who minted it; never the value). One
   * `challenge.minted` audit record names `actor`, the count and the expiry (never a value).
   */
  async mint(
    store: Store,
    o: { ttlSeconds: number; count?: number; meta?: JsonObject; now?: Date; actor: string },
  ): Promise<MintedChallenge[]> {
    const count = o.count ?? 1;
    if (!Number.isInteger(count) || count < 1 || count > 10_000)
      throw new RangeError('count must be between 1 and 10000');
    if (
      !Number.isInteger(o.ttlSeconds) ||
      o.ttlSeconds < MIN_ONE_TIME_TTL_SECONDS ||
      o.ttlSeconds > MAX_ONE_TIME_TTL_SECONDS
    )
      throw new RangeError(
        `the lifetime must be between ${MIN_ONE_TIME_TTL_SECONDS} s and ${MAX_ONE_TIME_TTL_SECONDS / 86_400} days`,
      );
    const expiresAt = new Date((o.now ?? new Date()).getTime() + o.ttlSeconds * 1000);
    const out: MintedChallenge[] = [];
    for (let i = 0; i < count; i++) {
      const c = this.create(expiresAt);
      await store.addSecret(this.hash(c.value), c.expiresAt, { kind: 'one-time-challenge', ...o.meta });
      out.push(c);
    }
    const source = o.meta?.source;
    await recordAudit(store, o.actor, 'challenge.minted', null, {
      count,
      ttlSeconds: o.ttlSeconds,
      expiresAt: expiresAt.toISOString(),
      ...(typeof source === 'string' ? { source } : {}),
    });
    return out;
  }
}
