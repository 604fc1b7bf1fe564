/**
 * Assembles and signs X.509 v3 certificates from pre-encoded parts. Subject, issuer and SPKI
 * are spliced as raw DER (never re-encoded), so what a CSR carried is what the certificate says.
 */
import * as der from '../asn1/writer.js';
import type { Signer } from './signature.js';

export interface CertificateFields {
  /** Positive serial magnitude (big-endian), at most 20 octets. */
  serial: Buffer;
  issuerRaw: Buffer;
  subjectRaw: Buffer;
  spki: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** Complete Extension SEQUENCEs, in order. */
  extensions: der.Der[];
}

/** Builds the TBSCertificate for `signer` and signs it; returns the Certificate DER. */
export function buildCertificate(f: CertificateFields, signer: Signer): Buffer {
  let i = 0;
  while (i < f.serial.length - 1 && f.serial[i] === 0) i++;
  const mag = f.serial.subarray(i);
  if (mag.length === 0 || (mag.length === 1 && mag[0] === 0)) throw new Error('serial must be positive');
  if (mag.length > 20 || (mag.length === 20 && mag[0]! & 0x80))
    throw new Error('serial longer than 20 octets');
  if (f.notAfter.getTime() <= f.notBefore.getTime()) throw new Error('notAfter must be after notBefore');
  const items: der.Der[] = [
    der.explicit(0, der.int(2)),
    der.int(mag),
    signer.algorithm,
    f.issuerRaw,
    der.seq(der.time(f.notBefore), der.time(f.notAfter)),
    f.subjectRaw,
    f.spki,
  ];
  if (f.extensions.length > 0) items.push(der.explicit(3, der.seq(...f.extensions)));
  const tbs = der.encode(der.seq(...items));
  return der.encode(der.seq(tbs, signer.algorithm, der.bitString(signer.sign(tbs))));
}

/** Drops milliseconds (X.509 times have whole seconds). */
export function wholeSeconds(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}
