/**
 * The OCSP responder (RFC 6960, with the RFC 5019 lightweight profile): answers the status of
 * certificates issued by our CAs (current and retired) from the store, so every process and
 * every instance on one PostgreSQL answers the same, and a revocation made anywhere (`scepter
 * revoke`, the admin API, a renewal that revokes the old certificate) shows on the next request.
 *
 * Decisions, in order:
 * - an undecodable or out-of-bounds request → malformedRequest (src/pkix/ocsp.ts);
 * - the first CertID's issuer hashes match none of our CAs → unauthorized (RFC 5019 §2.2.3: we
 *   are not authoritative for it); that CA's responder (src/ca/ocsp-signer.ts) signs the answer;
 * - per CertID: a serial that CA issued → good or revoked (time and reason, from the store);
 *   anything else (never issued, issued by another of our CAs, another issuer in the same
 *   request) → unknown (RFC 6960 §2.2).
 *
 * good and revoked carry thisUpdate = now and nextUpdate = now + validity (default 1 h), so
 * clients and HTTP caches may keep them; unknown has no nextUpdate. A request with a nonce is
 * signed afresh (the nonce is inside the signature).
 *
 * Cache: the signature is the whole cost of an answer, so the signed response to a nonce-less,
 * single-certificate request is kept in memory (bounded, least recently added dropped first)
 * and handed out again until half of its validity has passed — but only while the store still
 * says what the cached response says: every request reads the certificate's row (an indexed
 * lookup), so a revocation from any process invalidates it at once.
 */
import { createHash } from 'node:crypto';
import * as r from '../asn1/reader.js';
import type { DigestName } from '../crypto/algorithms.js';
import { wholeSeconds } from '../pkix/certificate-builder.js';
import {
  buildOcspResponse,
  OcspRequestError,
  OcspStatus,
  ocspErrorResponse,
  parseOcspRequest,
  type OcspCertId,
  type OcspResponseStatus,
  type OcspSingleResponse,
} from '../pkix/ocsp.js';
import type { CertificateRecord, Store } from '../store/index.js';
import type { CaSet } from './authorities.js';
import { DEFAULT_CA_NAME } from './ca-location.js';
import type { CertificateAuthority } from './issuer.js';
import {
  DEFAULT_OCSP_SIGNER_VALIDITY_SECONDS,
  OcspSigners,
  type OcspResponderIdentity,
  type OcspSignerMode,
} from './ocsp-signer.js';

/** Default response validity (thisUpdate → nextUpdate): 1 hour. */
export const DEFAULT_OCSP_VALIDITY_SECONDS = 3600;
/** Default number of signed responses kept in memory. */
export const DEFAULT_OCSP_CACHE_ENTRIES = 10_000;

/** OCSP settings of `scepter serve` (plain data). */
export interface OcspSettings {
  /** thisUpdate → nextUpdate of good and revoked answers, seconds (default 1 h; 60 s to 7 days). */
  validitySeconds?: number;
  /** Who signs: the CA key (default) or a delegated responder certificate (src/ca/ocsp-signer.ts). */
  signer?: OcspSignerMode;
  /** Validity of a delegated responder certificate, seconds (default 2 days). */
  signerValiditySeconds?: number;
}

export interface OcspResponderOptions extends OcspSettings {
  store: Store;
  /**
   * The CAs answered for: one CA's current and retired certificates (the default CA), or a
   * function returning every CA of the data directory by store name (called per request; return
   * the same array while nothing changed, the issuer hashes are cached per array).
   */
  cas: CaSet | (() => readonly OcspIssuer[]);
  /** Signed responses kept in memory (default 10 000; 0: none). */
  cacheEntries?: number;
  now?: () => Date;
}

/** What the responder answered, for the HTTP layer and the request log. */
export interface OcspAnswer {
  /** The OCSPResponse DER. */
  body: Buffer;
  status: OcspResponseStatus;
  /** good / revoked / unknown of each certificate (successful answers). */
  certStatus?: string;
  /** Serial of the (first) certificate asked about, canonical hex. */
  serial?: string;
  /** Why it was not successful (never secret; the request's own fault). */
  detail?: string;
  /**
   * Present when HTTP caches may keep the answer (no nonce; every certificate good or revoked):
   * the answer's thisUpdate and nextUpdate.
   */
  cacheable?: { thisUpdate: Date; nextUpdate: Date };
}

