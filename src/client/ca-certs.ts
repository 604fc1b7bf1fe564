/**
 * Making sense of a GetCACert answer on the client side (RFC 8894 §4.2.1, docs/conformance.md §1):
 * authenticate the CA (pinned SHA-256 fingerprint over the whole certificate DER, or trust on
 * first use with the fingerprint reported), keep only certificates that chain to it, and pick
 * - the encryption recipient: a non-CA (RA) certificate with keyEncipherment, else the CA;
 * - the CertRep signers we accept: RA certificates with digitalSignature, and the CA.
 * Certificates are never picked by their position in the bundle (NDES puts the RA last).
 */
import { namesEqual } from '../pkix/name.js';
import { verifyCertificateSignature, type Certificate } from '../pkix/certificate.js';
import { parseBasicConstraints, parseKeyUsage, type KeyUsageName } from '../pkix/extensions.js';
import { OID } from '../asn1/oids.js';
import { ScepArgumentError, ScepProtocolError } from './errors.js';

export interface CaCertificates {
  /** Every certificate the server sent, in its order. */
  all: Certificate[];
  /** The issuing CA (names the issuer in CertPoll, GetCert and GetCRL). */
  ca: Certificate;
  /** The authenticated CA chain, issuing CA first. */
  caChain: Certificate[];
  /**
   * Every authenticated CA certificate of the answer: the chain plus any other CA that
   * chains to the trust anchor (e.g. a previous CA the server still sends).
   */
  cas: Certificate[];
  /** Recipient of the pkcsPKIEnvelope. */
  encryption: Certificate;
  /** Certificates whose signature on a CertRep is accepted (RA signing certs and the CA). */
  signers: Certificate[];
  /** True when separate RA certificates are in use. */
  ra: boolean;
  /** SHA-256 fingerprint (hex) of the certificate the trust was anchored on. */
  anchorFingerprint: string;
}

/** Normalises `sha256:AB:CD…`, `AB CD …` or plain hex into 64 lower-case hex digits. */
export function parseFingerprint(text: string): string {
  let s = text.trim();
  const m = /^([a-z0-9-]+):(?=[0-9a-f]{2}[^0-9a-f]?)/i.exec(s);
  if (m && /^sha-?256$/i.test(m[1]!)) s = s.slice(m[0].length);
  else if (m && !/^[0-9a-f]{2}$/i.test(m[1]!))
    throw new ScepArgumentError(
      'invalid-fingerprint',
      `unsupported fingerprint algorithm '${m[1]}' (use sha256)`,
    );
  const hex = s.replace(/[\s:]/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex))
    throw new ScepArgumentError(
      'invalid-fingerprint',
      'a CA fingerprint must be a SHA-256 digest: 64 hex digits, optionally prefixed sha256:',
    );
  return hex;
}

/**
 * The one display form of a fingerprint everywhere (CLI, logs, docs): `sha256:` + 64 lower-case
 * hex digits, no colons — the same hex the store, CRL URLs and `DIR/ca/previous/` use.
 * `parseFingerprint` also accepts colons, spaces and upper case.
 */
export function formatFingerprint(hex: string): string {
  return 'sha256:' + hex.replace(/[\s:]/g, '').toLowerCase();
}

function isCa(c: Certificate): boolean {
  const bc = c.extension(OID.basicConstraints);
  if (!bc) return false;
  try {
    return parseBasicConstraints(bc.value).cA;
  } catch {
    return false;
  }
}

/** The keyUsage bits, or undefined when the extension is absent or unreadable. */
function keyUsage(c: Certificate): KeyUsageName[] | undefined {
  const ku = c.extension(OID.keyUsage);
  if (!ku) return undefined;
  try {
    return parseKeyUsage(ku.value);
  } catch {
    return undefined;
  }
}

function issuedBy(child: Certificate, parent: Certificate): boolean {
  if (!namesEqual(child.issuerRaw, parent.subjectRaw)) return false;
  let key;
  try {
    key = parent.publicKey();
  } catch {
    return false;
  }
  return verifyCertificateSignature(child, key);
}

