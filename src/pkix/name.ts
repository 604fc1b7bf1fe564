/**
 * X.501 distinguished names (RFC 5280 §4.1.2.4): parse, print (RFC 4514), build from text and
 * compare (RFC 5280 §7.1, simplified).
 *
 * A Name is kept as raw DER everywhere else in scepter (subjects are spliced, never
 * re-encoded); these helpers are for display, operator input and policy checks.
 */
import * as r from '../asn1/reader.js';
import * as der from '../asn1/writer.js';
import { OID } from '../asn1/oids.js';
import { escapeText } from './text.js';

export interface NameAttribute {
  /** Attribute type, dotted. */
  oid: string;
  /** The value as text; for a value that is not a character string, `#` + hex of its DER. */
  value: string;
  /** The value's wire tag (0x13 PrintableString, 0x0c UTF8String, …). */
  tag: number;
  /** The value's complete DER. */
  raw: Buffer;
}

/** A Name: RDNs in encoded order (most significant first), each a set of attributes. */
export type ParsedName = NameAttribute[][];

export class NameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NameError';
  }
}

/** Short names, as OpenSSL and RFC 4514 print them. */
const SHORT: ReadonlyArray<readonly [string, string]> = [
  ['CN', OID.commonName],
  ['O', OID.organizationName],
  ['OU', OID.organizationalUnitName],
  ['C', OID.countryName],
  ['ST', OID.stateOrProvinceName],
  ['L', OID.localityName],
  ['STREET', OID.streetAddress],
  ['DC', OID.domainComponent],
  ['UID', OID.userId],
  ['emailAddress', OID.emailAddress],
  ['serialNumber', OID.serialNumber],
  ['unstructuredName', OID.unstructuredName],
  ['unstructuredAddress', OID.unstructuredAddress],
  ['title', OID.title],
  ['SN', OID.surname],
  ['GN', OID.givenName],
];

const NAME_BY_OID = new Map<string, string>(SHORT.map(([n, o]) => [o, n]));
const OID_BY_NAME = new Map<string, string>([
  ...SHORT.map(([n, o]) => [n.toLowerCase(), o] as const),
  ['e', OID.emailAddress],
  ['email', OID.emailAddress],
  ['s', OID.stateOrProvinceName],
  ['surname', OID.surname],
  ['givenname', OID.givenName],
  ['commonname', OID.commonName],
  ['organizationname', OID.organizationName],
  ['organizationalunitname', OID.organizationalUnitName],
  ['countryname', OID.countryName],
  ['localityname', OID.localityName],
  ['stateorprovincename', OID.stateOrProvinceName],
  ['serialnumber', OID.serialNumber],
  ['domaincomponent', OID.domainComponent],
  ['userid', OID.userId],
]);

/** Parses a DER Name into its RDNs (encoded order). Throws `Asn1Error`/`NameError` on bad input. */
export function parseName(raw: Buffer): ParsedName {
  return parseNameTlv(r.parse(raw));
}

/** Parses a Name element found inside a larger structure. */
export function parseNameTlv(t: r.Tlv): ParsedName {
  r.expectTag(t, 0x30, 'Name');
  const out: ParsedName = [];
  for (const rdnT of r.children(t)) {
    r.expectTag(rdnT, 0x31, 'RelativeDistinguishedName');
    const rdn: NameAttribute[] = [];
    for (const avaT of r.children(rdnT)) {
      const c = new r.Cursor(r.expectTag(avaT, 0x30, 'AttributeTypeAndValue'));
      const oid = r.oid(c.expect(r.TAG.OID, 'attribute type'));
      const v = c.next('attribute value');
      c.end('AttributeTypeAndValue');
      rdn.push({ oid, value: valueText(v), tag: v.tag, raw: r.raw(v) });
    }
    if (rdn.length === 0) throw new NameError('empty RelativeDistinguishedName');
    out.push(rdn);
  }
  return out;
}

function valueText(v: r.Tlv): string {
  try {
    return r.string(v);
  } catch {
    return '#' + r.raw(v).toString('hex');
  }
}

