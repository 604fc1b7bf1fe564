/**
 * Degenerate "certs-only" / "CRLs-only" SignedData (RFC 8894 §3.4, RFC 5652 §5.2): no
 * signers, no digest algorithms, no eContent; used for GetCACert (RA/intermediate), the
 * CertRep SUCCESS payload and GetCRL.
 */
import * as der from '../asn1/writer.js';
import { OID } from '../asn1/oids.js';
import type { Certificate } from '../pkix/certificate.js';
import { wrapContentInfo } from './content-info.js';
import { parseSignedData } from './signed-data.js';

/**
 * ContentInfo(signedData) DER, version 1. Certificates are kept in the given order (issued
 * certificate first), not sorted; empty lists are omitted.
 */
export function buildDegenerate(o: { certificates?: Buffer[]; crls?: Buffer[] }): Buffer {
  const items: der.Der[] = [der.int(1), der.set(), der.seq(der.oid(OID.data))];
  if (o.certificates && o.certificates.length > 0) items.push(der.implicitConstructed(0, o.certificates));
  if (o.crls && o.crls.length > 0) items.push(der.implicitConstructed(1, o.crls));
  items.push(der.set());
  return wrapContentInfo(OID.signedData, der.seq(...items));
}

/**
 * Certificates and CRLs of a (degenerate) SignedData, DER or BER. Signers, if any, are
 * ignored: nothing here is verified. Throws CmsError('malformed').
 */
export function parseDegenerate(contentInfo: Buffer): { certificates: Certificate[]; crls: Buffer[] } {
  const sd = parseSignedData(contentInfo);
  return { certificates: sd.certificates, crls: sd.crls };
}