interface CachedResponse {
  body: Buffer;
  /** What the store said when it was signed (`stateOf`). */
  state: string;
  generation: number;
  thisUpdate: Date;
  nextUpdate: Date;
  /** Hand it out until then (half of the validity). */
  until: number;
  certStatus: string;
}

function stateOf(rec: CertificateRecord | null, ca: CertificateAuthority): string {
  if (!rec || rec.issuer !== ca.cert.fingerprint) return 'unknown';
  if (rec.status !== 'revoked') return 'good';
  return `revoked:${rec.revokedAt?.getTime() ?? 0}:${rec.revocationReason ?? ''}`;
}

/** One CA the responder answers for: its name in the store and its current + retired certificates. */
export interface OcspIssuer {
  name: string;
  cas: CaSet;
}

interface IssuerHash {
  name: Buffer;
  key: Buffer;
  ca: CertificateAuthority;
  /** The CA's name in the store. */
  caName: string;
}

/** The OCSP responder of a set of CAs (see the module comment). */
export class OcspResponder {
  readonly validitySeconds: number;
  private readonly now: () => Date;
  private readonly signers: OcspSigners;
  private readonly cache = new Map<string, CachedResponse>();
  private readonly cacheEntries: number;
  /** Issuer name and key hashes of each CA, per hash algorithm. */
  private issuerHashes = new Map<DigestName, IssuerHash[]>();
  private issuersSeen: readonly OcspIssuer[] | undefined;
  private readonly issuers: () => readonly OcspIssuer[];

  constructor(private readonly o: OcspResponderOptions) {
    this.validitySeconds = o.validitySeconds ?? DEFAULT_OCSP_VALIDITY_SECONDS;
    if (
      !Number.isInteger(this.validitySeconds) ||
      this.validitySeconds < 60 ||
      this.validitySeconds > 7 * 86_400
    )
      throw new RangeError('the OCSP response validity must be between 60 seconds and 7 days');
    const signerValidity = o.signerValiditySeconds ?? DEFAULT_OCSP_SIGNER_VALIDITY_SECONDS;
    if (!Number.isInteger(signerValidity) || signerValidity < 4 * this.validitySeconds)
      throw new RangeError('the OCSP signer validity must be at least 4 times the response validity');
    const cas = o.cas;
    if (typeof cas === 'function') this.issuers = cas;
    else {
      const one = [{ name: DEFAULT_CA_NAME, cas }];
      this.issuers = () => one;
    }
    this.now = o.now ?? (() => new Date());
    this.cacheEntries = o.cacheEntries ?? DEFAULT_OCSP_CACHE_ENTRIES;
    this.signers = new OcspSigners({
      mode: o.signer ?? 'ca',
      store: o.store,
      delegatedValiditySeconds: signerValidity,
      responseValiditySeconds: this.validitySeconds,
      now: this.now,
    });
  }

  /** The identity that signs for `ca` (the delegated certificate is issued on first use). */
  responderFor(ca: CertificateAuthority): Promise<OcspResponderIdentity> {
    return this.signers.forCa(ca);
  }

