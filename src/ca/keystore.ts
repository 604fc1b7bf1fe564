/**
 * A CA's key material on disk, under `<data>/ca/` (the default CA) or `<data>/cas/NAME/` (a
 * named CA, see ca-location.ts):
 *
 *   ca.key     PKCS#8 PEM, mode 0600; AES-256-CBC encrypted when a passphrase is given; or,
 *              for a key on an HSM, one line: its PKCS#11 URI (RFC 7512, never with a PIN)
 *   ca.crt     the CA certificate (self-signed root, or an imported root/intermediate)
 *   chain.pem  optional: the certificates above an imported intermediate (for GetCACert)
 *   ra.key     optional RA key (same protection as ca.key; a PKCS#11 URI for a token key)
 *   ra.crt     optional RA certificate issued by the CA (KU digitalSignature+keyEncipherment)
 *
 * The library takes a passphrase string; the CLI resolves it from SCEPTER_CA_PASSPHRASE or
 * --passphrase-file. Passphrases never appear in messages. The PIN of a token key comes from
 * the URI's pin-source file or SCEPTER_PKCS11_PIN (read here, so worker threads find it too).
 */
import { createPrivateKey, generateKeyPair, KeyObject, randomBytes } from 'node:crypto';
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
import { generatePkcs11RsaKey, openPkcs11Key, Pkcs11Key } from '../crypto/pkcs11-key.js';
import { formatPkcs11Uri, parsePkcs11Uri, Pkcs11UriError } from '../crypto/pkcs11-uri.js';
import { Pkcs11SetupError } from '../crypto/pkcs11.js';
import { handleSpki, keyHandle, type PrivateKeyLike } from '../crypto/private-key.js';
import { caCommandArgs, caDirectory, caLocationParts, listCaNames, type CaLocation } from './ca-location.js';
import { writeFileDurably } from './durable-file.js';
import { caDigest, caKeyUsage, CaError, CertificateAuthority, keyMatchesSpki } from './issuer.js';
import { randomSerial } from './serial.js';

const generateKeyPairAsync = promisify(generateKeyPair);

export type CaKeySize = 2048 | 3072 | 4096;

/**
 * Type of a generated CA key: RSA (`keySize` bits) or EC. An EC CA key cannot decrypt SCEP
 * envelopes, so it needs RA mode: the RA key stays RSA and the EC key only signs certificates
 * and CRLs.
 */
export type CaKeyType = 'rsa' | 'ec-p256' | 'ec-p384';

/** The refusal of an EC CA without an RA (CA-only mode). */
export const EC_CA_NEEDS_RA =
  'an EC CA key cannot decrypt SCEP requests: an EC CA needs RA mode (--ra), where an RSA RA key decrypts and signs the SCEP messages';

export interface InitCaOptions {
  /** RSA modulus size for generated keys (CA and RA); default 3072. */
  keySize?: CaKeySize;
  /**
   * RSA modulus size of a generated RA key when it should differ from `keySize` (e.g. a
   * 2048-bit RA under a 3072-bit CA: docs/benchmarks.md "The default configuration").
   */
  raKeySize?: CaKeySize;
  /** Type of a generated CA key (default 'rsa'); EC needs `ra`. The RA key is always RSA. */
  caKeyType?: CaKeyType;
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
  /**
   * The CA key on a PKCS#11 token (RFC 7512 URI with module-path): generated there
   * (non-extractable, sensitive), or the existing object with `pkcs11Existing`.
   */
  pkcs11Uri?: string;
  /** The RA key on a PKCS#11 token (same rules; may be another token). */
  raPkcs11Uri?: string;
  /** Use the key objects the URIs name instead of generating new ones. */
  pkcs11Existing?: boolean;
  /** Accept pin-value in the URIs (discouraged: it ends up in shell history; never recorded). */
  allowPinValue?: boolean;
  /** The PIN when a URI has no pin-source (default SCEPTER_PKCS11_PIN). */
  pkcs11Pin?: string;
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
  /** The recorded PKCS#11 URI of a CA key on a token. */
  caKeyUri?: string;
  /** The recorded PKCS#11 URI of an RA key on a token. */
  raKeyUri?: string;
}