function escapeValue(s: string): string {
  if (s.startsWith('#') && /^#[0-9a-f]*$/.test(s)) return s; // hex form of a non-string value
  let out = s.replace(/[\\,+"<>;=]/g, (ch) => '\\' + ch).replace(/\0/g, '\\00');
  if (out.startsWith(' ') || out.startsWith('#')) out = '\\' + out;
  if (out.endsWith(' ') && !out.endsWith('\\ ')) out = out.slice(0, -1) + '\\ ';
  return out;
}

/** RFC 4514 text of a parsed Name (least significant RDN first, e.g. "CN=dev1,O=Acme"). */
export function formatName(name: ParsedName): string {
  const parts: string[] = [];
  for (let i = name.length - 1; i >= 0; i--) {
    parts.push(
      [...name[i]!]
        .reverse()
        .map((a) => `${NAME_BY_OID.get(a.oid) ?? a.oid}=${escapeValue(a.value)}`)
        .join('+'),
    );
  }
  return parts.join(',');
}

/** RFC 4514 text of a DER Name. Throws on malformed input. */
export function nameToString(raw: Buffer): string {
  const e = sharedName(raw);
  return (e.text ??= formatName(e.parsed));
}

// ---------------------------------------------------------------------------------------
// Shared parses
//
// One enrollment looks at the same few Names many times: the CA's subject against the signer
// certificate's issuer (renewal check) and the issued certificate's issuer, the CSR's subject
// against the certificate's, and the subject as text for the store, the audit trail and the
// log. `sharedName` parses each distinct Name once and keeps the parse, its RFC 4514 text and
// its folded values in a small LRU map keyed by the DER bytes themselves (so a Buffer changed
// after the fact cannot return a stale answer). The parse is of a private copy (nothing keeps a
// request's buffer alive) and never leaves this module: `parseName` still returns a fresh,
// mutable parse. Names longer than SHARED_MAX_BYTES are parsed each time and not kept.

const SHARED_MAX_ENTRIES = 256;
const SHARED_MAX_BYTES = 1024;

interface SharedName {
  readonly parsed: ParsedName;
  /** `formatName(parsed)`, once asked for. */
  text?: string;
  /** `escapeText(text)` (nameText), once asked for. */
  safe?: string;
  /** Per attribute: its folded value when it is a character string (namesEqual), once asked for. */
  folded?: Array<Array<string | undefined>>;
}

const shared = new Map<string, SharedName>();

function sharedName(raw: Buffer): SharedName {
  if (raw.length > SHARED_MAX_BYTES) return { parsed: parseName(raw) };
  const k = raw.toString('latin1');
  const hit = shared.get(k);
  if (hit) {
    // Least recently used goes first: the CA's own Names stay while device subjects pass.
    shared.delete(k);
    shared.set(k, hit);
    return hit;
  }
  const e: SharedName = { parsed: parseName(Buffer.from(raw)) };
  if (shared.size >= SHARED_MAX_ENTRIES) {
    const oldest = shared.keys().next();
    if (!oldest.done) shared.delete(oldest.value);
  }
  shared.set(k, e);
  return e;
}

function foldedOf(e: SharedName): Array<Array<string | undefined>> {
  return (e.folded ??= e.parsed.map((rdn) =>
    rdn.map((a) => (STRING_TAGS.has(a.tag) ? fold(a.value) : undefined)),
  ));
}

/**
 * The safe display form of a DER Name (the one used for stores, logs, pages and terminals):
 * its RFC 4514 text, or `#` + the DER in hex when it cannot be decoded, with control, bidi and
 * other invisible characters escaped by `escapeText`. Never throws.
 */
export function nameText(raw: Buffer): string {
  try {
    const e = sharedName(raw);
    return (e.safe ??= escapeText((e.text ??= formatName(e.parsed))));
  } catch {
    return `#${raw.toString('hex')}`;
  }
}

/** The last (most specific) commonName of a DER Name, or undefined (also for malformed input). */
export function commonName(raw: Buffer): string | undefined {
  let cn: string | undefined;
  try {
    for (const rdn of sharedName(raw).parsed) for (const a of rdn) if (a.oid === OID.commonName) cn = a.value;
  } catch {
    return undefined;
  }
  return cn;
}

// ---------------------------------------------------------------------------------------
// Building

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

function encodeValue(oid: string, value: string, isHex: boolean): der.Der {
  if (isHex) {
    const hex = value.slice(1);
    if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw new NameError('bad hex attribute value');
    const b = Buffer.from(hex, 'hex');
    r.parse(b); // must be one complete element
    return b;
  }
  if (oid === OID.countryName) {
    if (!/^[A-Za-z]{2}$/.test(value)) throw new NameError('C (country) must be two letters');
    return der.printable(value);
  }
  if (oid === OID.emailAddress || oid === OID.domainComponent) {
    if (!/^[\x00-\x7f]*$/.test(value)) throw new NameError('emailAddress and DC must be ASCII');
    return der.ia5(value);
  }
  return PRINTABLE.test(value) ? der.printable(value) : der.utf8(value);
}

/** The dotted OID of an attribute type name (CN, O, OU, …, case-insensitive) or a dotted OID; throws NameError. */
export function attributeTypeOid(type: string): string {
  return attrOid(type);
}

function attrOid(type: string): string {
  const t = type.trim();
  if (/^\d+(\.\d+)+$/.test(t)) return t;
  const o = OID_BY_NAME.get(t.toLowerCase().replace(/^oid\./, ''));
  if (!o) throw new NameError(`unknown attribute type '${t}'`);
  return o;
}

/** Splits on an unescaped separator character. */
function splitUnescaped(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch === '\\' && i + 1 < s.length) {
      cur += ch + s[i + 1]!;
      i++;
    } else if (ch === sep) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

function unescape(v: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < v.length; i++) {
    const ch = v[i]!;
    if (ch === '\\' && i + 1 < v.length) {
      const h = v.slice(i + 1, i + 3);
      if (/^[0-9a-fA-F]{2}$/.test(h)) {
        bytes.push(parseInt(h, 16));
        i += 2;
      } else {
        bytes.push(...Buffer.from(v[i + 1]!, 'utf8'));
        i++;
      }
    } else bytes.push(...Buffer.from(ch, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

function parseRdn(text: string): der.Der {
  const avas = splitUnescaped(text, '+').map((ava) => {
    const eq = ava.indexOf('=');
    if (eq <= 0) throw new NameError(`expected TYPE=value in '${ava}'`);
    const oid = attrOid(ava.slice(0, eq));
    const rawVal = ava.slice(eq + 1);
    const text = trimUnescaped(rawVal);
    const isHex = text.startsWith('#');
    return der.seq(der.oid(oid), encodeValue(oid, isHex ? text : unescape(text), isHex));
  });
  return der.setOf(avas);
}

function trimUnescaped(v: string): string {
  let s = v.replace(/^\s+/, '');
  if (!/\\\s$/.test(s)) s = s.replace(/\s+$/, '');
  return s;
}

/**
 * Builds a DER Name from text: RFC 4514 ("CN=dev1,O=Acme", least significant first) or the
 * OpenSSL slash form ("/O=Acme/CN=dev1", most significant first). `+` joins multi-valued RDNs;
 * `\` escapes. Values are PrintableString when possible, otherwise UTF8String; C is
 * PrintableString; emailAddress and DC are IA5String. An empty string is the empty Name.
 */
export function buildName(dn: string): Buffer {
  const s = trimUnescaped(dn);
  if (s === '' || s === '/') return der.encode(der.seq());
  let rdns: string[];
  if (s.startsWith('/')) {
    rdns = splitUnescaped(s.slice(1), '/').filter((x) => x !== '');
  } else {
    rdns = splitUnescaped(s, ',')
      .flatMap((x) => splitUnescaped(x, ';'))
      .map((x) => trimUnescaped(x))
      .reverse();
  }
  return der.encode(der.seq(...rdns.map(parseRdn)));
}

// ---------------------------------------------------------------------------------------
// Comparing

function fold(s: string): string {
  return s.normalize('NFKC').trim().replace(/\s+/g, ' ').toLowerCase();
}

const STRING_TAGS = new Set<number>([0x0c, 0x12, 0x13, 0x14, 0x16, 0x1a, 0x1c, 0x1e]);

/** `fa`/`fb`: the folded values of `a`/`b`, undefined when not a character string. */
function avaEqual(
  a: NameAttribute,
  fa: string | undefined,
  b: NameAttribute,
  fb: string | undefined,
): boolean {
  if (a.oid !== b.oid) return false;
  if (fa !== undefined && fb !== undefined) return fa === fb;
  return a.raw.equals(b.raw);
}

/**
 * RFC 5280 §7.1-style Name comparison: same RDN count and order, same attribute types, string
 * values compared case-insensitively with whitespace folded (whatever string type carries
 * them); other values byte for byte. Byte-equal names short-circuit. Malformed → false.
 */
export function namesEqual(a: Buffer, b: Buffer): boolean {
  if (a.equals(b)) return true;
  let ea: SharedName, eb: SharedName;
  try {
    ea = sharedName(a);
    eb = sharedName(b);
  } catch {
    return false;
  }
  const pa = ea.parsed;
  const pb = eb.parsed;
  if (pa.length !== pb.length) return false;
  const fa = foldedOf(ea);
  const fb = foldedOf(eb);
  for (let i = 0; i < pa.length; i++) {
    const ra = pa[i]!;
    const rb = pb[i]!;
    if (ra.length !== rb.length) return false;
    const left = rb.map((_, j) => j);
    for (let k = 0; k < ra.length; k++) {
      const at = left.findIndex((j) => avaEqual(ra[k]!, fa[i]![k], rb[j]!, fb[i]![j]));
      if (at < 0) return false;
      left.splice(at, 1);
    }
  }
  return true;
}
