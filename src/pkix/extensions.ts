/**
 * X.509 v3 extensions (RFC 5280 §4.2): builders that return a complete `Extension` SEQUENCE
 * (ready to splice into a TBSCertificate or a PKCS#9 extensionRequest) and parsers of the
 * extnValue contents. Parsers throw `Asn1Error`/`ExtensionError` on malformed input.
 */
import { digestOf } from '../crypto/hash.js';
import { isIP } from 'node:net';
import * as r from '../asn1/reader.js';
import * as der from '../asn1/writer.js';
import { OID } from '../asn1/oids.js';
import type { Extension } from './certificate.js';

export class ExtensionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExtensionError';
  }
}

/** A GeneralName (RFC 5280 §4.2.1.6). Kinds we do not interpret keep their DER. */
export type GeneralName =
  | { type: 'dns' | 'ip' | 'email' | 'uri'; value: string }
  /** `raw` is the Name DER (SEQUENCE), without the [4] wrapper. */
  | { type: 'dirName'; raw: Buffer }
  /** otherName (e.g. Microsoft UPN), registeredID, x400Address, ediPartyName: `raw` is the whole tagged GeneralName. */
  | { type: 'other'; raw: Buffer };

/** Wraps an extnValue in an Extension SEQUENCE { extnID, critical DEFAULT FALSE, extnValue }. */
export function extension(oid: string, critical: boolean, valueDer: der.Der): der.DerNode {
  const v = der.octetString(der.encode(valueDer));
  return critical ? der.seq(der.oid(oid), der.bool(true), v) : der.seq(der.oid(oid), v);
}

// ---------------------------------------------------------------------------------------
// subjectAltName

function ipBytes(s: string): Buffer {
  const v = isIP(s);
  if (v === 4) return Buffer.from(s.split('.').map((x) => Number(x)));
  if (v === 6) {
    let text = s;
    const tail: number[] = [];
    const m = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
    if (m) {
      tail.push(...m[1]!.split('.').map(Number));
      text = text.slice(0, -m[1]!.length) + '0:0';
    }
    const [head, rest] = text.split('::') as [string, string | undefined];
    const hs = head ? head.split(':') : [];
    const rs = rest !== undefined && rest !== '' ? rest.split(':') : [];
    const fill = rest === undefined ? 0 : 8 - hs.length - rs.length;
    const groups = [...hs, ...Array<string>(fill).fill('0'), ...rs];
    const b = Buffer.alloc(16);
    groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
    if (tail.length) b.set(tail, 12);
    return b;
  }
  throw new ExtensionError(`bad IP address '${s}'`);
}

function ipText(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  if (b.length === 16) {
    const g: number[] = [];
    for (let i = 0; i < 16; i += 2) g.push(b.readUInt16BE(i));
    // Longest run of zero groups (length ≥ 2) becomes '::' (RFC 5952).
    let best = -1,
      bestLen = 0;
    for (let i = 0; i < 8;) {
      if (g[i] !== 0) {
        i++;
        continue;
      }
      let j = i;
      while (j < 8 && g[j] === 0) j++;
      if (j - i > bestLen && j - i >= 2) {
        best = i;
        bestLen = j - i;
      }
      i = j;
    }
    const hex = g.map((x) => x.toString(16));
    if (best < 0) return hex.join(':');
    return hex.slice(0, best).join(':') + '::' + hex.slice(best + bestLen).join(':');
  }
  // Address with mask (name constraints) or junk: show as hex.
  return b.toString('hex');
}

/** Encodes one GeneralName. */
export function generalName(n: GeneralName): der.Der {
  switch (n.type) {
    case 'email':
      return der.implicitPrimitive(1, Buffer.from(n.value, 'latin1'));
    case 'dns':
      return der.implicitPrimitive(2, Buffer.from(n.value, 'latin1'));
    case 'uri':
      return der.implicitPrimitive(6, Buffer.from(n.value, 'latin1'));
    case 'ip':
      return der.implicitPrimitive(7, ipBytes(n.value));
    case 'dirName':
      return der.explicit(4, n.raw);
    case 'other':
      return n.raw;
  }
}