export interface LoadedCa {
  ca: CertificateAuthority;
  caCert: Certificate;
  /** Certificates above the CA certificate (empty for a self-signed root). */
  chain: Certificate[];
  ra?: { cert: Certificate; key: PrivateKeyLike };
  paths: CaPaths;
  /** Closes the sessions of keys on a token (nothing to do for software keys). */
  close(): void;
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

/** Whether a key file holds a PKCS#11 URI instead of a key. */
function isUriFile(text: string): boolean {
  return text.startsWith('pkcs11:');
}

/** Opens a token key by URI; configuration problems become a CaError naming `what`. */
function tokenKey(
  uri: string,
  what: string,
  o: { allowPinValue?: boolean; pkcs11Pin?: string; generateBits?: number } = {},
): Pkcs11Key {
  const pin = o.pkcs11Pin ?? process.env['SCEPTER_PKCS11_PIN'];
  const opts: { allowPinValue?: boolean; pin?: string } = {};
  if (o.allowPinValue) opts.allowPinValue = true;
  if (pin !== undefined) opts.pin = pin;
  try {
    return o.generateBits !== undefined
      ? generatePkcs11RsaKey(uri, o.generateBits, opts)
      : openPkcs11Key(uri, opts);
  } catch (e) {
    if (e instanceof Pkcs11SetupError || e instanceof Pkcs11UriError)
      throw new CaError(`${what}: ${e.message}`);
    throw e;
  }
}

/** What a key file records for a token key: the URI without any PIN. */
function recordedUri(uri: string, allowPinValue: boolean | undefined): string {
  return `${formatPkcs11Uri(parsePkcs11Uri(uri, allowPinValue ? { allowPinValue: true } : {}))}\n`;
}

/** A new CA key of `type` (RSA of `bits`). */
export async function newCaKey(type: CaKeyType, bits: number): Promise<KeyObject> {
  if (type === 'rsa') return newRsaKey(bits);
  const namedCurve = type === 'ec-p384' ? 'secp384r1' : 'prime256v1';
  const { privateKey } = await generateKeyPairAsync('ec', { namedCurve });
  return privateKey;
}

/** The CaKeyType of a key (undefined for other key types and curves). */
export function caKeyTypeOf(key: PrivateKeyLike): CaKeyType | undefined {
  const pub = keyHandle(key).publicKey;
  if (pub.asymmetricKeyType === 'rsa') return 'rsa';
  const c = pub.asymmetricKeyType === 'ec' ? pub.asymmetricKeyDetails?.namedCurve : undefined;
  return c === 'prime256v1' ? 'ec-p256' : c === 'secp384r1' ? 'ec-p384' : undefined;
}

/**
 * Reads a private key file: PEM/DER (decrypted with `passphrase` when encrypted), or a
 * PKCS#11 URI line, which opens the key on its token (start-up errors name module, token,
 * PIN or object).
 */
export function readPrivateKey(path: string, passphrase: string | undefined, what: string): PrivateKeyLike {
  const data = readFileSync(path);
  const text = data.toString('latin1');
  if (isUriFile(text)) return tokenKey(text.trim(), what);
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

/**
 * Self-signed root: cA=TRUE (critical), KU keyCertSign+cRLSign+digitalSignature, plus
 * keyEncipherment for an RSA key; signed with SHA-256 (an EC key: its curve's digest).
 */
export function buildRootCertificate(key: PrivateKeyLike, subject: string, days: number): Buffer {
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
        // An RSA CA key also does SCEP transport in CA-only mode (RFC 8894 §2.1.2).
        buildKeyUsage(caKeyUsage(key)),
        buildSubjectKeyIdentifier(keyId),
      ],
    },
    createSigner(key, caDigest(key)),
  );
}

function createPublicKeyDer(key: PrivateKeyLike): Buffer {
  return key instanceof KeyObject && key.type === 'public'
    ? key.export({ type: 'spki', format: 'der' })
    : handleSpki(key);
}

