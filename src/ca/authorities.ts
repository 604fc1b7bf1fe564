/**
 * Every CA this data directory has had: the current one (`DIR/ca/`) and those retired by a
 * rollover (`DIR/ca/previous/<sha256-fingerprint>/ca.key|ca.crt`). Certificates issued by a
 * retired CA keep verifying, renewing and being revoked (each issuer has its own CRL), so the
 * retired keys stay on disk with the same protection as the current one.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  fromPem,
  parseCertificate,
  verifyCertificateSignature,
  type Certificate,
} from '../pkix/certificate.js';
import { namesEqual } from '../pkix/name.js';
import { parseAuthorityKeyIdentifier } from '../pkix/extensions.js';
import { OID } from '../asn1/oids.js';
import { CaError, CertificateAuthority } from './issuer.js';
import type { CaLocation } from './ca-location.js';
import { caPaths, readPrivateKey } from './keystore.js';
import type { PrivateKeyLike } from '../crypto/private-key.js';

/** Directory of the CAs retired by `scepter ca activate`. */
export function previousCaDir(at: CaLocation): string {
  return join(caPaths(at).dir, 'previous');
}

/** A retired CA key: PEM (maybe encrypted) or the PKCS#11 URI of a key on a token. */
function readKey(path: string, passphrase: string | undefined): PrivateKeyLike {
  return readPrivateKey(path, passphrase, path);
}

/** Loads a CA (key + certificate, PEM) from one directory holding `ca.key` and `ca.crt`. */
export function loadCaFrom(dir: string, passphrase?: string): CertificateAuthority {
  const certDer = fromPem(readFileSync(join(dir, 'ca.crt'), 'latin1'))[0];
  if (!certDer) throw new CaError(`${dir}/ca.crt holds no certificate`);
  return new CertificateAuthority({
    cert: parseCertificate(certDer),
    key: readKey(join(dir, 'ca.key'), passphrase),
    chain: [],
  });
}

/** The CAs retired by earlier rollovers (newest first by notBefore). */
export function loadPreviousCas(at: CaLocation, passphrase?: string): CertificateAuthority[] {
  const dir = previousCaDir(at);
  if (!existsSync(dir)) return [];
  const out: CertificateAuthority[] = [];
  for (const name of readdirSync(dir)) {
    const sub = join(dir, name);
    if (!existsSync(join(sub, 'ca.crt')) || !existsSync(join(sub, 'ca.key'))) continue;
    out.push(loadCaFrom(sub, passphrase));
  }
  return out.sort((a, b) => b.cert.notBefore.getTime() - a.cert.notBefore.getTime());
}

/** The current CA and the retired ones, with lookups by fingerprint, name and issued certificate. */
export class CaSet {
  /** Current CA first, then retired ones. */
  readonly all: readonly CertificateAuthority[];

  constructor(
    readonly current: CertificateAuthority,
    previous: readonly CertificateAuthority[] = [],
  ) {
    this.all = [current, ...previous.filter((p) => p.cert.fingerprint !== current.cert.fingerprint)];
  }

  /** The CA with this certificate SHA-256 fingerprint (hex, any case). */
  byFingerprint(fp: string): CertificateAuthority | undefined {
    const want = fp
      .toLowerCase()
      .replace(/^sha256:/, '')
      .replace(/:/g, '');
    return this.all.find((c) => c.cert.fingerprint === want);
  }

  /** CAs whose subject Name matches `nameRaw` (RFC 5280 §7.1 comparison). */
  byName(nameRaw: Buffer): CertificateAuthority[] {
    return this.all.filter((c) => namesEqual(c.cert.subjectRaw, nameRaw));
  }

  /**
   * The CA that issued `cert`: its issuer Name matches and its signature verifies under that
   * CA's key. Undefined for self-signed and foreign certificates.
   */
  issuerOf(cert: Certificate): CertificateAuthority | undefined {
    for (const ca of this.byName(cert.issuerRaw)) {
      if (ca.cert.der.equals(cert.der)) continue;
      if (verifyCertificateSignature(cert, ca.cert.publicKey())) return ca;
    }
    return undefined;
  }

  /**
   * The CA that issued a certificate taken from our own store (so issued by one of us): the
   * one CA whose Name and key identifier match its issuer and authorityKeyIdentifier, without
   * a signature check — an ECDSA P-384 verification costs about as much as the signature that
   * made the certificate. Falls back to `issuerOf` whenever that is ambiguous. Never use it for
   * a certificate a client presents.
   */
  issuerOfOwn(cert: Certificate): CertificateAuthority | undefined {
    const ext = cert.extension(OID.authorityKeyIdentifier);
    let aki: Buffer | undefined;
    try {
      aki = ext ? parseAuthorityKeyIdentifier(ext.value) : undefined;
    } catch {
      aki = undefined;
    }
    const named = this.byName(cert.issuerRaw).filter((c) => !c.cert.der.equals(cert.der));
    const hits = aki ? named.filter((c) => c.keyId.equals(aki)) : [];
    return hits.length === 1 ? hits[0] : this.issuerOf(cert);
  }
}