/** Parses GeneralNames (a SEQUENCE OF GeneralName) from its TLV. */
export function parseGeneralNamesTlv(t: r.Tlv): GeneralName[] {
  r.expectTag(t, 0x30, 'GeneralNames');
  return r.children(t).map((g): GeneralName => {
    switch (g.tag) {
      case 0x81:
        return { type: 'email', value: r.value(g).toString('latin1') };
      case 0x82:
        return { type: 'dns', value: r.value(g).toString('latin1') };
      case 0x86:
        return { type: 'uri', value: r.value(g).toString('latin1') };
      case 0x87:
        return { type: 'ip', value: ipText(r.value(g)) };
      case 0xa4:
        return { type: 'dirName', raw: r.raw(new r.Cursor(g).expect(0x30, 'directoryName')) };
      default:
        return { type: 'other', raw: r.raw(g) };
    }
  });
}

/** subjectAltName extnValue → names. */
export function parseSubjectAltName(extValue: Buffer): GeneralName[] {
  return parseGeneralNamesTlv(r.parse(extValue));
}

/** subjectAltName Extension; critical when the subject is empty (RFC 5280 §4.2.1.6). */
export function buildSubjectAltName(names: readonly GeneralName[], critical = false): der.DerNode {
  if (names.length === 0) throw new ExtensionError('subjectAltName needs at least one name');
  return extension(OID.subjectAltName, critical, der.seq(...names.map(generalName)));
}

/**
 * Parses a SAN list such as "dns:a.example,ip:10.0.0.1,email:x@y,uri:urn:uuid:42,10.1.2.3".
 * Prefixes are case-insensitive (DNS:, IP:, email:, URI:). A bare item is an IP address when it
 * is one (v4 or v6), else a DNS name; anything else (an unknown prefix, a bare e-mail address,
 * a name with characters no DNS name has) is refused with a message naming the prefixes.
 */
export function parseSanSpec(spec: string): GeneralName[] {
  const out: GeneralName[] = [];
  for (const item of spec.split(',')) {
    const s = item.trim();
    if (s === '') continue;
    // A bare IPv4/IPv6 address is an iPAddress (IPv6 has colons, so test it before prefixes).
    if (isIP(s)) {
      out.push({ type: 'ip', value: s });
      continue;
    }
    const m = /^(dns|ip|email|uri|ip address):(.*)$/i.exec(s);
    if (!m) {
      const other = /^([a-z][a-z0-9 +.-]*):/i.exec(s);
      if (other)
        throw new ExtensionError(`unknown type '${other[1]!}:' in '${s}' (use dns:, ip:, email: or uri:)`);
      if (s.includes('@')) throw new ExtensionError(`'${s}' looks like an e-mail address: write email:${s}`);
      if (!DNS_NAME.test(s))
        throw new ExtensionError(
          `'${s}' is neither a DNS name nor an IP address (prefix it with dns:, ip:, email: or uri:)`,
        );
    }
    const kind = m ? m[1]!.toLowerCase() : 'dns';
    const value = (m ? m[2]! : s).trim();
    if (value === '') throw new ExtensionError(`empty value in '${s}'`);
    if (kind === 'ip' || kind === 'ip address') {
      if (!isIP(value)) throw new ExtensionError(`bad IP address '${value}'`);
      out.push({ type: 'ip', value });
    } else if (kind === 'dns' || kind === 'email' || kind === 'uri') {
      if (!/^[\x21-\x7e]+$/.test(value)) throw new ExtensionError(`'${value}' must be printable ASCII`);
      out.push({ type: kind, value });
    }
  }
  return out;
}

/** A bare (unprefixed) SAN item taken as a DNS name: labels of letters, digits, '-', '_', optional '*.'. */
const DNS_NAME = /^(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/;

// ---------------------------------------------------------------------------------------
// keyUsage

export const KEY_USAGE_BITS = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
  encipherOnly: 7,
  decipherOnly: 8,
} as const;

