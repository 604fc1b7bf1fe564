/**
 * Test PKI: RSA keys and certificates built with src/asn1/writer.ts (no openssl needed).
 *
 *   const ca = makeSelfSigned({ subject: 'CN=Test CA', ca: true });
 *   const leaf = makeIssued({ subject: 'CN=device', issuer: ca });
 *
 * Subjects are "CN=a,O=b" strings (or "/CN=a/O=b"); values are UTF8String (C: PrintableString).
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  type KeyObject,
} from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as der from '../../src/asn1/writer.js';
import { OID } from '../../src/asn1/oids.js';
import { parseCertificate, toPem, type Certificate } from '../../src/pkix/certificate.js';

export interface TestCert {
  cert: Certificate;
  certDer: Buffer;
  certPem: string;
  /** The private key. */
  key: KeyObject;
  keyPem: string;
}

const keyCache = new Map<string, KeyObject>();

/** Committed RSA test keys: test/fixtures/keys/rsa<bits>-<NN>.pem (never used outside tests). */
const FIXTURE_KEYS = fileURLToPath(new URL('../fixtures/keys/', import.meta.url));

/** A fresh RSA private key of `bits` (default 2048). Slow (tens to hundreds of ms): prefer `pooledRsaKey`. */
export function makeRsaKey(bits = 2048): KeyObject {
  return generateKeyPairSync('rsa', { modulusLength: bits }).privateKey;
}

/** Path of the committed fixture key `n` of `bits`, or undefined when there is none. */
export function fixtureKeyPath(n: number, bits = 2048): string | undefined {
  const p = `${FIXTURE_KEYS}rsa${bits}-${String(n).padStart(2, '0')}.pem`;
  return existsSync(p) ? p : undefined;
}

/**
 * RSA key number `n` of `bits` from the committed fixture pool (test/fixtures/keys: 48 keys of
 * 2048 bits, 4 of 1024 and 3072), loaded on first use and cached per process. The same index
 * is the same key in every test file, so use distinct indices where keys must differ. An index
 * beyond the pool falls back to a freshly generated key (cached for the process).
 */
export function pooledRsaKey(n = 0, bits = 2048): KeyObject {
  const id = `${bits}/${n}`;
  let key = keyCache.get(id);
  if (!key) {
    const file = fixtureKeyPath(n, bits);
    key = file ? createPrivateKey(readFileSync(file, 'utf8')) : makeRsaKey(bits);
    keyCache.set(id, key);
  }
  return key;
}

const ATTR: Record<string, string> = {
  CN: OID.commonName,
  O: OID.organizationName,
  OU: OID.organizationalUnitName,
  C: OID.countryName,
  L: OID.localityName,
  ST: OID.stateOrProvinceName,
  SERIALNUMBER: OID.serialNumber,
  DC: OID.domainComponent,
  EMAILADDRESS: OID.emailAddress,
};

/** DER Name from "CN=a,O=b" or "/CN=a/O=b" (one attribute per RDN, in the order given). */
export function nameDer(subject: string): Buffer {
  const parts = subject.startsWith('/') ? subject.slice(1).split('/') : subject.split(/\s*,\s*/);
  const rdns = parts
    .filter((p) => p.length > 0)
    .map((p) => {
      const eq = p.indexOf('=');
      if (eq <= 0) throw new Error(`bad RDN "${p}"`);
      const k = p.slice(0, eq).trim().toUpperCase();
      const v = p.slice(eq + 1);
      const oid = ATTR[k] ?? (/^\d+(\.\d+)+$/.test(k) ? k : undefined);
      if (!oid) throw new Error(`unknown attribute ${k}`);
      const val =
        oid === OID.countryName ? der.printable(v) : oid === OID.emailAddress ? der.ia5(v) : der.utf8(v);
      return der.set(der.seq(der.oid(oid), val));
    });
  return der.encode(der.seq(...rdns));
}

