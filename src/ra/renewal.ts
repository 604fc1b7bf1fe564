/**
 * Renewal (RFC 8894 §2.5, §7.6; docs/conformance.md §5.4 and cases 40–42): a RenewalReq, or a PKCSReq
 * signed by a certificate one of our CAs issued (sscep, certmonger, Apple, jscep). The
 * certificate that signs the request is the credential, so no challenge is needed; the reply
 * is encrypted to that (old) certificate.
 *
 * The signer certificate must verify under one of our CAs (current or retired), be in the
 * store, not be revoked and not be expired beyond the grace period. Options restrict when and
 * how: a renewal window (last N% of the lifetime), refusing reuse of the old key, refusing a
 * key already certified to another subject, and requiring the same subject and no
 * subjectAltName the old certificate lacks.
 */
import { spkiHash } from '../crypto/keys.js';
import { parseCertificate } from '../pkix/certificate.js';
import { subjectAltNamesOf, type GeneralName } from '../pkix/extensions.js';
import { namesEqual } from '../pkix/name.js';
import { FailInfo } from '../scep/types.js';
import type { Store } from '../store/index.js';
import type { CaSet } from '../ca/authorities.js';
import { quotedName, sanText } from './names.js';
import { reject, type Policy } from './policy.js';

export interface RenewalConfig {
  /** Accept renewals at all (default true). When false `Renewal` is not advertised. */
  enabled?: boolean;
  /** Accept a signer certificate that expired at most this many seconds ago (default 0). */
  graceSeconds?: number;
  /** Only renew within the last N percent of the certificate's lifetime (default 100: any time). */
  windowPercent?: number;
  /** `new`: the CSR key must differ from the old certificate's key. `any` (default): either. */
  key?: 'new' | 'any';
  /** The CSR subject must equal the old certificate's subject (default true). */
  sameSubject?: boolean;
  /**
   * Every subjectAltName of the CSR must be one the old certificate has (default true): a
   * renewal asks only for the identity it renews. False (`--renewal-any-san`): any SANs.
   */
  sameSubjectAltNames?: boolean;
  /** Revoke the old certificate (reason superseded) once the new one is issued (default false). */
  revokeOld?: boolean;
}

export type ResolvedRenewalConfig = Required<RenewalConfig>;

/** Fills in defaults; throws RangeError for nonsense. */
export function resolveRenewalConfig(c: RenewalConfig = {}): ResolvedRenewalConfig {
  const r: ResolvedRenewalConfig = {
    enabled: c.enabled ?? true,
    graceSeconds: c.graceSeconds ?? 0,
    windowPercent: c.windowPercent ?? 100,
    key: c.key ?? 'any',
    sameSubject: c.sameSubject ?? true,
    sameSubjectAltNames: c.sameSubjectAltNames ?? true,
    revokeOld: c.revokeOld ?? false,
  };
  if (!Number.isInteger(r.graceSeconds) || r.graceSeconds < 0)
    throw new RangeError('renewal grace must be a whole number of seconds >= 0');
  if (!(r.windowPercent > 0 && r.windowPercent <= 100))
    throw new RangeError('the renewal window must be a percentage in (0, 100]');
  if (r.key !== 'new' && r.key !== 'any') throw new RangeError("renewal key policy must be 'new' or 'any'");
  return r;
}

/**
 * The store transactionID of a renewal: the client's transactionID scoped to the certificate
 * being renewed. Some clients derive the transactionID from the key (micromdm: SHA-1 of the
 * public key), so a same-key renewal would otherwise collide with the original enrollment's
 * transaction and be answered with the old certificate. A resend of the same renewal still
 * maps to the same transaction (idempotent).
 */
export function renewalTransactionId(oldSerial: string, transactionId: string): string {
  return `renewal:${oldSerial}:${transactionId}`;
}

export interface RenewalPolicyOptions {
  config: ResolvedRenewalConfig;
  store: Store;
  /** Name of the CA whose certificates may sign renewals here. */
  caName: string;
  cas: CaSet;
  now: () => Date;
}

