/**
 * messageData of CertPoll (IssuerAndSubject, RFC 8894 §3.3.3) and of GetCert/GetCRL
 * (IssuerAndSerialNumber, §3.3.4): parse (server side) and build (client side).
 *
 * Parsing runs on decrypted content, so every failure is the same badMessageCheck as a
 * decryption failure (no padding oracle).
 */
import * as r from '../asn1/reader.js';
import * as der from '../asn1/writer.js';
import { ENVELOPE_FAILURE_TEXT, FailInfo, ScepError } from './types.js';

/** `IssuerAndSubject ::= SEQUENCE { issuer Name, subject Name }` with both names as raw DER. */
export interface IssuerAndSubject {
  issuerRaw: Buffer;
  subjectRaw: Buffer;
}

/** `IssuerAndSerialNumber ::= SEQUENCE { issuer Name, serialNumber INTEGER }`. */
export interface IssuerAndSerial {
  issuerRaw: Buffer;
  /** INTEGER content octets as sent (a redundant leading 0x00 is possible). */
  serial: Buffer;
}

function decoded<T>(fn: () => T): T {
  try {
    return fn();
  } catch {
    throw ScepError.failure(FailInfo.badMessageCheck, ENVELOPE_FAILURE_TEXT);
  }
}

/** Parses a CertPoll's IssuerAndSubject (DER or BER). */
export function parseIssuerAndSubject(buf: Buffer): IssuerAndSubject {
  return decoded(() => {
    const c = new r.Cursor(r.expectTag(r.parse(buf), 0x30, 'IssuerAndSubject'));
    const issuer = c.expect(0x30, 'issuer');
    const subject = c.expect(0x30, 'subject');
    c.end('IssuerAndSubject');
    return { issuerRaw: Buffer.from(r.raw(issuer)), subjectRaw: Buffer.from(r.raw(subject)) };
  });
}

/** Parses a GetCert/GetCRL IssuerAndSerialNumber (DER or BER). */
export function parseIssuerAndSerial(buf: Buffer): IssuerAndSerial {
  return decoded(() => {
    const c = new r.Cursor(r.expectTag(r.parse(buf), 0x30, 'IssuerAndSerialNumber'));
    const issuer = c.expect(0x30, 'issuer');
    const serial = r.intBytes(c.expect(r.TAG.INTEGER, 'serialNumber'));
    c.end('IssuerAndSerialNumber');
    return { issuerRaw: Buffer.from(r.raw(issuer)), serial: Buffer.from(serial) };
  });
}

/** DER IssuerAndSubject from two raw Name encodings. */
export function buildIssuerAndSubject(o: IssuerAndSubject): Buffer {
  return der.encode(der.seq(o.issuerRaw, o.subjectRaw));
}

/**
 * DER IssuerAndSerialNumber. `serial` is taken as INTEGER content octets exactly as given
 * (use `Certificate.serial`), so a certificate's own encoding round-trips.
 */
export function buildIssuerAndSerial(o: IssuerAndSerial): Buffer {
  return der.encode(der.seq(o.issuerRaw, der.intRaw(o.serial)));
}
