/**
 * Syntax checks of what a CA copies from a certification request into a certificate: the
 * subject Name (RFC 5280 §4.1.2.4, upper bounds of its Appendix A), the subjectAltName
 * GeneralNames (§4.2.1.6) and the RSA public key (RFC 8017 §3.1, NIST SP 800-89 §5.3.3).
 *
 * Pure functions over DER read with the project's own reader (hot path). Each returns
 * undefined when the input is acceptable, or a problem text that names the field and shows
 * the offending value escaped (`escapeValue`), safe to send to a client and to log.
 */
import * as r from '../asn1/reader.js';
import { OID } from '../asn1/oids.js';
import { escapeQuoted } from './text.js';

/** Microsoft User Principal Name otherName (szOID_NT_PRINCIPAL_NAME). */
export const OID_MS_UPN = '1.3.6.1.4.1.311.20.2.3';

export interface GeneralNameCheckOptions {
  /** Accept a dNSName whose first label is `*` (e.g. `*.corp.example`). Default false. */
  allowWildcards?: boolean;
  /** otherName type OIDs accepted (default: only the Microsoft UPN, OID_MS_UPN). */
  allowedOtherNames?: readonly string[];
  /** Longest encoded value of one name (URI, rfc822Name, otherName, …), bytes (default 512). */
  maxNameLength?: number;
  /** Accept directoryName entries (checked like a subject). Default true. */
  allowDirectoryNames?: boolean;
}

export interface SubjectCheckOptions {
  /** Most attributes in a Name (default 16). */
  maxAttributes?: number;
  /** Largest Name DER, bytes (default 1024). */
  maxBytes?: number;
}

/** Defaults of the checks (documented in docs/security.md). */
export const NAME_CHECK_DEFAULTS = {
  allowWildcards: false,
  allowedOtherNames: [OID_MS_UPN] as readonly string[],
  maxNameLength: 512,
  allowDirectoryNames: true,
  maxAttributes: 16,
  maxSubjectBytes: 1024,
} as const;

// ---------------------------------------------------------------------------------------
// Escaping

const SHOW_MAX = 80;

/**
 * A value for a message: printable ASCII as is (`\` and `'` escaped), everything else as
 * `\xNN` (bytes) or `\u{…}` (code points); longer than 80 characters → cut with `…`.
 */
export function escapeValue(v: string | Buffer): string {
  return escapeQuoted(v, "'", SHOW_MAX);
}

// ---------------------------------------------------------------------------------------
// Characters

/** C0, DEL, C1 controls and bidirectional overrides/isolates (spoofing in displays). */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]/u;
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes a string value of an allowed type, or returns a problem. */
function decodeString(t: r.Tlv, allowed: ReadonlySet<number>): { text: string } | { problem: string } {
  if (t.constructed || t.indefinite) return { problem: 'is not a primitive DER string' };
  if (!allowed.has(t.tag))
    return { problem: `has a string type (tag 0x${t.tag.toString(16)}) not allowed here` };
  const v = r.value(t);
  switch (t.tag) {
    case r.TAG.PRINTABLE_STRING: {
      const s = v.toString('latin1');
      if (!PRINTABLE.test(s)) return { problem: `'${escapeValue(v)}' is not a valid PrintableString` };
      return { text: s };
    }
    case r.TAG.IA5_STRING: {
      if (v.some((b) => b > 0x7f)) return { problem: `'${escapeValue(v)}' is not a valid IA5String` };
      return { text: v.toString('latin1') };
    }
    case r.TAG.UTF8_STRING:
      try {
        return { text: UTF8.decode(v) };
      } catch {
        return { problem: `'${escapeValue(v)}' is not valid UTF-8` };
      }
    case r.TAG.BMP_STRING: {
      if (v.length % 2) return { problem: 'is an odd-length BMPString' };
      const sw = Buffer.from(v);
      sw.swap16();
      const s = sw.toString('utf16le');
      if (/[\ud800-\udfff]/.test(s)) return { problem: 'is a BMPString with surrogates' };
      return { text: s };
    }
    default:
      return { problem: `has a string type (tag 0x${t.tag.toString(16)}) not allowed here` };
  }
}

