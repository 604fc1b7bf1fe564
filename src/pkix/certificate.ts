/**
 * X.509 certificate parsing on the hot-path reader (RFC 5280 §4.1).
 *
 * Lenient where real SCEP clients are sloppy (the transient self-signed signer certificate:
 * negative or zero serials, critical AKI, odd validity, missing extensions), strict about
 * structure. Raw sub-encodings (issuer, subject, SPKI, TBS) are kept as zero-copy slices so
 * callers can compare and splice them without re-encoding.
 */
import { verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { digestHex } from '../crypto/hash.js';
import * as r from '../asn1/reader.js';
import { OID } from '../asn1/oids.js';
import { publicKeyFromSpki } from './public-key.js';

export interface Extension {
  oid: string;
  critical: boolean;
  /** extnValue contents (the DER inside the OCTET STRING). */
  value: Buffer;
}

export interface Certificate {
  /** The whole certificate DER. */
  readonly der: Buffer;
  readonly tbs: Buffer;
  /** INTEGER content octets exactly as encoded (may carry a leading 0x00 or be negative). */
  readonly serial: Buffer;
  /** Serial as a non-negative bigint magnitude of the encoded value (see `serialHex`). */
  readonly serialHex: string;
  readonly issuerRaw: Buffer;
  readonly subjectRaw: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly spki: Buffer;
  readonly signatureAlgorithm: string;
  readonly signatureAlgorithmParams: Buffer | undefined;
  readonly signature: Buffer;
  readonly extensions: readonly Extension[];
  /** subjectKeyIdentifier extension value, if present. */
  readonly subjectKeyId: Buffer | undefined;
  /** SHA-256 of the DER, lower-case hex. */
  readonly fingerprint: string;
  /** The public key (parsed on first use, then cached). */
  publicKey(): KeyObject;
  extension(oid: string): Extension | undefined;
}

export class CertificateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CertificateError';
  }
}

/**
 * THE canonical serial form (stores, logs, CLI, admin API): lower-case hex of an INTEGER's
 * content octets (or a serial magnitude) with redundant leading zero octets removed.
 */
export function serialToHex(content: Uint8Array): string {
  let i = 0;
  while (i < content.length - 1 && content[i] === 0) i++;
  return Buffer.from(content.subarray(i)).toString('hex');
}

/**
 * Serial text as a person or another tool writes it → the canonical form of `serialToHex`:
 * `0x`, colons and spaces are ignored, any case (`"00:AB"` → `"ab"`, `"ABC"` → `"0abc"`,
 * `"0"` → `"00"`). Throws TypeError on non-hex input.
 */
export function normalizeSerial(serial: string): string {
  let s = serial.trim().toLowerCase().replace(/[:\s]/g, '');
  if (s.startsWith('0x')) s = s.slice(2);
  if (!/^[0-9a-f]+$/.test(s)) throw new TypeError(`not a hex serial: ${JSON.stringify(serial)}`);
  return serialToHex(Buffer.from(s.length % 2 === 1 ? '0' + s : s, 'hex'));
}

/** Parses a DER (or BER) certificate. Throws `CertificateError` or `Asn1Error` on bad input. */
export function parseCertificate(input: Uint8Array): Certificate {
  const der = Buffer.isBuffer(input) ? input : Buffer.from(input);
  return parseCertificateTlv(r.parse(der));
}

