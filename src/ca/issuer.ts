/**
 * The certificate authority: issues end-entity certificates from a CSR's subject and public
 * key under a profile, and signs CRLs. Subject, SPKI and issuer Name are spliced as raw DER.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import * as der from '../asn1/writer.js';
import { OID } from '../asn1/oids.js';
import type { DigestName } from '../crypto/algorithms.js';
import type { Certificate } from '../pkix/certificate.js';
import { buildCertificate } from '../pkix/certificate-builder.js';
import {
  buildAuthorityInfoAccess,
  buildAuthorityKeyIdentifier,
  buildBasicConstraints,
  buildCertificatePolicies,
  buildCrlDistributionPoints,
  buildExtKeyUsage,
  buildKeyUsage,
  buildSubjectAltName,
  buildSubjectKeyIdentifier,
  extension,
  keyIdentifier,
  parseBasicConstraints,
  parseSubjectAltName,
  type GeneralName,
} from '../pkix/extensions.js';
import type { Extension } from '../pkix/certificate.js';
import { namesEqual } from '../pkix/name.js';
import { createSigner, type Signer } from '../pkix/signature.js';
import { validateProfile, type Profile } from './profile.js';

export class CaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CaError';
  }
}

export interface CaMaterial {
  /** The CA certificate (root or intermediate). */
  cert: Certificate;
  /** Its private key. */
  key: KeyObject;
  /** Further certificates up to the root (DER), for GetCACert; empty for a root. */
  chain: Buffer[];
}

export interface IssueOptions {
  /** The subject Name DER (from the CSR, spliced unchanged). */
  subjectRaw: Buffer;
  /** The SubjectPublicKeyInfo DER (from the CSR). */
  spki: Buffer;
  /** Subject alternative names to include (ignored when `profile.copySubjectAltNames === false`). */
  subjectAltNames?: GeneralName[];
  /** A raw subjectAltName extnValue to splice instead of `subjectAltNames`. */
  subjectAltNameRaw?: Buffer;
  /** Positive serial magnitude, at most 20 octets (see `randomSerial`). */
  serial: Buffer;
  notBefore: Date;
  /** Clamped to the CA certificate's notAfter. */
  notAfter: Date;
  profile: Profile;
  digest?: DigestName;
  /** The CSR's requested extensions: those the profile names in `passThroughExtensions` are copied. */
  requestedExtensions?: readonly Extension[];
}

export interface RevokedEntry {
  /** Serial magnitude, or its hex. */
  serial: Buffer | string;
  revokedAt: Date;
  /** CRLReason (RFC 5280 §5.3.1); 0/undefined → no reasonCode entry extension. */
  reason?: number;
}

export interface CrlOptions {
  revoked: RevokedEntry[];
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  digest?: DigestName;
}

