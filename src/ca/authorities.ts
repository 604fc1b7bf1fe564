/**
 * Every CA this data directory has had: the current one (`DIR/ca/`) and those retired by a
 * rollover (`DIR/ca/previous/<sha256-fingerprint>/ca.key|ca.crt`). Certificates issued by a
 * retired CA keep verifying, renewing and being revoked (each issuer has its own CRL), so the
 * retired keys stay on disk with the same protection as the current one.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  fromPem,
  parseCertificate,
  verifyCertificateSignature,
  type Certificate,
} from '../pkix/certificate.js';
import { namesEqual } from '../pkix/name.js';
import { CaError, CertificateAuthority } from './issuer.js';
import type { CaLocation } from './ca-location.js';
import { caPaths } from './keystore.js';

/** Directory of the CAs retired by `scepter ca activate`. */
export function previousCaDir(at: CaLocation): string {
  return join(caPaths(at).dir, 'previous');
}

function readKey(path: string, passphrase: string | undefined): KeyObject {
  const text = readFileSync(path, 'latin1');
  const encrypted = /ENCRYPTED/.test(text);
  if (encrypted && (passphrase === undefined || passphrase === '')) {
    throw new CaError(`${path} is encrypted: set SCEPTER_CA_PASSPHRASE or pass --passphrase-file`);
  }
  try {
    return createPrivateKey(
      encrypted ? { key: text, format: 'pem', passphrase } : { key: text, format: 'pem' },
    );
  } catch {
    throw new CaError(`cannot read ${path}${encrypted ? ' (wrong passphrase?)' : ''}`);
  }
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
}