export type KeyUsageName = keyof typeof KEY_USAGE_BITS;

/** keyUsage Extension (critical by default, RFC 5280 §4.2.1.3 SHOULD). */
export function buildKeyUsage(usages: readonly KeyUsageName[], critical = true): der.DerNode {
  return extension(OID.keyUsage, critical, der.namedBits(usages.map((u) => KEY_USAGE_BITS[u])));
}

/** keyUsage extnValue → the named bits that are set. */
export function parseKeyUsage(extValue: Buffer): KeyUsageName[] {
  const bs = r.bitString(r.parse(extValue));
  const out: KeyUsageName[] = [];
  for (const [name, bit] of Object.entries(KEY_USAGE_BITS) as Array<[KeyUsageName, number]>) {
    const byte = bs.bytes[bit >> 3];
    if (byte !== undefined && byte & (0x80 >> (bit & 7))) out.push(name);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// extKeyUsage

const EKU_BY_NAME: Readonly<Record<string, string>> = {
  serverAuth: OID.ekuServerAuth,
  clientAuth: OID.ekuClientAuth,
  codeSigning: OID.ekuCodeSigning,
  emailProtection: OID.ekuEmailProtection,
  timeStamping: '1.3.6.1.5.5.7.3.8',
  ocspSigning: OID.ekuOcspSigning,
  ipsecIKE: OID.ekuIpsecIke,
};

/** Dotted OID for an EKU name (serverAuth, clientAuth, …) or a dotted OID as given. */
export function ekuOid(nameOrOid: string): string {
  const o = EKU_BY_NAME[nameOrOid];
  if (o) return o;
  if (/^\d+(\.\d+)+$/.test(nameOrOid)) return nameOrOid;
  throw new ExtensionError(`unknown extended key usage '${nameOrOid}'`);
}

/** extKeyUsage Extension (non-critical) from names or dotted OIDs. */
export function buildExtKeyUsage(usages: readonly string[], critical = false): der.DerNode {
  if (usages.length === 0) throw new ExtensionError('extKeyUsage needs at least one purpose');
  return extension(OID.extKeyUsage, critical, der.seq(...usages.map((u) => der.oid(ekuOid(u)))));
}

/** extKeyUsage extnValue → dotted OIDs. */
export function parseExtKeyUsage(extValue: Buffer): string[] {
  const t = r.expectTag(r.parse(extValue), 0x30, 'ExtKeyUsageSyntax');
  return r.children(t).map((c) => r.oid(c));
}

// ---------------------------------------------------------------------------------------
// basicConstraints

/** basicConstraints Extension (critical). */
export function buildBasicConstraints(cA: boolean, pathLen?: number, critical = true): der.DerNode {
  const items: der.Der[] = [];
  if (cA) items.push(der.bool(true));
  if (cA && pathLen !== undefined) items.push(der.int(pathLen));
  return extension(OID.basicConstraints, critical, der.seq(...items));
}

export interface BasicConstraints {
  cA: boolean;
  pathLen?: number;
}

/** basicConstraints extnValue → { cA, pathLen }. */
export function parseBasicConstraints(extValue: Buffer): BasicConstraints {
  const c = new r.Cursor(r.expectTag(r.parse(extValue), 0x30, 'BasicConstraints'));
  const b = c.optional(r.TAG.BOOLEAN);
  const p = c.optional(r.TAG.INTEGER);
  c.end('BasicConstraints');
  const out: BasicConstraints = { cA: b ? r.bool(b) : false };
  if (p) out.pathLen = r.int(p);
  return out;
}

// ---------------------------------------------------------------------------------------
// Key identifiers, CRL distribution points

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING contents of an SPKI. */
export function keyIdentifier(spki: Buffer): Buffer {
  const c = new r.Cursor(r.expectTag(r.parse(spki), 0x30, 'SubjectPublicKeyInfo'));
  c.expect(0x30, 'algorithm');
  const bits = r.bitString(c.expect(r.TAG.BIT_STRING, 'subjectPublicKey'));
  return digestOf('sha1', bits.bytes);
}

/** subjectKeyIdentifier Extension (non-critical). */
export function buildSubjectKeyIdentifier(keyId: Buffer): der.DerNode {
  return extension(OID.subjectKeyIdentifier, false, der.octetString(keyId));
}

/** authorityKeyIdentifier Extension with only keyIdentifier (non-critical). */
export function buildAuthorityKeyIdentifier(keyId: Buffer): der.DerNode {
  return extension(OID.authorityKeyIdentifier, false, der.seq(der.implicitPrimitive(0, keyId)));
}

/** authorityKeyIdentifier extnValue → keyIdentifier, if present. */
export function parseAuthorityKeyIdentifier(extValue: Buffer): Buffer | undefined {
  const c = new r.Cursor(r.expectTag(r.parse(extValue), 0x30, 'AuthorityKeyIdentifier'));
  const k = c.optional(0x80);
  return k ? r.value(k) : undefined;
}

/** cRLDistributionPoints Extension with one fullName URI per distribution point. */
export function buildCrlDistributionPoints(urls: readonly string[]): der.DerNode {
  if (urls.length === 0) throw new ExtensionError('cRLDistributionPoints needs a URL');
  const points = urls.map((u) =>
    // DistributionPoint { distributionPoint [0] { fullName [0] GeneralNames } }
    der.seq(
      der.implicitConstructed(0, [der.implicitConstructed(0, [generalName({ type: 'uri', value: u })])]),
    ),
  );
  return extension(OID.cRLDistributionPoints, false, der.seq(...points));
}

/** certificatePolicies Extension (non-critical): one PolicyInformation per policy OID, no qualifiers. */
export function buildCertificatePolicies(policyOids: readonly string[]): der.DerNode {
  if (policyOids.length === 0) throw new ExtensionError('certificatePolicies needs a policy');
  return extension(OID.certificatePolicies, false, der.seq(...policyOids.map((o) => der.seq(der.oid(o)))));
}

/** id-ad-caIssuers and id-ad-ocsp (RFC 5280 §4.2.2.1). */
const AD_CA_ISSUERS = '1.3.6.1.5.5.7.48.2';

/** authorityInfoAccess Extension (non-critical) with caIssuers and OCSP URIs. */
export function buildAuthorityInfoAccess(o: {
  caIssuers?: readonly string[];
  ocsp?: readonly string[];
}): der.DerNode {
  const ads = [
    ...(o.ocsp ?? []).map((u) => der.seq(der.oid(OID.adOcsp), generalName({ type: 'uri', value: u }))),
    ...(o.caIssuers ?? []).map((u) =>
      der.seq(der.oid(AD_CA_ISSUERS), generalName({ type: 'uri', value: u })),
    ),
  ];
  if (ads.length === 0) throw new ExtensionError('authorityInfoAccess needs a URL');
  return extension(OID.authorityInfoAccess, false, der.seq(...ads));
}

/** Parses an Extensions SEQUENCE OF Extension. */
export function parseExtensionsTlv(t: r.Tlv): Extension[] {
  r.expectTag(t, 0x30, 'Extensions');
  return r.children(t).map((e) => {
    const ec = new r.Cursor(r.expectTag(e, 0x30, 'Extension'));
    const oid = r.oid(ec.expect(r.TAG.OID, 'extnID'));
    const crit = ec.optional(r.TAG.BOOLEAN);
    const value = r.octets(ec.expect(r.TAG.OCTET_STRING, 'extnValue'));
    ec.end('Extension');
    return { oid, critical: crit ? r.bool(crit) : false, value };
  });
}

/**
 * The subjectAltNames of a certificate: none when it has no such extension, or when the
 * extension cannot be read (then nothing matches a name in it).
 */
export function subjectAltNamesOf(cert: { extension(oid: string): Extension | undefined }): GeneralName[] {
  const ext = cert.extension(OID.subjectAltName);
  if (!ext) return [];
  try {
    return parseSubjectAltName(ext.value);
  } catch {
    return [];
  }
}
