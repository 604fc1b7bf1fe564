/**
 * PKCS#10 certification requests (RFC 2986): parse (hot path, zero-copy reader), verify the
 * proof-of-possession signature over the raw CertificationRequestInfo bytes, and build (for
 * the client).
 *
 * The challengePassword is a secret: it is exposed as a field and never put into an error
 * message or a log line by this module.
 */
import type { KeyObject } from 'node:crypto';
import * as r from '../asn1/reader.js';
import * as der from '../asn1/writer.js';
import { OID } from '../asn1/oids.js';
import type { DigestName } from '../crypto/algorithms.js';
import type { Extension } from './certificate.js';
import {
  buildSubjectAltName,
  parseExtensionsTlv,
  parseSubjectAltName,
  type GeneralName,
} from './extensions.js';
import { buildName } from './name.js';
import { publicKeyFromSpki } from './public-key.js';
import { createSigner, verifySignature } from './signature.js';

/** Upper bound on a CSR's size; anything larger is refused before parsing. */
export const MAX_CSR_BYTES = 64 * 1024;

export interface Csr {
  /** The whole CertificationRequest DER. */
  der: Buffer;
  /** CertificationRequestInfo exactly as received (what the signature covers). */
  infoRaw: Buffer;
  version: number;
  /** The subject Name DER (zero-copy slice). */
  subjectRaw: Buffer;
  /** SubjectPublicKeyInfo DER (zero-copy slice). */
  spki: Buffer;
  /** The public key (created on first use and cached). Throws `CsrError` if unusable. */
  publicKey(): KeyObject;
  keyType: 'rsa' | 'ec' | 'other';
  /** RSA modulus bits or EC curve size; 0 when unknown. */
  keyBits: number;
  /** Signature algorithm OID (dotted). */
  signatureAlgorithm: string;
  /** Raw signature AlgorithmIdentifier parameters, if present (RSA-PSS needs them). */
  signatureAlgorithmParams: Buffer | undefined;
  signature: Buffer;
  /** PKCS#9 challengePassword (any DirectoryString type). A secret: never log it. */
  challengePassword: string | undefined;
  /** From PKCS#9 extensionRequest and Microsoft's 1.3.6.1.4.1.311.2.1.14. */
  extensions: Extension[];
  /** From the requested subjectAltName extension (empty if none). */
  subjectAltNames: GeneralName[];
  /** Every attribute, with each value's complete DER. */
  attributes: Array<{ oid: string; values: Buffer[] }>;
}

/** A malformed or unacceptable CSR. The message is safe to show to the client. */
export class CsrError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CsrError';
  }
}

const EC_CURVE_BITS: Readonly<Record<string, number>> = {
  '1.2.840.10045.3.1.7': 256, // P-256
  '1.3.132.0.34': 384, // P-384
  '1.3.132.0.35': 521, // P-521
  '1.3.132.0.10': 256, // secp256k1
};

/** The named-curve OID of an id-ecPublicKey SPKI, or undefined for other keys and explicit curves. */
export function ecCurveOid(spki: Buffer): string | undefined {
  const c = new r.Cursor(r.expectTag(r.parse(spki), 0x30, 'SubjectPublicKeyInfo'));
  const alg = new r.Cursor(c.expect(0x30, 'algorithm'));
  if (r.oid(alg.expect(r.TAG.OID, 'algorithm')) !== OID.ecPublicKey) return undefined;
  const params = alg.peek();
  return params && params.tag === r.TAG.OID ? r.oid(params) : undefined;
}

/** Key type and size from an SPKI without creating a KeyObject. */
export function describeSpki(spki: Buffer): { keyType: 'rsa' | 'ec' | 'other'; keyBits: number } {
  const c = new r.Cursor(r.expectTag(r.parse(spki), 0x30, 'SubjectPublicKeyInfo'));
  const alg = new r.Cursor(c.expect(0x30, 'algorithm'));
  const algOid = r.oid(alg.expect(r.TAG.OID, 'algorithm'));
  const params = alg.peek();
  const bits = r.bitString(c.expect(r.TAG.BIT_STRING, 'subjectPublicKey'));
  c.end('SubjectPublicKeyInfo');
  if (algOid === OID.rsaEncryption) {
    const k = new r.Cursor(r.expectTag(r.parse(bits.bytes), 0x30, 'RSAPublicKey'));
    const n = r.intBytes(k.expect(r.TAG.INTEGER, 'modulus'));
    let i = 0;
    while (i < n.length - 1 && n[i] === 0) i++;
    const top = n[i]!;
    const keyBits = (n.length - i - 1) * 8 + (top === 0 ? 0 : 32 - Math.clz32(top));
    return { keyType: 'rsa', keyBits };
  }
  if (algOid === OID.ecPublicKey) {
    const curve = params && params.tag === r.TAG.OID ? r.oid(params) : '';
    return { keyType: 'ec', keyBits: EC_CURVE_BITS[curve] ?? 0 };
  }
  return { keyType: 'other', keyBits: 0 };
}

/**
 * Parses a DER CertificationRequest. Tolerates an absent `[0] attributes` field (some old
 * clients omit it). Every failure is a `CsrError` whose message is safe to return.
 */
export function parseCsr(input: Uint8Array): Csr {
  if (input.length > MAX_CSR_BYTES) throw new CsrError(`CSR larger than ${MAX_CSR_BYTES} bytes`);
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input);
  try {
    return parseCsrUnchecked(buf);
  } catch (e) {
    if (e instanceof CsrError) throw e;
    const why = e instanceof r.Asn1Error ? e.message : 'malformed structure';
    throw new CsrError(`malformed CSR: ${why}`);
  }
}

