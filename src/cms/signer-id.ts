/**
 * SignerIdentifier / RecipientIdentifier (RFC 5652 §5.3, §6.2.1): issuerAndSerialNumber or
 * [0] subjectKeyIdentifier, and matching one against a certificate.
 */
import { digestOf } from '../crypto/hash.js';
import * as r from '../asn1/reader.js';
import * as der from '../asn1/writer.js';
import type { Certificate } from '../pkix/certificate.js';

export type SignerId = { issuerRaw: Buffer; serial: Buffer } | { subjectKeyId: Buffer };

/** Reads a SignerIdentifier / RecipientIdentifier element. */
export function parseSignerId(t: r.Tlv): SignerId {
  if (t.tag === 0x30) {
    const c = new r.Cursor(t);
    const issuer = c.expect(0x30, 'issuer');
    const serial = r.intBytes(c.expect(r.TAG.INTEGER, 'serialNumber'));
    c.end('IssuerAndSerialNumber');
    return { issuerRaw: r.raw(issuer), serial };
  }
  if (t.tag === 0x80 || t.tag === 0xa0) {
    return { subjectKeyId: r.octets(t) };
  }
  throw new r.Asn1Error('unexpected-tag', 'unknown signer/recipient identifier choice');
}

/** IssuerAndSerialNumber of a certificate (raw issuer and serial octets spliced as-is). */
export function issuerAndSerial(cert: Certificate): der.DerNode {
  return der.seq(cert.issuerRaw, der.intRaw(cert.serial));
}

function stripZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

const computedSki = new WeakMap<Certificate, Buffer>();

/** RFC 5280 §4.2.1.2 method 1 key identifier, for certificates without the extension. */
function keyIdOf(cert: Certificate): Buffer {
  let v = computedSki.get(cert);
  if (!v) {
    const spki = new r.Cursor(r.parse(cert.spki));
    spki.expect(0x30, 'algorithm');
    const bits = r.bitString(spki.expect(r.TAG.BIT_STRING, 'subjectPublicKey')).bytes;
    v = digestOf('sha1', bits);
    computedSki.set(cert, v);
  }
  return v;
}

/**
 * True when `id` names `cert`: same issuer encoding and the same serial as an integer (a
 * redundant leading 0x00 is tolerated), or the same subject key identifier (the
 * extension's, or the SHA-1 of the key when the certificate has none).
 */
export function signerIdMatches(id: SignerId, cert: Certificate): boolean {
  if ('subjectKeyId' in id) {
    if (cert.subjectKeyId) return cert.subjectKeyId.equals(id.subjectKeyId);
    try {
      return keyIdOf(cert).equals(id.subjectKeyId);
    } catch {
      return false; // an undecodable key cannot be the signer
    }
  }
  return id.issuerRaw.equals(cert.issuerRaw) && stripZeros(id.serial).equals(stripZeros(cert.serial));
}
