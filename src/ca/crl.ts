/**
 * CRL publication, one CRL per issuing CA (current and retired). The latest CRL of each issuer
 * lives in the store, so every process sees the same one: the server serves it (GetCRL and
 * plain DER over HTTP), and `scepter revoke` in another process regenerates it right after a
 * revocation. A CRL is regenerated when it is missing, on every revocation, and once half of
 * its validity has passed (server timer, or lazily when it is asked for).
 *
 * Race-free numbering across processes: the CRL number is taken BEFORE the revoked list is
 * read, so a CRL that misses a revocation always carries a lower number than the CRL made
 * after that revocation, and `saveCrl` keeps the highest number.
 */
import type { CrlRecord, RevocationReason, Store } from '../store/index.js';
import type { CaSet } from './authorities.js';
import { CaError } from './issuer.js';

/** Default CRL validity (thisUpdate → nextUpdate): 7 days. */
export const DEFAULT_CRL_VALIDITY_SECONDS = 7 * 86_400;

/** RFC 5280 §5.3.1 reason names, as `openssl crl` prints them in camelCase. */
export const REVOCATION_REASONS: Readonly<Record<string, RevocationReason>> = Object.freeze({
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
});

/** The reason code for a name (case-insensitive, `-`/`_` ignored) or a number; undefined if unknown. */
export function parseRevocationReason(s: string): RevocationReason | undefined {
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    return Object.values(REVOCATION_REASONS).find((v) => v === n);
  }
  const want = s.replace(/[-_\s]/g, '').toLowerCase();
  for (const [name, code] of Object.entries(REVOCATION_REASONS)) {
    if (name.toLowerCase() === want) return code;
  }
  return undefined;
}

/** The name of a reason code (`keyCompromise`), or `unspecified`. */
export function revocationReasonName(code: number | null): string {
  for (const [name, c] of Object.entries(REVOCATION_REASONS)) if (c === code) return name;
  return 'unspecified';
}

export interface CrlPublisherOptions {
  store: Store;
  cas: CaSet;
  /** thisUpdate → nextUpdate in seconds (default 7 days). */
  validitySeconds?: number;
  now?: () => Date;
}

/** Builds, stores and hands out the CRL of each issuer. */
export class CrlPublisher {
  readonly validitySeconds: number;
  private readonly now: () => Date;
  private readonly running = new Map<string, Promise<CrlRecord>>();

  constructor(private readonly o: CrlPublisherOptions) {
    this.validitySeconds = o.validitySeconds ?? DEFAULT_CRL_VALIDITY_SECONDS;
    if (!Number.isInteger(this.validitySeconds) || this.validitySeconds < 60)
      throw new RangeError('the CRL validity must be at least 60 seconds');
    this.now = o.now ?? (() => new Date());
  }

  /** Every CA this publisher signs CRLs for (current and retired). */
  get cas(): CaSet {
    return this.o.cas;
  }

  /** Fingerprint of the current CA (the issuer of `/crl`). */
  get currentIssuer(): string {
    return this.o.cas.current.cert.fingerprint;
  }

  /**
   * Signs and stores a fresh CRL for the issuer (CA certificate fingerprint). Concurrent calls
   * for the same issuer in this process share one run.
   */
  regenerate(issuer: string): Promise<CrlRecord> {
    const ca = this.o.cas.byFingerprint(issuer);
    if (!ca) return Promise.reject(new CaError(`no CA with fingerprint ${issuer}`));
    const fp = ca.cert.fingerprint;
    const busy = this.running.get(fp);
    if (busy) return busy;
    const p = (async () => {
      const { store } = this.o;
      const crlNumber = await store.nextCrlNumber(fp); // before listRevoked: see the file comment
      const revoked = await store.listRevoked(fp);
      const thisUpdate = new Date(Math.floor(this.now().getTime() / 1000) * 1000);
      const nextUpdate = new Date(thisUpdate.getTime() + this.validitySeconds * 1000);
      const der = ca.buildCrl({
        revoked: revoked.map((r) => ({
          serial: r.serial,
          revokedAt: r.revokedAt,
          ...(r.reason !== null ? { reason: r.reason } : {}),
        })),
        crlNumber,
        thisUpdate,
        nextUpdate,
      });
      const rec: CrlRecord = { issuer: fp, crlNumber, der, thisUpdate, nextUpdate };
      await store.saveCrl(rec);
      return (await store.latestCrl(fp)) ?? rec;
    })().finally(() => this.running.delete(fp));
    this.running.set(fp, p);
    return p;
  }

  /** True when the CRL is past half of its validity (or past nextUpdate). */
  isStale(crl: CrlRecord): boolean {
    const half = (crl.nextUpdate.getTime() - crl.thisUpdate.getTime()) / 2;
    return this.now().getTime() >= crl.thisUpdate.getTime() + half;
  }

  /**
   * The issuer's current CRL (default: the current CA's), regenerated first when missing or
   * stale. Undefined for an issuer that is not one of ours.
   */
  async current(issuer: string = this.currentIssuer): Promise<CrlRecord | undefined> {
    const ca = this.o.cas.byFingerprint(issuer);
    if (!ca) return undefined;
    const latest = await this.o.store.latestCrl(ca.cert.fingerprint);
    if (latest && !this.isStale(latest)) return latest;
    return this.regenerate(ca.cert.fingerprint);
  }

  /** Regenerates every issuer's CRL that is missing or stale. Returns how many were made. */
  async refreshAll(): Promise<number> {
    let n = 0;
    for (const ca of this.o.cas.all) {
      const latest = await this.o.store.latestCrl(ca.cert.fingerprint);
      if (!latest || this.isStale(latest)) {
        await this.regenerate(ca.cert.fingerprint);
        n++;
      }
    }
    return n;
  }
}