function parseCsrUnchecked(buf: Buffer): Csr {
  const top = new r.Cursor(r.expectTag(r.parse(buf), 0x30, 'CertificationRequest'));
  const infoT = top.expect(0x30, 'certificationRequestInfo');
  const algT = top.expect(0x30, 'signatureAlgorithm');
  const sigT = top.expect(r.TAG.BIT_STRING, 'signature');
  top.end('CertificationRequest');

  const c = new r.Cursor(infoT);
  const version = r.int(c.expect(r.TAG.INTEGER, 'version'));
  if (version !== 0) throw new CsrError(`unsupported CSR version ${version}`);
  const subjectT = c.expect(0x30, 'subject');
  const spkiT = c.expect(0x30, 'subjectPKInfo');
  const attrsT = c.optional(0xa0);
  c.end('CertificationRequestInfo');

  const spki = r.raw(spkiT);
  const { keyType, keyBits } = describeSpki(spki);

  const attributes: Csr['attributes'] = [];
  let challengePassword: string | undefined;
  const extensions: Extension[] = [];
  if (attrsT) {
    for (const a of r.children(attrsT)) {
      const ac = new r.Cursor(r.expectTag(a, 0x30, 'Attribute'));
      const oid = r.oid(ac.expect(r.TAG.OID, 'attribute type'));
      const valsT = ac.expect(0x31, 'attribute values');
      ac.end('Attribute');
      const vals = r.children(valsT);
      attributes.push({ oid, values: vals.map((v) => r.raw(v)) });
      if (oid === OID.challengePassword) {
        if (challengePassword !== undefined || vals.length !== 1) {
          throw new CsrError('challengePassword must appear once with one value');
        }
        try {
          challengePassword = r.string(vals[0]!);
        } catch {
          throw new CsrError('challengePassword is not a character string');
        }
      } else if (oid === OID.extensionRequest || oid === OID.msExtensionRequest) {
        for (const v of vals) extensions.push(...parseExtensionsTlv(v));
      }
    }
  }

  const san = extensions.find((e) => e.oid === OID.subjectAltName);
  const subjectAltNames = san ? parseSubjectAltName(san.value) : [];

  const algC = new r.Cursor(algT);
  const signatureAlgorithm = r.oid(algC.expect(r.TAG.OID, 'signature algorithm'));
  const p = algC.peek();
  let key: KeyObject | undefined;
  return {
    der: buf,
    infoRaw: r.raw(infoT),
    version,
    subjectRaw: r.raw(subjectT),
    spki,
    publicKey() {
      if (!key) {
        try {
          key = publicKeyFromSpki(spki);
        } catch {
          throw new CsrError('unusable public key in CSR');
        }
      }
      return key;
    },
    keyType,
    keyBits,
    signatureAlgorithm,
    signatureAlgorithmParams: p ? r.raw(p) : undefined,
    signature: r.bitString(sigT).bytes,
    challengePassword,
    extensions,
    subjectAltNames,
    attributes,
  };
}

/**
 * Verifies the CSR's self-signature (proof of possession) over the raw
 * CertificationRequestInfo bytes. RSA PKCS#1 v1.5 (SHA-1/224/256/384/512), RSA-PSS, ECDSA.
 * Never throws.
 */
export function verifyCsrSignature(csr: Csr): boolean {
  let key: KeyObject;
  try {
    key = csr.publicKey();
  } catch {
    return false;
  }
  return verifySignature(
    csr.signatureAlgorithm,
    csr.signatureAlgorithmParams,
    csr.infoRaw,
    key,
    csr.signature,
  );
}

export interface BuildCsrOptions {
  /** Name text ("CN=dev1,O=Acme" or "/O=Acme/CN=dev1") or a Name DER. */
  subject: string | Buffer;
  /** Private key that signs the request. */
  key: KeyObject;
  /** Its public key (goes into the request). */
  publicKey: KeyObject;
  digest?: DigestName;
  challengePassword?: string;
  subjectAltNames?: GeneralName[];
  /** Further complete Extension SEQUENCEs for the extensionRequest attribute. */
  extensions?: der.Der[];
}

/** DER SET OF order (X.690 §11.6), for an IMPLICIT-tagged SET OF. */
function sortedSetOf(items: der.Der[]): Buffer[] {
  return items.map((i) => der.encode(i)).sort(Buffer.compare);
}

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** Builds and signs a PKCS#10 request (DER). */
export function buildCsr(o: BuildCsrOptions): Buffer {
  const subject = typeof o.subject === 'string' ? buildName(o.subject) : o.subject;
  const spki = o.publicKey.export({ type: 'spki', format: 'der' });
  const attrs: der.Der[] = [];
  if (o.challengePassword !== undefined) {
    const pw = o.challengePassword;
    const v = PRINTABLE.test(pw) ? der.printable(pw) : der.utf8(pw);
    attrs.push(der.seq(der.oid(OID.challengePassword), der.set(v)));
  }
  const exts: der.Der[] = [];
  if (o.subjectAltNames && o.subjectAltNames.length > 0) {
    exts.push(buildSubjectAltName(o.subjectAltNames, subject.length === 2));
  }
  if (o.extensions) exts.push(...o.extensions);
  if (exts.length > 0) attrs.push(der.seq(der.oid(OID.extensionRequest), der.set(der.seq(...exts))));
  const info = der.encode(der.seq(der.int(0), subject, spki, der.implicitConstructed(0, sortedSetOf(attrs))));
  const signer = createSigner(o.key, o.digest ?? 'sha256');
  return der.encode(der.seq(info, signer.algorithm, der.bitString(signer.sign(info))));
}