  /**
   * Answers one DER OCSPRequest. Bad input gives an unsuccessful OCSPResponse, never an
   * exception; store and signing faults are thrown (the HTTP layer answers internalError).
   */
  async respond(request: Uint8Array): Promise<OcspAnswer> {
    let req;
    try {
      req = parseOcspRequest(request);
    } catch (e) {
      if (!(e instanceof OcspRequestError)) throw e;
      return {
        body: ocspErrorResponse(OcspStatus.malformedRequest),
        status: OcspStatus.malformedRequest,
        detail: e.message,
      };
    }
    const first = req.certIds[0]!;
    const issuer = this.caOf(first);
    if (!issuer) {
      return {
        body: ocspErrorResponse(OcspStatus.unauthorized),
        status: OcspStatus.unauthorized,
        serial: first.serial,
        detail: 'the issuer is not one of our CAs',
      };
    }
    const ca = issuer.ca;
    const responder = await this.signers.forCa(ca);
    const records = await Promise.all(
      req.certIds.map((id) =>
        this.caOf(id)?.ca === ca ? this.o.store.getCertificate(id.serial, issuer.caName) : null,
      ),
    );
    const states = records.map((rec) => stateOf(rec, ca));
    const cacheKey = req.nonce || req.certIds.length > 1 ? undefined : first.raw.toString('latin1');
    const now = this.now();
    if (cacheKey !== undefined) {
      const hit = this.cache.get(cacheKey);
      if (
        hit &&
        hit.state === states[0] &&
        hit.generation === responder.generation &&
        now.getTime() < hit.until
      )
        return this.answer(hit.body, hit.certStatus, first.serial, hit);
    }

    const thisUpdate = wholeSeconds(now);
    const nextUpdate = new Date(thisUpdate.getTime() + this.validitySeconds * 1000);
    const responses: OcspSingleResponse[] = req.certIds.map((id, i) => {
      const rec = records[i]!;
      const state = states[i]!;
      if (state === 'unknown') return { certId: id.raw, certStatus: { status: 'unknown' }, thisUpdate };
      const certStatus =
        state === 'good'
          ? { status: 'good' as const }
          : {
              status: 'revoked' as const,
              revokedAt: rec!.revokedAt ?? thisUpdate,
              reason: rec!.revocationReason,
            };
      return { certId: id.raw, certStatus, thisUpdate, nextUpdate };
    });
    const body = buildOcspResponse({
      responses,
      producedAt: thisUpdate,
      ...(req.nonce ? { nonce: req.nonce } : {}),
      responder,
    });
    const certStatus = responses.map((r) => r.certStatus.status).join(',');
    const cacheable =
      !req.nonce && responses.every((r) => r.nextUpdate) ? { thisUpdate, nextUpdate } : undefined;
    if (cacheKey !== undefined && cacheable && this.cacheEntries > 0) {
      this.cache.delete(cacheKey);
      if (this.cache.size >= this.cacheEntries) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(cacheKey, {
        body,
        state: states[0]!,
        generation: responder.generation,
        thisUpdate,
        nextUpdate,
        until: thisUpdate.getTime() + (this.validitySeconds * 1000) / 2,
        certStatus,
      });
    }
    return this.answer(body, certStatus, first.serial, cacheable);
  }

  private answer(
    body: Buffer,
    certStatus: string,
    serial: string,
    cacheable: { thisUpdate: Date; nextUpdate: Date } | undefined,
  ): OcspAnswer {
    return {
      body,
      status: OcspStatus.successful,
      certStatus,
      serial,
      ...(cacheable
        ? { cacheable: { thisUpdate: cacheable.thisUpdate, nextUpdate: cacheable.nextUpdate } }
        : {}),
    };
  }

  /** Our CA whose name and key hash the CertID carries, if any. */
  private caOf(id: OcspCertId): IssuerHash | undefined {
    for (const h of this.hashesFor(id.hash))
      if (h.name.equals(id.issuerNameHash) && h.key.equals(id.issuerKeyHash)) return h;
    return undefined;
  }

  private hashesFor(alg: DigestName): IssuerHash[] {
    const issuers = this.issuers();
    if (issuers !== this.issuersSeen) {
      this.issuersSeen = issuers;
      this.issuerHashes = new Map();
    }
    let list = this.issuerHashes.get(alg);
    if (!list) {
      list = issuers.flatMap((i) =>
        i.cas.all.map((ca) => ({
          // RFC 6960 §4.1.1: the hash of the issuer's DN (its subject) and of its public key bits.
          name: createHash(alg).update(ca.cert.subjectRaw).digest(),
          key: createHash(alg).update(subjectPublicKeyBits(ca.cert.spki)).digest(),
          ca,
          caName: i.name,
        })),
      );
      this.issuerHashes.set(alg, list);
    }
    return list;
  }
}

/** The subjectPublicKey BIT STRING contents (without the unused-bits octet) of an SPKI. */
function subjectPublicKeyBits(spki: Buffer): Buffer {
  const c = new r.Cursor(r.expectTag(r.parse(spki), 0x30, 'SubjectPublicKeyInfo'));
  c.expect(0x30, 'algorithm');
  return r.bitString(c.expect(r.TAG.BIT_STRING, 'subjectPublicKey')).bytes;
}
