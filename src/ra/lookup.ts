/**
 * GetCert and GetCRL (RFC 8894 §3.3.4, §4.5, §4.6; docs/conformance.md cases 43–44). Both carry an
 * IssuerAndSerialNumber. The serial is compared as an integer (a redundant leading 0x00 is
 * tolerated) and the issuer as a Name (RFC 5280 §7.1). A miss is FAILURE badCertId.
 * Certificates are public, so any signer may ask; the reply is encrypted to the signer.
 */
import type { CaSet } from '../ca/authorities.js';
import type { CrlPublisher } from '../ca/crl.js';
import type { CipherName } from '../crypto/algorithms.js';
import { parseCertificate, serialToHex } from '../pkix/certificate.js';
import { namesEqual } from '../pkix/name.js';
import type { IssuerAndSerial } from '../scep/message-data.js';
import { FailInfo } from '../scep/types.js';
import type { Store } from '../store/index.js';
import { failure, type Decision } from './decision.js';

export interface LookupContext {
  store: Store;
  /** Name of this service's CA: serials are looked up in it (another CA may have the same). */
  caName: string;
  cas: CaSet;
  crls: CrlPublisher;
}

/** GetCert: the stored certificate with this issuer and serial. */
export async function getCert(c: LookupContext, ias: IssuerAndSerial, cipher: CipherName): Promise<Decision> {
  const hex = serialToHex(ias.serial);
  const rec = await c.store.getCertificate(hex, c.caName);
  if (!rec || !namesEqual(parseCertificate(rec.der).issuerRaw, ias.issuerRaw)) {
    return failure(FailInfo.badCertId, 'no certificate with this issuer and serial number');
  }
  return { status: 'SUCCESS', certificates: [rec.der], serial: rec.serial, cipher };
}

/**
 * GetCRL: the latest CRL of the named issuer (one of our CAs, current or retired) in a
 * CRLs-only degenerate SignedData. The serial names a certificate of that issuer; it is not
 * needed to pick the CRL (one CRL per issuer) and is not checked.
 */
export async function getCrl(c: LookupContext, ias: IssuerAndSerial, cipher: CipherName): Promise<Decision> {
  const ca = c.cas.byName(ias.issuerRaw)[0];
  if (!ca) return failure(FailInfo.badCertId, 'this server is not the issuer named in the request');
  const crl = await c.crls.current(ca.cert.fingerprint);
  if (!crl) return failure(FailInfo.badCertId, 'no CRL for this issuer');
  return {
    status: 'SUCCESS',
    certificates: [],
    crls: [crl.der],
    serial: `crl-${crl.crlNumber.toString()}`,
    cipher,
  };
}