/** Parses a certificate from an element found inside a larger structure (no copy). */
export function parseCertificateTlv(t: r.Tlv): Certificate {
  r.expectTag(t, 0x30, 'Certificate');
  const top = new r.Cursor(t);
  const tbsT = top.expect(0x30, 'tbsCertificate');
  const algT = top.expect(0x30, 'signatureAlgorithm');
  const sigT = top.expect(r.TAG.BIT_STRING, 'signatureValue');
  top.end('Certificate');

  const c = new r.Cursor(tbsT);
  const v = c.optional(0xa0);
  if (v) {
    const vc = new r.Cursor(v);
    const n = r.int(vc.expect(r.TAG.INTEGER, 'version'));
    if (n < 0 || n > 2) throw new CertificateError('unsupported certificate version');
  }
  const serialT = c.expect(r.TAG.INTEGER, 'serialNumber');
  c.expect(0x30, 'signature');
  const issuerT = c.expect(0x30, 'issuer');
  const validityT = c.expect(0x30, 'validity');
  const subjectT = c.expect(0x30, 'subject');
  const spkiT = c.expect(0x30, 'subjectPublicKeyInfo');
  c.optional(0x81); // issuerUniqueID
  c.optional(0x82); // subjectUniqueID
  const extsT = c.optional(0xa3);
  c.end('TBSCertificate');

  const vcur = new r.Cursor(validityT);
  const notBefore = r.time(vcur.next('notBefore'));
  const notAfter = r.time(vcur.next('notAfter'));

  const extensions: Extension[] = [];
  if (extsT) {
    const seqT = new r.Cursor(extsT).expect(0x30, 'Extensions');
    for (const e of r.children(seqT)) {
      const ec = new r.Cursor(e);
      const id = r.oid(ec.expect(r.TAG.OID, 'extnID'));
      const crit = ec.optional(r.TAG.BOOLEAN);
      const val = ec.expect(r.TAG.OCTET_STRING, 'extnValue');
      extensions.push({ oid: id, critical: crit ? r.bool(crit) : false, value: r.octets(val) });
    }
  }

  const algC = new r.Cursor(algT);
  const signatureAlgorithm = r.oid(algC.expect(r.TAG.OID, 'algorithm'));
  const algParams = algC.peek();

  const der = r.raw(t);
  const ski = extensions.find((e) => e.oid === OID.subjectKeyIdentifier);
  let subjectKeyId: Buffer | undefined;
  if (ski) {
    try {
      const st = r.parse(ski.value);
      subjectKeyId = r.octets(r.expectTag(st, r.TAG.OCTET_STRING, 'SubjectKeyIdentifier'));
    } catch {
      subjectKeyId = undefined; // tolerate a broken SKI on a transient signer cert
    }
  }
  const serial = r.intBytes(serialT);
  return new ParsedCertificate({
    der,
    tbs: r.raw(tbsT),
    serial,
    serialHex: serialToHex(serial),
    issuerRaw: r.raw(issuerT),
    subjectRaw: r.raw(subjectT),
    notBefore,
    notAfter,
    spki: r.raw(spkiT),
    signatureAlgorithm,
    signatureAlgorithmParams: algParams ? r.raw(algParams) : undefined,
    signature: r.bitString(sigT).bytes,
    extensions,
    subjectKeyId,
  });
}

type CertificateFields = Omit<Certificate, 'fingerprint' | 'publicKey' | 'extension'>;

// The data members come from Certificate (declaration merging) and are all set by the
// constructor from a complete CertificateFields, so the list is written once, in the interface.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging, @typescript-eslint/no-empty-object-type
interface ParsedCertificate extends CertificateFields {}

/**
 * A parsed certificate. A class, not an object literal with a getter and closures: in Node 20
 * such a literal is a dictionary-mode object with an accessor of its own, and that accessor's
 * closure (which holds the whole parse) kept every parse alive through young-generation
 * collections: each request's signer certificate and each issued certificate were promoted to
 * the old generation, to wait there for a full collection. Measured: 681 bytes promoted per
 * parse with the literal, 1 with the class (docs/benchmarks.md, issue #15, fourth round).
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
class ParsedCertificate implements Certificate {
  #fingerprint: string | undefined;
  #key: KeyObject | undefined;

  constructor(f: CertificateFields) {
    Object.assign(this, f);
  }

  get fingerprint(): string {
    return (this.#fingerprint ??= digestHex('sha256', this.der));
  }

  publicKey(): KeyObject {
    if (!this.#key) {
      try {
        this.#key = publicKeyFromSpki(this.spki);
      } catch (e) {
        throw new CertificateError(`unusable public key: ${(e as Error).message}`);
      }
    }
    return this.#key;
  }

  extension(oid: string): Extension | undefined {
    return this.extensions.find((e) => e.oid === oid);
  }
}

const SIG_HASH: Record<string, string> = {
  [OID.sha1WithRSAEncryption]: 'sha1',
  [OID.sha256WithRSAEncryption]: 'sha256',
  [OID.sha384WithRSAEncryption]: 'sha384',
  [OID.sha512WithRSAEncryption]: 'sha512',
  [OID.sha224WithRSAEncryption]: 'sha224',
  [OID.ecdsaWithSHA256]: 'sha256',
  [OID.ecdsaWithSHA384]: 'sha384',
  [OID.ecdsaWithSHA512]: 'sha512',
};

/** Checks that `cert` was signed by `issuerKey` (RSA PKCS#1 v1.5 and ECDSA-SHA256/384/512). */
export function verifyCertificateSignature(cert: Certificate, issuerKey: KeyObject): boolean {
  const hash = SIG_HASH[cert.signatureAlgorithm];
  if (!hash) return false;
  try {
    return cryptoVerify(hash, cert.tbs, issuerKey, cert.signature);
  } catch {
    return false;
  }
}

/** PEM armour for a DER blob. */
export function toPem(der: Uint8Array, label = 'CERTIFICATE'): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** All PEM blocks with the given label, decoded. */
export function fromPem(pem: string, label = 'CERTIFICATE'): Buffer[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  const out: Buffer[] = [];
  for (const m of pem.matchAll(re)) out.push(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
  return out;
}