function selfSigned(c: Certificate): boolean {
  return issuedBy(c, c);
}

function isRsa(c: Certificate): boolean {
  try {
    return c.publicKey().asymmetricKeyType === 'rsa';
  } catch {
    return false;
  }
}

/**
 * Authenticates and classifies a GetCACert bundle. With `pin` (hex SHA-256), one certificate
 * must match it and becomes the trust anchor; without it, the self-signed CA certificates are
 * the anchors (trust on first use) or, if there is none, the CA certificates themselves.
 * Throws ScepProtocolError when nothing usable is authenticated.
 */
export function classifyCaCertificates(all: Certificate[], pin?: string): CaCertificates {
  if (all.length === 0) throw new ScepProtocolError('bad-ca-certs', 'GetCACert returned no certificate');
  let anchors: Certificate[];
  if (pin !== undefined) {
    const hit = all.find((c) => c.fingerprint === pin);
    if (!hit) {
      throw new ScepProtocolError(
        'ca-not-pinned',
        `no certificate from GetCACert matches the pinned fingerprint ${formatFingerprint(pin)} (got ${all
          .map((c) => formatFingerprint(c.fingerprint))
          .join(', ')})`,
      );
    }
    anchors = [hit];
  } else if (all.length === 1) {
    anchors = [all[0]!];
  } else {
    anchors = all.filter((c) => isCa(c) && selfSigned(c));
    if (anchors.length === 0) anchors = all.filter(isCa);
    if (anchors.length === 0)
      throw new ScepProtocolError('bad-ca-certs', 'GetCACert returned no CA certificate');
  }
  // Everything that chains to an anchor through the bundle is trusted.
  const trusted = new Set<Certificate>(anchors);
  for (let grew = true; grew;) {
    grew = false;
    for (const c of all) {
      if (trusted.has(c)) continue;
      for (const t of trusted) {
        if ((isCa(t) || anchors.includes(t)) && issuedBy(c, t)) {
          trusted.add(c);
          grew = true;
          break;
        }
      }
    }
  }
  const trustedList = all.filter((c) => trusted.has(c));
  const cas = trustedList.filter(
    (c) => isCa(c) || (anchors.includes(c) && !trustedList.some((o) => o !== c && isCa(o))),
  );
  const ras = trustedList.filter((c) => !cas.includes(c) && isRsa(c));
  if (cas.length === 0)
    throw new ScepProtocolError(
      'ca-not-trusted',
      'no CA certificate in the GetCACert answer chains to the trust anchor',
    );

  // The issuing CA: the issuer of the RA certificates, else the CA that issued no other CA here.
  let ca: Certificate | undefined;
  if (ras.length > 0) ca = cas.find((c) => ras.some((r) => issuedBy(r, c)));
  ca ??= cas.find((c) => !cas.some((o) => o !== c && issuedBy(o, c))) ?? cas[0]!;
  const caChain: Certificate[] = [ca];
  for (let cur = ca; caChain.length < cas.length;) {
    const parent = cas.find((p) => p !== cur && !caChain.includes(p) && issuedBy(cur, p));
    if (!parent) break;
    caChain.push(parent);
    cur = parent;
  }

  const ku = (c: Certificate) => keyUsage(c);
  const encryption =
    ras.find((c) => ku(c)?.includes('keyEncipherment')) ?? ras.find((c) => ku(c) === undefined) ?? ca;
  const raSigners = ras.filter((c) => {
    const u = ku(c);
    return u === undefined || u.includes('digitalSignature');
  });
  const anchor = anchors[0]!;
  return {
    all,
    ca,
    caChain,
    cas: [...caChain, ...cas.filter((c) => !caChain.includes(c))],
    encryption,
    signers: [...raSigners, ca],
    ra: ras.length > 0,
    anchorFingerprint: anchor.fingerprint,
  };
}