// ---------------------------------------------------------------------------------------
// Subject Name

const DIRECTORY_STRING = new Set<number>([r.TAG.PRINTABLE_STRING, r.TAG.UTF8_STRING, r.TAG.BMP_STRING]);
const PRINTABLE_ONLY = new Set<number>([r.TAG.PRINTABLE_STRING]);
const IA5_ONLY = new Set<number>([r.TAG.IA5_STRING]);
const DIRECTORY_OR_IA5 = new Set<number>([...DIRECTORY_STRING, r.TAG.IA5_STRING]);

interface AttrRule {
  label: string;
  types: ReadonlySet<number>;
  /** Upper bound in characters. */
  max: number;
  pattern?: RegExp;
}

const OID_DN_QUALIFIER = '2.5.4.46';
const OID_POSTAL_CODE = '2.5.4.17';
const OID_PSEUDONYM = '2.5.4.65';
const OID_ORGANIZATION_IDENTIFIER = '2.5.4.97';

/** RFC 5280 Appendix A upper bounds (ub-*); types without one get 128 (documented). */
const RULES = new Map<string, AttrRule>([
  [OID.commonName, { label: 'CN', types: DIRECTORY_STRING, max: 64 }],
  [OID.organizationName, { label: 'O', types: DIRECTORY_STRING, max: 64 }],
  [OID.organizationalUnitName, { label: 'OU', types: DIRECTORY_STRING, max: 64 }],
  [OID.localityName, { label: 'L', types: DIRECTORY_STRING, max: 128 }],
  [OID.stateOrProvinceName, { label: 'ST', types: DIRECTORY_STRING, max: 128 }],
  [OID.title, { label: 'title', types: DIRECTORY_STRING, max: 64 }],
  [OID.surname, { label: 'SN', types: DIRECTORY_STRING, max: 64 }],
  [OID.givenName, { label: 'GN', types: DIRECTORY_STRING, max: 64 }],
  [OID_PSEUDONYM, { label: 'pseudonym', types: DIRECTORY_STRING, max: 128 }],
  [OID.streetAddress, { label: 'STREET', types: DIRECTORY_STRING, max: 128 }],
  [OID_POSTAL_CODE, { label: 'postalCode', types: DIRECTORY_STRING, max: 40 }],
  [OID_ORGANIZATION_IDENTIFIER, { label: 'organizationIdentifier', types: DIRECTORY_STRING, max: 128 }],
  [OID.userId, { label: 'UID', types: DIRECTORY_STRING, max: 128 }],
  [OID.countryName, { label: 'C', types: PRINTABLE_ONLY, max: 2, pattern: /^[A-Za-z]{2}$/ }],
  [OID.serialNumber, { label: 'serialNumber', types: PRINTABLE_ONLY, max: 64 }],
  [OID_DN_QUALIFIER, { label: 'dnQualifier', types: PRINTABLE_ONLY, max: 64 }],
  [OID.emailAddress, { label: 'emailAddress', types: IA5_ONLY, max: 255 }],
  [OID.domainComponent, { label: 'DC', types: IA5_ONLY, max: 63, pattern: /^[A-Za-z0-9-]+$/ }],
  [OID.unstructuredName, { label: 'unstructuredName', types: DIRECTORY_OR_IA5, max: 128 }],
  [OID.unstructuredAddress, { label: 'unstructuredAddress', types: DIRECTORY_STRING, max: 128 }],
]);

/** Attribute types outside RULES: any DirectoryString or IA5String of at most 128 characters. */
const OTHER_RULE: Omit<AttrRule, 'label'> = { types: DIRECTORY_OR_IA5, max: 128 };

