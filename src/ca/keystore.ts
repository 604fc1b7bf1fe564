/**
 * A CA's key material on disk, under `<data>/ca/` (the default CA) or `<data>/cas/NAME/` (a
 * named CA, see ca-location.ts):
 *
 *   ca.key     PKCS#8 PEM, mode 0600; AES-256-CBC encrypted when a passphrase is given
 *   ca.crt     the CA certificate (self-signed root, or an imported root/intermediate)
 *   chain.pem  optional: the certificates above an imported intermediate (for GetCACert)
 *   ra.key     optional RA key (same protection as ca.key)
 *   ra.crt     optional RA certificate issued by the CA (KU digitalSignature+keyEncipherment)
 *
 * The library takes a passphrase string; the CLI resolves it from SCEPTER_CA_PASSPHRASE or
 * --passphrase-file. Passphrases never appear in messages.
 */
import { createPrivateKey, createPublicKey, generateKeyPair, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { OID } from '../asn1/oids.js';
import {
  fromPem,
  parseCertificate,
  toPem,
  verifyCertificateSignature,
  type Certificate,
} from '../pkix/certificate.js';
import { buildCertificate, wholeSeconds } from '../pkix/certificate-builder.js';
import {
  buildAuthorityKeyIdentifier,
  buildBasicConstraints,
  buildKeyUsage,
  buildSubjectKeyIdentifier,
  keyIdentifier,
  parseBasicConstraints,
  parseKeyUsage,
} from '../pkix/extensions.js';
import { buildName, namesEqual } from '../pkix/name.js';
import { createSigner } from '../pkix/signature.js';
import { caCommandArgs, caDirectory, caLocationParts, listCaNames, type CaLocation } from './ca-location.js';
import { writeFileDurably } from './durable-file.js';
import { CaError, CertificateAuthority, keyMatchesSpki } from './issuer.js';
import { randomSerial } from './serial.js';

const generateKeyPairAsync = promisify(generateKeyPair);

export type CaKeySize = 2048 | 3072 | 4096;

export interface InitCaOptions {
  /** RSA modulus size for generated keys (CA and RA); default 3072. */
  keySize?: CaKeySize;
  /** Subject of a generated CA; default "CN=scepter CA <random>,O=scepter". */
  subject?: string;
  /** Validity of a generated CA in days; default 3650. */
  days?: number;
  /** Also create an RA key pair and certificate issued by the CA. */
  ra?: boolean;
  /** Subject of the RA certificate; default "CN=scepter RA <random>,O=scepter". */
  raSubject?: string;
  /** RA certificate validity in days; default min(730, CA lifetime left). */
  raDays?: number;
  /** Encrypt the private keys on disk with this passphrase. */
  passphrase?: string;
  /** Import: path of the CA private key (PEM PKCS#8/PKCS#1/SEC1 or DER PKCS#8). */
  importKey?: string;
  /** Passphrase of the imported key, if encrypted (default: `passphrase`). */
  importKeyPassphrase?: string;
  /** Import: path of the CA certificate (PEM or DER; further PEM blocks are taken as chain). */
  importCert?: string;
  /** Import: path of the certificates above an intermediate CA (PEM). */
  importChain?: string;
}

export interface CaPaths {
  dir: string;
  key: string;
  cert: string;
  chain: string;
  raKey: string;
  raCert: string;
}

export interface InitCaResult {
  paths: CaPaths;
  caCert: Certificate;
  chain: Certificate[];
  raCert?: Certificate;
  /** Whether the CA key and cert were imported rather than generated. */
  imported: boolean;
  /** Key files are encrypted. */
  encrypted: boolean;
}

export interface LoadedCa {
  ca: CertificateAuthority;
  caCert: Certificate;
  /** Certificates above the CA certificate (empty for a self-signed root). */
  chain: Certificate[];
  ra?: { cert: Certificate; key: KeyObject };
  paths: CaPaths;
}

/** File locations of a CA's material (a bare data directory: its default CA). */
export function caPaths(at: CaLocation): CaPaths {
  const dir = caDirectory(at);
  return {
    dir,
    key: join(dir, 'ca.key'),
    cert: join(dir, 'ca.crt'),
    chain: join(dir, 'chain.pem'),
    raKey: join(dir, 'ra.key'),
    raCert: join(dir, 'ra.crt'),
  };
}

/** True when the CA's certificate or key already exists. */
export function caExists(at: CaLocation): boolean {
  const p = caPaths(at);
  return existsSync(p.key) || existsSync(p.cert);
}

function suffix(): string {
  return randomBytes(4).toString('hex');
}

export function exportKey(key: KeyObject, passphrase: string | undefined): string {
  if (passphrase !== undefined && passphrase !== '') {
    return key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string;
  }
  return key.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** Writes a private key file: mode 0600, durably (src/ca/durable-file.ts), never over an existing file. */
export function writeSecret(path: string, content: string): void {
  writeFileDurably(path, content, { mode: 0o600 });
}

/** Writes a certificate file: mode 0644, durably, never over an existing file. */
export function writePublic(path: string, content: string): void {
  writeFileDurably(path, content, { mode: 0o644 });
}

export async function newRsaKey(bits: number): Promise<KeyObject> {
  const { privateKey } = await generateKeyPairAsync('rsa', { modulusLength: bits });
  return privateKey;
}

export function readPrivateKey(path: string, passphrase: string | undefined, what: string): KeyObject {
  const data = readFileSync(path);
  const text = data.toString('latin1');
  const isPem = text.includes('-----BEGIN');
  const encrypted = isPem && /ENCRYPTED/.test(text);
  if (encrypted && (passphrase === undefined || passphrase === '')) {
    throw new CaError(`${what} is encrypted: set SCEPTER_CA_PASSPHRASE or pass --passphrase-file`);
  }
  try {
    return isPem
      ? createPrivateKey({ key: text, format: 'pem', ...(encrypted ? { passphrase } : {}) })
      : createPrivateKey({ key: data, format: 'der', type: 'pkcs8' });
  } catch {
    throw new CaError(encrypted ? `cannot decrypt ${what}: wrong passphrase?` : `cannot read ${what}`);
  }
}

export function readCertificates(path: string, what: string): Certificate[] {
  const data = readFileSync(path);
  const text = data.toString('latin1');
  const ders = text.includes('-----BEGIN') ? fromPem(text) : [data];
  if (ders.length === 0) throw new CaError(`${what}: no certificate found`);
  try {
    return ders.map((d) => parseCertificate(d));
  } catch {
    throw new CaError(`${what}: malformed certificate`);
  }
}

function isCa(cert: Certificate): boolean {
  const bc = cert.extension(OID.basicConstraints);
  if (!bc) return false;
  try {
    if (!parseBasicConstraints(bc.value).cA) return false;
    const ku = cert.extension(OID.keyUsage);
    return !ku || parseKeyUsage(ku.value).includes('keyCertSign');
  } catch {
    return false;
  }
}

function isSelfIssued(cert: Certificate): boolean {
  return namesEqual(cert.issuerRaw, cert.subjectRaw);
}

/** Checks that `cert` is signed by some certificate in `chain` (its direct issuer). */
function checkIssuedByChain(cert: Certificate, chain: Certificate[]): void {
  const issuer = chain.find((c) => namesEqual(c.subjectRaw, cert.issuerRaw));
  if (!issuer) throw new CaError('the chain does not contain the issuer of the CA certificate');
  if (!verifyCertificateSignature(cert, issuer.publicKey())) {
    throw new CaError('the CA certificate is not signed by its issuer in the chain');
  }
}

/** Self-signed root: cA=TRUE (critical), KU keyCertSign+cRLSign+digitalSignature+keyEncipherment. */
export function buildRootCertificate(key: KeyObject, subject: string, days: number): Buffer {
  const name = buildName(subject);
  const spki = createPublicKeyDer(key);
  const notBefore = wholeSeconds(new Date(Date.now() - 5 * 60_000));
  const keyId = keyIdentifier(spki);
  return buildCertificate(
    {
      serial: randomSerial(),
      issuerRaw: name,
      subjectRaw: name,
      spki,
      notBefore,
      notAfter: new Date(notBefore.getTime() + days * 86_400_000),
      extensions: [
        buildBasicConstraints(true),
        // The CA key also does SCEP transport in CA-only mode (RFC 8894 §2.1.2).
        buildKeyUsage(['digitalSignature', 'keyEncipherment', 'keyCertSign', 'cRLSign']),
        buildSubjectKeyIdentifier(keyId),
      ],
    },
    createSigner(key, 'sha256'),
  );
}

function createPublicKeyDer(key: KeyObject): Buffer {
  return (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' });
}

/** RA certificate issued by the CA: KU digitalSignature+keyEncipherment, cA=FALSE. */
export function buildRaCertificate(
  ca: CertificateAuthority,
  raKey: KeyObject,
  subject: string,
  days: number,
): Buffer {
  const spki = createPublicKeyDer(raKey);
  const notBefore = wholeSeconds(new Date(Date.now() - 5 * 60_000));
  let notAfter = new Date(notBefore.getTime() + days * 86_400_000);
  if (notAfter > ca.cert.notAfter) notAfter = ca.cert.notAfter;
  return buildCertificate(
    {
      serial: randomSerial(),
      issuerRaw: ca.cert.subjectRaw,
      subjectRaw: buildName(subject),
      spki,
      notBefore,
      notAfter,
      extensions: [
        buildBasicConstraints(false),
        buildKeyUsage(['digitalSignature', 'keyEncipherment']),
        buildSubjectKeyIdentifier(keyIdentifier(spki)),
        buildAuthorityKeyIdentifier(ca.keyId),
      ],
    },
    createSigner(ca.key, 'sha256'),
  );
}

/**
 * Creates the CA in `<dataDir>/ca/` (or `<dataDir>/cas/NAME/`): generates a self-signed root, or imports a key and
 * certificate (root or intermediate with its chain); optionally an RA key and certificate.
 * Refuses to overwrite an existing CA.
 */
export async function initCa(at: CaLocation, o: InitCaOptions = {}): Promise<InitCaResult> {
  const paths = caPaths(at);
  if (caExists(at)) throw new CaError(`a CA already exists in ${paths.dir}`);
  const keySize = o.keySize ?? 3072;
  if (![2048, 3072, 4096].includes(keySize)) throw new CaError('key size must be 2048, 3072 or 4096');
  const days = o.days ?? 3650;
  if (!Number.isInteger(days) || days < 1 || days > 36500)
    throw new CaError('days must be between 1 and 36500');
  if ((o.importKey === undefined) !== (o.importCert === undefined)) {
    throw new CaError('import needs both a key and a certificate');
  }
  if (o.importChain !== undefined && o.importCert === undefined)
    throw new CaError('a chain can only be imported with a certificate');

  let key: KeyObject;
  let caCertDer: Buffer;
  let chain: Certificate[] = [];
  const imported = o.importKey !== undefined;
  if (o.importKey !== undefined && o.importCert !== undefined) {
    key = readPrivateKey(o.importKey, o.importKeyPassphrase ?? o.passphrase, 'the imported key');
    const certs = readCertificates(o.importCert, 'the imported certificate');
    const caCert = certs[0]!;
    chain = certs.slice(1);
    if (o.importChain !== undefined) chain.push(...readCertificates(o.importChain, 'the imported chain'));
    if (!keyMatchesSpki(key, caCert.spki))
      throw new CaError('the imported key does not match the certificate');
    if (!isCa(caCert))
      throw new CaError(
        'the imported certificate is not a CA certificate (basicConstraints cA, keyCertSign)',
      );
    if (caCert.notAfter.getTime() <= Date.now()) throw new CaError('the imported certificate has expired');
    if (isSelfIssued(caCert)) {
      if (!verifyCertificateSignature(caCert, caCert.publicKey()))
        throw new CaError('the imported root has a bad self-signature');
      chain = chain.filter((c) => !c.der.equals(caCert.der));
    } else {
      checkIssuedByChain(caCert, chain);
    }
    const twin = caWithCertificate(at, caCert.fingerprint);
    if (twin !== undefined)
      throw new CaError(
        `this certificate is already the CA "${twin}" of the data directory; each CA needs its own ` +
          '(serials and CRLs are kept per CA)',
      );
    caCertDer = caCert.der;
  } else {
    key = await newRsaKey(keySize);
    caCertDer = buildRootCertificate(key, o.subject ?? `CN=scepter CA ${suffix()},O=scepter`, days);
  }
  const caCert = parseCertificate(caCertDer);
  const ca = new CertificateAuthority({ cert: caCert, key, chain: chain.map((c) => c.der) });

  let raKey: KeyObject | undefined;
  let raCertDer: Buffer | undefined;
  if (o.ra) {
    raKey = await newRsaKey(keySize);
    raCertDer = buildRaCertificate(
      ca,
      raKey,
      o.raSubject ?? `CN=scepter RA ${suffix()},O=scepter`,
      o.raDays ?? 730,
    );
  }

  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  writeSecret(paths.key, exportKey(key, o.passphrase));
  writePublic(paths.cert, toPem(caCertDer));
  if (chain.length > 0) writePublic(paths.chain, chain.map((c) => toPem(c.der)).join(''));
  if (raKey && raCertDer) {
    writeSecret(paths.raKey, exportKey(raKey, o.passphrase));
    writePublic(paths.raCert, toPem(raCertDer));
  }
  const result: InitCaResult = {
    paths,
    caCert,
    chain,
    imported,
    encrypted: o.passphrase !== undefined && o.passphrase !== '',
  };
  if (raCertDer) result.raCert = parseCertificate(raCertDer);
  return result;
}

/** The name of another CA of the same data directory whose current certificate has this fingerprint. */
function caWithCertificate(at: CaLocation, fingerprint: string): string | undefined {
  const { dataDir, name } = caLocationParts(at);
  for (const other of listCaNames(dataDir)) {
    if (other === name) continue;
    const file = caPaths({ dataDir, name: other }).cert;
    if (!existsSync(file)) continue;
    if (readCertificates(file, 'ca.crt')[0]?.fingerprint === fingerprint) return other;
  }
  return undefined;
}

/** Loads the CA (and RA, if present) from `<dataDir>/ca/` (or `cas/NAME/`). Synchronous. */
export function loadCa(at: CaLocation, passphrase?: string): LoadedCa {
  const paths = caPaths(at);
  if (!existsSync(paths.key) || !existsSync(paths.cert)) {
    throw new CaError(`no CA in ${paths.dir}: run \`scepter ca init ${caCommandArgs(at)}\``);
  }
  const key = readPrivateKey(paths.key, passphrase, 'the CA key');
  const caCert = readCertificates(paths.cert, 'ca.crt')[0]!;
  const chain = existsSync(paths.chain) ? readCertificates(paths.chain, 'chain.pem') : [];
  const ca = new CertificateAuthority({ cert: caCert, key, chain: chain.map((c) => c.der) });
  const out: LoadedCa = { ca, caCert, chain, paths };
  if (existsSync(paths.raKey) && existsSync(paths.raCert)) {
    const raKey = readPrivateKey(paths.raKey, passphrase, 'the RA key');
    const raCert = readCertificates(paths.raCert, 'ra.crt')[0]!;
    if (!keyMatchesSpki(raKey, raCert.spki)) throw new CaError('the RA key does not match ra.crt');
    out.ra = { cert: raCert, key: raKey };
  }
  return out;
}