export interface CertOptions {
  subject: string;
  /** Private key of the subject; a fresh 2048-bit key when absent. */
  key?: KeyObject;
  days?: number;
  notBefore?: Date;
  /** Serial as unsigned big-endian bytes; 16 random bytes when absent. */
  serial?: Buffer;
  ca?: boolean;
  /** Include a subjectKeyIdentifier (default true). */
  ski?: boolean;
  /** KeyUsage bit positions (default: digitalSignature, keyEncipherment; CA adds keyCertSign, cRLSign). */
  keyUsage?: number[];
  digest?: 'sha1' | 'sha256' | 'sha384' | 'sha512';
}

const SIG_OID = {
  sha1: OID.sha1WithRSAEncryption,
  sha256: OID.sha256WithRSAEncryption,
  sha384: OID.sha384WithRSAEncryption,
  sha512: OID.sha512WithRSAEncryption,
} as const;

/** RFC 5280 method-1 style key identifier (SHA-1 of the whole SPKI here; any stable value works). */
function keyId(spki: Buffer): Buffer {
  return createHash('sha1').update(spki).digest();
}

function buildCert(
  o: CertOptions,
  subjectKey: KeyObject,
  issuerName: Buffer,
  issuerKey: KeyObject,
  issuerSpki: Buffer,
): TestCert {
  const spki = createPublicKey(subjectKey).export({ format: 'der', type: 'spki' });
  const notBefore = o.notBefore ?? new Date(Date.now() - 60_000);
  const notAfter = new Date(notBefore.getTime() + (o.days ?? 30) * 86_400_000);
  const serial =
    o.serial ?? Buffer.concat([Buffer.from([0x40 | (randomBytes(1)[0]! & 0x3f)]), randomBytes(15)]);
  const digest = o.digest ?? 'sha256';
  const exts: der.Der[] = [];
  if (o.ca)
    exts.push(
      der.seq(
        der.oid(OID.basicConstraints),
        der.bool(true),
        der.octetString(der.encode(der.seq(der.bool(true)))),
      ),
    );
  const ku = o.keyUsage ?? (o.ca ? [0, 2, 5, 6] : [0, 2]);
  if (ku.length > 0)
    exts.push(der.seq(der.oid(OID.keyUsage), der.bool(true), der.octetString(der.encode(der.namedBits(ku)))));
  if (o.ski !== false) {
    exts.push(
      der.seq(der.oid(OID.subjectKeyIdentifier), der.octetString(der.encode(der.octetString(keyId(spki))))),
    );
    exts.push(
      der.seq(
        der.oid(OID.authorityKeyIdentifier),
        der.octetString(der.encode(der.seq(der.implicitPrimitive(0, keyId(issuerSpki))))),
      ),
    );
  }
  const sigAlg = der.algorithm(SIG_OID[digest], der.nul());
  const tbs = der.encode(
    der.seq(
      der.explicit(0, der.int(2)),
      der.int(serial),
      sigAlg,
      issuerName,
      der.seq(der.time(notBefore), der.time(notAfter)),
      nameDer(o.subject),
      spki,
      ...(exts.length ? [der.explicit(3, der.seq(...exts))] : []),
    ),
  );
  const sig = sign(digest, tbs, issuerKey);
  const certDer = der.encode(der.seq(tbs, sigAlg, der.bitString(sig)));
  return {
    cert: parseCertificate(certDer),
    certDer,
    certPem: toPem(certDer),
    key: subjectKey,
    keyPem: subjectKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}

/** A self-signed certificate (RSA, sha256WithRSAEncryption by default). */
export function makeSelfSigned(o: CertOptions): TestCert {
  const key = o.key ?? makeRsaKey(2048);
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  return buildCert(o, key, nameDer(o.subject), key, spki);
}

/** A certificate for `subject` signed by `issuer`. */
export function makeIssued(o: CertOptions & { issuer: TestCert }): TestCert {
  const key = o.key ?? makeRsaKey(2048);
  return buildCert(o, key, o.issuer.cert.subjectRaw, o.issuer.key, o.issuer.cert.spki);
}