function spkiOf(key: KeyObject): Buffer {
  return (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' });
}

/** True when `privateKey` is the private half of the public key in `spki`. */
export function keyMatchesSpki(privateKey: KeyObject, spki: Buffer): boolean {
  try {
    const fromCert = createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({
      type: 'spki',
      format: 'der',
    });
    return spkiOf(privateKey).equals(fromCert);
  } catch {
    return false;
  }
}

export class CertificateAuthority {
  readonly cert: Certificate;
  readonly key: KeyObject;
  readonly chain: readonly Buffer[];
  /** The CA's key identifier (its SKI, or computed from its SPKI). */
  readonly keyId: Buffer;
  private readonly signers = new Map<DigestName, Signer>();

  constructor(m: CaMaterial) {
    if (m.key.type !== 'private') throw new CaError('CA key must be a private key');
    if (!keyMatchesSpki(m.key, m.cert.spki)) throw new CaError('CA key does not match the CA certificate');
    const bc = m.cert.extension(OID.basicConstraints);
    if (!bc || !parseBasicConstraints(bc.value).cA)
      throw new CaError('CA certificate is not a CA (basicConstraints cA)');
    this.cert = m.cert;
    this.key = m.key;
    this.chain = [...m.chain];
    this.keyId = m.cert.subjectKeyId ?? keyIdentifier(m.cert.spki);
  }

  /** The CA key's signer for `digest` (certificates, CRLs, OCSP responses), created once. */
  signer(digest: DigestName): Signer {
    let s = this.signers.get(digest);
    if (!s) {
      s = createSigner(this.key, digest);
      this.signers.set(digest, s);
    }
    return s;
  }

  /**
   * Issues an end-entity certificate: v3, AKI (our key id) + SKI, keyUsage / extKeyUsage /
   * CRL distribution point from the profile, SANs from the request, basicConstraints
   * cA=FALSE. Nothing else from the request is copied. Returns the certificate DER.
   * Every failure is a `CaError` (its message names the cause; no request secret in it).
   */
  issue(o: IssueOptions): Buffer {
    try {
      return this.issueUnchecked(o);
    } catch (e) {
      if (e instanceof CaError) throw e;
      // ExtensionError (a SAN we cannot encode), ProfileError, Asn1Error, …: never untyped.
      throw new CaError(`cannot issue: ${e instanceof Error ? e.message : 'unexpected error'}`);
    }
  }

  private issueUnchecked(o: IssueOptions): Buffer {
    validateProfile(o.profile);
    // Defence in depth (the RA's csr-checks refuse it first): a certificate with our own name
    // would chain to us as if it were us.
    if (o.subjectRaw.length > 2 && namesEqual(o.subjectRaw, this.cert.subjectRaw))
      throw new CaError("the subject is this CA's own name");
    const notAfter = o.notAfter.getTime() > this.cert.notAfter.getTime() ? this.cert.notAfter : o.notAfter;
    const emptySubject = o.subjectRaw.length === 2 && o.subjectRaw[0] === 0x30;
    const exts: der.Der[] = [];
    exts.push(buildBasicConstraints(false));
    if (o.profile.keyUsage.length > 0) exts.push(buildKeyUsage(o.profile.keyUsage));
    if (o.profile.extKeyUsage.length > 0) exts.push(buildExtKeyUsage(o.profile.extKeyUsage));
    exts.push(buildSubjectKeyIdentifier(keyIdentifier(o.spki)));
    exts.push(buildAuthorityKeyIdentifier(this.keyId));
    if (o.profile.copySubjectAltNames !== false) {
      if (o.subjectAltNameRaw) {
        try {
          parseSubjectAltName(o.subjectAltNameRaw);
        } catch {
          throw new CaError('malformed subjectAltName');
        }
        exts.push(extension(OID.subjectAltName, emptySubject, o.subjectAltNameRaw));
      } else if (o.subjectAltNames && o.subjectAltNames.length > 0) {
        exts.push(buildSubjectAltName(o.subjectAltNames, emptySubject));
      }
    }
    const dps = [
      ...(o.profile.crlDistributionPoint ? [o.profile.crlDistributionPoint] : []),
      ...(o.profile.crlDistributionPoints ?? []),
    ];
    if (dps.length > 0) exts.push(buildCrlDistributionPoints(dps));
    const aia = o.profile.authorityInfoAccess;
    const ocsp = [...(o.profile.ocspUrl ? [o.profile.ocspUrl] : []), ...(aia?.ocsp ?? [])];
    if (aia?.caIssuers?.length || ocsp.length > 0)
      exts.push(buildAuthorityInfoAccess({ caIssuers: aia?.caIssuers ?? [], ocsp }));
    if (o.profile.certificatePolicies?.length)
      exts.push(buildCertificatePolicies(o.profile.certificatePolicies));
    for (const c of o.profile.customExtensions ?? [])
      exts.push(extension(c.oid, c.critical === true, Buffer.from(c.valueHex, 'hex')));
    const pass = o.profile.passThroughExtensions;
    if (pass?.length) {
      for (const e of o.requestedExtensions ?? [])
        if (pass.includes(e.oid)) exts.push(extension(e.oid, e.critical, e.value));
    }
    try {
      return buildCertificate(
        {
          serial: o.serial,
          issuerRaw: this.cert.subjectRaw,
          subjectRaw: o.subjectRaw,
          spki: o.spki,
          notBefore: o.notBefore,
          notAfter,
          extensions: exts,
        },
        this.signer(o.digest ?? 'sha256'),
      );
    } catch (e) {
      throw new CaError(`cannot issue: ${(e as Error).message}`);
    }
  }

  /** Signs a v2 CRL with AKI and cRLNumber; entries carry a reasonCode when one is given. */
  buildCrl(o: CrlOptions): Buffer {
    if (o.crlNumber < 0n) throw new CaError('crlNumber must not be negative');
    const signer = this.signer(o.digest ?? 'sha256');
    const entries = o.revoked.map((e) => {
      const serial =
        typeof e.serial === 'string'
          ? Buffer.from(e.serial.length % 2 ? '0' + e.serial : e.serial, 'hex')
          : e.serial;
      const items: der.Der[] = [der.int(serial), der.time(e.revokedAt)];
      if (e.reason !== undefined && e.reason !== 0) {
        if (!Number.isInteger(e.reason) || e.reason < 0 || e.reason > 10 || e.reason === 7) {
          throw new CaError(`bad CRL reason ${e.reason}`);
        }
        items.push(der.seq(extension(OID.cRLReason, false, der.primitive(0x0a, Buffer.from([e.reason])))));
      }
      return der.seq(...items);
    });
    const tbsItems: der.Der[] = [
      der.int(1),
      signer.algorithm,
      this.cert.subjectRaw,
      der.time(o.thisUpdate),
      der.time(o.nextUpdate),
    ];
    if (entries.length > 0) tbsItems.push(der.seq(...entries));
    tbsItems.push(
      der.explicit(
        0,
        der.seq(
          buildAuthorityKeyIdentifier(this.keyId),
          extension(OID.cRLNumber, false, der.int(o.crlNumber)),
        ),
      ),
    );
    const tbs = der.encode(der.seq(...tbsItems));
    return der.encode(der.seq(tbs, signer.algorithm, der.bitString(signer.sign(tbs))));
  }
}