/** RA certificate issued by the CA: KU digitalSignature+keyEncipherment, cA=FALSE. */
export function buildRaCertificate(
  ca: CertificateAuthority,
  raKey: PrivateKeyLike,
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
    createSigner(ca.key, caDigest(ca.key)),
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
  const raKeySize = o.raKeySize ?? keySize;
  if (![2048, 3072, 4096].includes(raKeySize)) throw new CaError('RA key size must be 2048, 3072 or 4096');
  if (o.raKeySize !== undefined && !o.ra) throw new CaError('an RA key size needs an RA');
  const days = o.days ?? 3650;
  if (!Number.isInteger(days) || days < 1 || days > 36500)
    throw new CaError('days must be between 1 and 36500');
  const tokenCa = o.pkcs11Uri !== undefined;
  if (tokenCa && o.importKey !== undefined) throw new CaError('the CA key is either imported or on a token');
  if (!tokenCa && (o.importKey === undefined) !== (o.importCert === undefined)) {
    throw new CaError('import needs both a key and a certificate');
  }
  if (o.importChain !== undefined && o.importCert === undefined)
    throw new CaError('a chain can only be imported with a certificate');
  if (o.pkcs11Existing && !tokenCa && o.raPkcs11Uri === undefined)
    throw new CaError('an existing token key needs a PKCS#11 URI');
  if (o.raPkcs11Uri !== undefined && !o.ra) throw new CaError('an RA key on a token needs an RA');
  const tokenOpts: { allowPinValue?: boolean; pkcs11Pin?: string } = {};
  if (o.allowPinValue) tokenOpts.allowPinValue = true;
  if (o.pkcs11Pin !== undefined) tokenOpts.pkcs11Pin = o.pkcs11Pin;
  // Checked before anything is generated: the URIs parse and are recorded without a PIN.
  const caKeyRecord = tokenCa ? recordedUri(o.pkcs11Uri!, o.allowPinValue) : undefined;
  const raKeyRecord = o.raPkcs11Uri !== undefined ? recordedUri(o.raPkcs11Uri, o.allowPinValue) : undefined;
  const tokenKeyFor = (uri: string, what: string, bits = keySize) =>
    tokenKey(uri, what, o.pkcs11Existing ? tokenOpts : { generateBits: bits, ...tokenOpts });

  let key: PrivateKeyLike;
  let caCertDer: Buffer;
  let chain: Certificate[] = [];
  const imported = o.importCert !== undefined;
  if (o.importCert !== undefined) {
    key = tokenCa
      ? tokenKeyFor(o.pkcs11Uri!, 'the CA key')
      : readPrivateKey(o.importKey!, o.importKeyPassphrase ?? o.passphrase, 'the imported key');
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
    key = tokenCa ? tokenKeyFor(o.pkcs11Uri!, 'the CA key') : await newCaKey(o.caKeyType ?? 'rsa', keySize);
    caCertDer = buildRootCertificate(key, o.subject ?? `CN=scepter CA ${suffix()},O=scepter`, days);
  }
  if (keyHandle(key).type !== 'rsa' && !o.ra) throw new CaError(EC_CA_NEEDS_RA);
  if (!caKeyTypeOf(key)) throw new CaError('the CA key must be RSA, or EC on P-256 or P-384');
  const caCert = parseCertificate(caCertDer);
  const ca = new CertificateAuthority({ cert: caCert, key, chain: chain.map((c) => c.der) });

  let raKey: PrivateKeyLike | undefined;
  let raCertDer: Buffer | undefined;
  if (o.ra) {
    raKey =
      o.raPkcs11Uri !== undefined
        ? tokenKeyFor(o.raPkcs11Uri, 'the RA key', raKeySize)
        : await newRsaKey(raKeySize);
    raCertDer = buildRaCertificate(
      ca,
      raKey,
      o.raSubject ?? `CN=scepter RA ${suffix()},O=scepter`,
      o.raDays ?? 730,
    );
  }

  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  writeSecret(paths.key, caKeyRecord ?? exportKey(key as KeyObject, o.passphrase));
  writePublic(paths.cert, toPem(caCertDer));
  if (chain.length > 0) writePublic(paths.chain, chain.map((c) => toPem(c.der)).join(''));
  if (raKey && raCertDer) {
    writeSecret(paths.raKey, raKeyRecord ?? exportKey(raKey as KeyObject, o.passphrase));
    writePublic(paths.raCert, toPem(raCertDer));
  }
  for (const k of [key, raKey]) if (k instanceof Pkcs11Key) k.close();
  const result: InitCaResult = {
    paths,
    caCert,
    chain,
    imported,
    encrypted: o.passphrase !== undefined && o.passphrase !== '',
  };
  if (caKeyRecord) result.caKeyUri = caKeyRecord.trim();
  if (raKeyRecord) result.raKeyUri = raKeyRecord.trim();
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
  const keys: PrivateKeyLike[] = [key];
  const close = () => {
    for (const k of keys) if (k instanceof Pkcs11Key) k.close();
  };
  try {
    const ca = new CertificateAuthority({ cert: caCert, key, chain: chain.map((c) => c.der) });
    const out: LoadedCa = { ca, caCert, chain, paths, close };
    if (existsSync(paths.raKey) && existsSync(paths.raCert)) {
      const raKey = readPrivateKey(paths.raKey, passphrase, 'the RA key');
      keys.push(raKey);
      const raCert = readCertificates(paths.raCert, 'ra.crt')[0]!;
      if (!keyMatchesSpki(raKey, raCert.spki)) throw new CaError('the RA key does not match ra.crt');
      out.ra = { cert: raCert, key: raKey };
    }
    if (keyHandle(key).type !== 'rsa' && !out.ra) throw new CaError(`${EC_CA_NEEDS_RA} (${paths.dir})`);
    return out;
  } catch (e) {
    close();
    throw e;
  }
}