function attrProblem(oid: string, v: r.Tlv): string | undefined {
  const rule = RULES.get(oid);
  const label = rule?.label ?? oid;
  const d = decodeString(v, (rule ?? OTHER_RULE).types);
  if ('problem' in d) return `subject ${label} ${d.problem}`;
  const s = d.text;
  // The escaped value only when there is a problem to show it in (the common case has none).
  const shown = () => `subject ${label} '${escapeValue(s)}'`;
  if (s.length === 0) return `subject ${label} is empty`;
  if (CONTROL.test(s)) return `${shown()} contains control characters`;
  const max = (rule ?? OTHER_RULE).max;
  if (s.length > max && [...s].length > max) return `${shown()} is longer than ${max} characters`;
  if (rule?.pattern && !rule.pattern.test(s)) return `${shown()} is not a valid ${label} value`;
  return undefined;
}

/**
 * Checks a Name DER (a subject, or a directoryName): SEQUENCE OF non-empty SET OF
 * { OID, one string value }, definite lengths, each value of a type and length allowed for its
 * attribute and without control characters. Never throws.
 */
export function subjectProblem(raw: Buffer, o: SubjectCheckOptions = {}): string | undefined {
  const maxBytes = o.maxBytes ?? NAME_CHECK_DEFAULTS.maxSubjectBytes;
  const maxAttrs = o.maxAttributes ?? NAME_CHECK_DEFAULTS.maxAttributes;
  if (raw.length > maxBytes) return `subject is larger than ${maxBytes} bytes`;
  try {
    const top = r.parse(raw);
    if (top.tag !== 0x30 || top.indefinite) return 'subject is not a Name (SEQUENCE OF RDN)';
    let count = 0;
    for (const rdn of r.children(top)) {
      if (rdn.tag !== 0x31 || rdn.indefinite) return 'subject is not a Name (an RDN is not a SET)';
      const avas = r.children(rdn);
      if (avas.length === 0) return 'subject has an empty RDN';
      for (const ava of avas) {
        if (ava.tag !== 0x30 || ava.indefinite) return 'subject has an attribute that is not a SEQUENCE';
        const parts = r.children(ava);
        if (parts.length !== 2 || parts[0]!.tag !== r.TAG.OID)
          return 'subject has an attribute that is not { type, value }';
        if (++count > maxAttrs) return `subject has more than ${maxAttrs} attributes`;
        const p = attrProblem(r.oid(parts[0]!), parts[1]!);
        if (p) return p;
      }
    }
  } catch (e) {
    return `subject is malformed${e instanceof r.Asn1Error ? `: ${e.message}` : ''}`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------
// GeneralNames

const LDH_LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** A dNSName (RFC 5280 §4.2.1.6, RFC 1034 preferred syntax): problem text or undefined. */
export function dnsNameProblem(name: string, allowWildcards = false): string | undefined {
  const shown = () => `SAN dNSName '${escapeValue(name)}'`;
  if (name.length === 0) return 'SAN dNSName is empty';
  if (name.length > 253) return `${shown()} is longer than 253 characters`;
  if (/[^\x21-\x7e]/.test(name))
    return `${shown()} contains characters other than letters, digits, '-' and '.'`;
  if (name.endsWith('.')) return `${shown()} ends with a dot`;
  const labels = name.split('.');
  if (labels[0] === '*') {
    if (!allowWildcards) return `${shown()}: wildcards are not allowed`;
    if (labels.length < 3) return `${shown()}: a wildcard needs at least two labels after it`;
    labels.shift();
  }
  for (const l of labels) {
    if (l.length === 0) return `${shown()} has an empty label`;
    if (l.includes('*')) return `${shown()}: a wildcard is allowed only as the whole first label`;
    if (l.length > 63) return `${shown()} has a label longer than 63 characters`;
    if (!LDH_LABEL.test(l)) return `${shown()} has a label that is not letters, digits and inner hyphens`;
  }
  return undefined;
}

const ATEXT_DOT_ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;

/** An rfc822Name: `local@domain` (RFC 5321 dot-atom local part, LDH domain). */
export function emailProblem(addr: string): string | undefined {
  const shown = () => `SAN rfc822Name '${escapeValue(addr)}'`;
  const at = addr.lastIndexOf('@');
  if (at <= 0 || at === addr.length - 1) return `${shown()} is not local@domain`;
  const local = addr.slice(0, at);
  const domain = addr.slice(at + 1);
  if (local.length > 64) return `${shown()} has a local part longer than 64 characters`;
  if (!ATEXT_DOT_ATOM.test(local)) return `${shown()} has an invalid local part`;
  if (dnsNameProblem(domain, false)) return `${shown()} has an invalid domain`;
  return undefined;
}

/** A uniformResourceIdentifier: scheme ":" rest, visible ASCII without RFC 3986-excluded characters. */
export function uriProblem(uri: string): string | undefined {
  const shown = () => `SAN URI '${escapeValue(uri)}'`;
  if (/[^\x21-\x7e]|[<>"{}|\\^`]/.test(uri)) return `${shown()} contains characters not allowed in a URI`;
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:./.test(uri)) return `${shown()} has no scheme`;
  if (/%(?![0-9A-Fa-f]{2})/.test(uri)) return `${shown()} has a bad percent-escape`;
  const auth = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(uri);
  if (auth) {
    const host = auth[1]!.replace(/^[^@]*@/, '').replace(/:\d*$/, '');
    if (host === '') return `${shown()} has an empty host`;
  }
  return undefined;
}

const IA5_TYPES: ReadonlyArray<readonly [number, string]> = [
  [0x81, 'rfc822Name'],
  [0x82, 'dNSName'],
  [0x86, 'URI'],
];

/** Checks one GeneralName element. Never throws. */
export function generalNameProblem(t: r.Tlv, o: GeneralNameCheckOptions = {}): string | undefined {
  try {
    return generalNameProblemUnchecked(t, o);
  } catch (e) {
    return `SAN entry is malformed${e instanceof r.Asn1Error ? `: ${e.message}` : ''}`;
  }
}

function generalNameProblemUnchecked(t: r.Tlv, o: GeneralNameCheckOptions): string | undefined {
  const maxLen = o.maxNameLength ?? NAME_CHECK_DEFAULTS.maxNameLength;
  if (t.indefinite) return 'SAN entry has an indefinite length';
  const len = t.valueEnd - t.valueStart;
  const ia5 = IA5_TYPES.find(([tag]) => tag === t.tag);
  if (ia5) {
    const v = r.value(t);
    if (len > maxLen) return `SAN ${ia5[1]} is longer than ${maxLen} bytes`;
    if (v.some((b) => b > 0x7e || b < 0x20))
      return `SAN ${ia5[1]} '${escapeValue(v)}' contains control or non-ASCII characters`;
    const s = v.toString('latin1');
    if (t.tag === 0x82) return dnsNameProblem(s, o.allowWildcards ?? false);
    if (t.tag === 0x81) return emailProblem(s);
    return uriProblem(s);
  }
  switch (t.tag) {
    case 0x87:
      if (len !== 4 && len !== 16)
        return `SAN iPAddress of ${len} bytes: an address is 4 (IPv4) or 16 (IPv6) bytes`;
      return undefined;
    case 0xa0:
      return otherNameProblem(t, o, maxLen);
    case 0xa4: {
      if (o.allowDirectoryNames === false) return 'SAN directoryName entries are not allowed';
      const kids = r.children(t);
      if (kids.length !== 1) return 'SAN directoryName must hold exactly one Name';
      const p = subjectProblem(r.raw(kids[0]!));
      return p ? `SAN directoryName: ${p.replace(/^subject /, '')}` : undefined;
    }
    case 0xa3:
      return 'SAN x400Address entries are not allowed';
    case 0xa5:
      return 'SAN ediPartyName entries are not allowed';
    case 0x88:
      return 'SAN registeredID entries are not allowed';
    default:
      return `SAN entry with tag 0x${t.tag === -1 ? 'high' : t.tag.toString(16)} is not a GeneralName`;
  }
}

function otherNameProblem(t: r.Tlv, o: GeneralNameCheckOptions, maxLen: number): string | undefined {
  if (t.valueEnd - t.valueStart > maxLen) return `SAN otherName is longer than ${maxLen} bytes`;
  const kids = r.children(t);
  if (kids.length !== 2 || kids[0]!.tag !== r.TAG.OID || kids[1]!.tag !== 0xa0 || kids[1]!.indefinite)
    return 'SAN otherName is not { type-id, [0] value }';
  const typeId = r.oid(kids[0]!);
  const allowed = o.allowedOtherNames ?? NAME_CHECK_DEFAULTS.allowedOtherNames;
  if (!allowed.includes(typeId)) return `SAN otherName of type ${typeId} is not allowed`;
  const inner = r.children(kids[1]!);
  if (inner.length !== 1) return `SAN otherName ${typeId} must hold exactly one value`;
  if (typeId === OID_MS_UPN) {
    const d = decodeString(inner[0]!, new Set([r.TAG.UTF8_STRING]));
    if ('problem' in d) return `SAN otherName UPN ${d.problem}`;
    if (d.text === '' || CONTROL.test(d.text))
      return `SAN otherName UPN '${escapeValue(d.text)}' is empty or contains control characters`;
  }
  return undefined;
}

/**
 * Checks a subjectAltName extnValue: a non-empty SEQUENCE OF well-formed GeneralNames, at
 * most `maxSans` of them.
 */
export function subjectAltNameProblem(
  extValue: Buffer,
  o: GeneralNameCheckOptions & { maxSans?: number } = {},
): string | undefined {
  const maxSans = o.maxSans ?? 20;
  try {
    const top = r.parse(extValue);
    if (top.tag !== 0x30 || top.indefinite) return 'subjectAltName is not a SEQUENCE OF GeneralName';
    const names = r.children(top, Object.assign({}, r.DEFAULT_LIMITS, { maxChildren: maxSans + 1 }));
    if (names.length === 0) return 'subjectAltName is empty';
    if (names.length > maxSans) return `more than ${maxSans} subjectAltNames requested`;
    for (const n of names) {
      const p = generalNameProblem(n, o);
      if (p) return p;
    }
  } catch (e) {
    if (e instanceof r.Asn1Error && e.code === 'too-many')
      return `more than ${maxSans} subjectAltNames requested`;
    return `subjectAltName is malformed${e instanceof r.Asn1Error ? `: ${e.message}` : ''}`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------
// RSA public key

/** Largest RSA public exponent accepted: below 2^256 (NIST SP 800-89 §5.3.3). */
const MAX_E_BYTES = 32;

/**
 * The RSA public key of an SPKI, checked: modulus positive and odd, public exponent odd and
 * in [65537, 2^256). Undefined for an acceptable or non-RSA key.
 */
export function rsaKeyProblem(spki: Buffer): string | undefined {
  try {
    const c = new r.Cursor(r.expectTag(r.parse(spki), 0x30, 'SubjectPublicKeyInfo'));
    const alg = new r.Cursor(c.expect(0x30, 'algorithm'));
    if (r.oid(alg.expect(r.TAG.OID, 'algorithm')) !== OID.rsaEncryption) return undefined;
    const bits = r.bitString(c.expect(r.TAG.BIT_STRING, 'subjectPublicKey'));
    const k = new r.Cursor(r.expectTag(r.parse(bits.bytes), 0x30, 'RSAPublicKey'));
    const nT = k.expect(r.TAG.INTEGER, 'modulus');
    const eT = k.expect(r.TAG.INTEGER, 'publicExponent');
    k.end('RSAPublicKey');
    const n = r.value(nT);
    const e = r.value(eT);
    if (n.length === 0 || n[0]! & 0x80) return 'the RSA modulus is not a positive integer';
    if ((n[n.length - 1]! & 1) === 0) return 'the RSA modulus is even';
    if (e.length === 0 || e[0]! & 0x80) return 'the RSA public exponent is not a positive integer';
    let i = 0;
    while (i < e.length - 1 && e[i] === 0) i++;
    const mag = e.subarray(i);
    if (mag.length > MAX_E_BYTES) return 'the RSA public exponent is 2^256 or larger';
    const ev = BigInt('0x' + mag.toString('hex'));
    if ((ev & 1n) === 0n) return `the RSA public exponent ${ev} is even`;
    if (ev < 65537n) return `the RSA public exponent ${ev} is smaller than 65537`;
    return undefined;
  } catch {
    return 'the RSA public key is malformed';
  }
}