/**
 * The renewal authorization chain (run after proof of possession and the key/CSR policies):
 * signer issued by us, known, valid, within the window; key and subject rules.
 */
export function renewalPolicies(o: RenewalPolicyOptions): Policy[] {
  const { config, store, cas } = o;
  const signerIssuedByUs: Policy = (req) =>
    cas.issuerOf(req.request.signerCert)
      ? undefined
      : reject(FailInfo.badRequest, 'the renewal is not signed by a certificate this CA issued');

  const signerValid: Policy = async (req) => {
    const signer = req.request.signerCert;
    const rec = await store.getCertificate(signer.serialHex, o.caName);
    if (!rec || !rec.der.equals(signer.der))
      return reject(FailInfo.badRequest, 'the certificate that signs the renewal is unknown to this CA');
    if (rec.status === 'revoked')
      return reject(FailInfo.badRequest, 'the certificate that signs the renewal is revoked');
    const now = o.now().getTime();
    if (now > signer.notAfter.getTime() + config.graceSeconds * 1000)
      return reject(FailInfo.badRequest, 'the certificate that signs the renewal has expired');
    if (now < signer.notBefore.getTime())
      return reject(FailInfo.badRequest, 'the certificate that signs the renewal is not valid yet');
    if (config.windowPercent < 100) {
      const life = signer.notAfter.getTime() - signer.notBefore.getTime();
      const opens = signer.notAfter.getTime() - (life * config.windowPercent) / 100;
      if (now < opens) {
        return reject(
          FailInfo.badRequest,
          `renewal is allowed only in the last ${config.windowPercent}% of the certificate lifetime ` +
            `(from ${new Date(opens).toISOString()})`,
        );
      }
    }
    return undefined;
  };

  const keyRule: Policy = async (req) => {
    const signer = req.request.signerCert;
    const sameKey = req.csr.spki.equals(signer.spki);
    if (sameKey && config.key === 'new')
      return reject(FailInfo.badRequest, 'renewal with the same key is refused: use a new key');
    if (!sameKey) {
      // A key already certified to someone else must not be taken over (case 42).
      const found = await store.searchCertificates({ keyHash: spkiHash(req.csr.spki), limit: 50 });
      const foreign = found.items.find((c) => !subjectsMatch(c.der, signer.subjectRaw));
      if (foreign)
        return reject(FailInfo.badRequest, 'the request key is already certified to another subject');
    }
    return undefined;
  };

  const subjectRule: Policy = (req) =>
    !config.sameSubject || namesEqual(req.csr.subjectRaw, req.request.signerCert.subjectRaw)
      ? undefined
      : reject(FailInfo.badRequest, 'a renewal must request the subject of the certificate being renewed');

  const sanRule: Policy = (req) => {
    if (!config.sameSubjectAltNames || req.csr.subjectAltNames.length === 0) return undefined;
    const old = new Set(subjectAltNamesOf(req.request.signerCert).map(sanKey));
    const extra = req.csr.subjectAltNames.find((n) => !old.has(sanKey(n)));
    return extra
      ? reject(
          FailInfo.badRequest,
          `a renewal may only request names of the certificate being renewed; not allowed: ${quotedName(sanText(extra))}`,
        )
      : undefined;
  };

  return [signerIssuedByUs, signerValid, keyRule, subjectRule, sanRule];
}

/** Comparison key of a GeneralName: DNS names are case-insensitive. */
function sanKey(n: GeneralName): string {
  return n.type === 'dns' ? `dns:${n.value.toLowerCase()}` : sanText(n);
}

/** Whether a stored certificate DER has this subject (Name comparison). */
function subjectsMatch(certDer: Buffer, subjectRaw: Buffer): boolean {
  try {
    return namesEqual(parseCertificate(certDer).subjectRaw, subjectRaw);
  } catch {
    return false;
  }
}
