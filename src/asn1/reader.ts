/**
 * Zero-copy DER/BER reader.
 *
 * Every element is described by a `Tlv` that points into the caller's buffer; nothing is
 * copied until a value accessor needs to (constructed BER strings are the only case).
 * Handles definite and indefinite lengths, low and high tag numbers, and bounds the nesting
 * depth. Every failure is an `Asn1Error`; no other exception escapes from this module for
 * any input bytes.
 */

export type Asn1ErrorCode =
  'truncated' | 'bad-length' | 'too-deep' | 'trailing-data' | 'unexpected-tag' | 'bad-value' | 'too-many';

export class Asn1Error extends Error {
  readonly code: Asn1ErrorCode;
  constructor(code: Asn1ErrorCode, message: string) {
    super(message);
    this.name = 'Asn1Error';
    this.code = code;
  }
}

/** Tag classes, as the top two bits of the identifier octet. */
export const CLASS_UNIVERSAL = 0x00;
export const CLASS_APPLICATION = 0x40;
export const CLASS_CONTEXT = 0x80;
export const CLASS_PRIVATE = 0xc0;

/** Universal tag numbers used by SCEP, CMS and X.509. */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  SEQUENCE: 0x30,
  SET: 0x31,
  NUMERIC_STRING: 0x12,
  PRINTABLE_STRING: 0x13,
  TELETEX_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  VISIBLE_STRING: 0x1a,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
} as const;

export interface Tlv {
  /** The buffer this element lives in. */
  readonly buf: Uint8Array;
  /** Identifier octet with the constructed bit cleared for tag numbers < 31; see `tagNo`. */
  readonly cls: number;
  readonly constructed: boolean;
  readonly tagNo: number;
  /**
   * The identifier octet as it appears on the wire for low tag numbers (e.g. 0x30, 0xa0), or
   * -1 for high tag numbers (>= 31), which SCEP never uses.
   */
  readonly tag: number;
  /** Offset of the identifier octet. */
  readonly start: number;
  /** Offset of the first content octet. */
  readonly valueStart: number;
  /** Offset just past the last content octet (before the end-of-contents octets if indefinite). */
  readonly valueEnd: number;
  /** Offset just past the whole element (after the end-of-contents octets if indefinite). */
  readonly end: number;
  readonly indefinite: boolean;
  /** Nesting depth of this element (0 for the outermost). */
  readonly depth: number;
}

export interface ReadLimits {
  /** Maximum nesting depth; deeper input is refused with `too-deep`. */
  maxDepth: number;
  /** Maximum number of children enumerated by `children()`. */
  maxChildren: number;
}

export const DEFAULT_LIMITS: ReadLimits = { maxDepth: 40, maxChildren: 10_000 };

function fail(code: Asn1ErrorCode, msg: string): never {
  throw new Asn1Error(code, msg);
}

/**
 * Reads the element starting at `offset`, which must end at or before `limit`.
 * For indefinite lengths the children are walked (bounded by depth) to find the end.
 */
export function readTlv(
  buf: Uint8Array,
  offset: number,
  limit: number = buf.length,
  depth = 0,
  limits: ReadLimits = DEFAULT_LIMITS,
): Tlv {
  if (depth > limits.maxDepth) fail('too-deep', `nesting deeper than ${limits.maxDepth}`);
  let p = offset;
  if (p >= limit) fail('truncated', `element expected at offset ${offset}`);
  const id = buf[p++]!;
  const cls = id & 0xc0;
  const constructed = (id & 0x20) !== 0;
  let tagNo = id & 0x1f;
  let tag = id;
  if (tagNo === 0x1f) {
    // High tag number form: base-128, at most 4 octets (tags < 2^28).
    tagNo = 0;
    let n = 0;
    for (;;) {
      if (p >= limit) fail('truncated', 'truncated tag');
      const b = buf[p++]!;
      if (n === 0 && b === 0x80) fail('bad-value', 'non-minimal tag encoding');
      tagNo = tagNo * 128 + (b & 0x7f);
      if (++n > 4) fail('bad-value', 'tag number too large');
      if ((b & 0x80) === 0) break;
    }
    tag = -1;
  }
  if (p >= limit) fail('truncated', 'truncated length');
  const lb = buf[p++]!;
  let len: number;
  let indefinite = false;
  if (lb < 0x80) {
    len = lb;
  } else if (lb === 0x80) {
    if (!constructed) fail('bad-length', 'indefinite length on a primitive element');
    indefinite = true;
    len = -1;
  } else {
    const n = lb & 0x7f;
    if (n > 4) fail('bad-length', 'length field longer than 4 octets');
    if (p + n > limit) fail('truncated', 'truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++]!;
  }
  const valueStart = p;
  if (!indefinite) {
    if (len > limit - valueStart) fail('truncated', `length ${len} runs past the end of the data`);
    const valueEnd = valueStart + len;
    return {
      buf,
      cls,
      constructed,
      tagNo,
      tag,
      start: offset,
      valueStart,
      valueEnd,
      end: valueEnd,
      indefinite,
      depth,
    };
  }
  // Indefinite: walk children until the end-of-contents octets 00 00.
  let q = valueStart;
  let count = 0;
  for (;;) {
    if (q + 2 > limit) fail('truncated', 'missing end-of-contents');
    if (buf[q] === 0 && buf[q + 1] === 0) break;
    const child = readTlv(buf, q, limit, depth + 1, limits);
    q = child.end;
    if (++count > limits.maxChildren) fail('too-many', 'too many elements');
  }
  return {
    buf,
    cls,
    constructed,
    tagNo,
    tag,
    start: offset,
    valueStart,
    valueEnd: q,
    end: q + 2,
    indefinite,
    depth,
  };
}

/** Parses exactly one element spanning the whole buffer (trailing bytes are an error). */
export function parse(buf: Uint8Array, limits: ReadLimits = DEFAULT_LIMITS): Tlv {
  const t = readTlv(buf, 0, buf.length, 0, limits);
  if (t.end !== buf.length) fail('trailing-data', `${buf.length - t.end} bytes after the element`);
  return t;
}

/** The children of a constructed element, in order. */
export function children(t: Tlv, limits: ReadLimits = DEFAULT_LIMITS): Tlv[] {
  if (!t.constructed) fail('unexpected-tag', 'expected a constructed element');
  const out: Tlv[] = [];
  let p = t.valueStart;
  while (p < t.valueEnd) {
    const c = readTlv(t.buf, p, t.valueEnd, t.depth + 1, limits);
    out.push(c);
    if (out.length > limits.maxChildren) fail('too-many', 'too many elements');
    p = c.end;
  }
  return out;
}

/** Sequential reader over the children of a constructed element. */
export class Cursor {
  private p: number;
  private readonly endAt: number;
  constructor(
    private readonly parent: Tlv,
    private readonly limits: ReadLimits = DEFAULT_LIMITS,
  ) {
    if (!parent.constructed) fail('unexpected-tag', 'expected a constructed element');
    this.p = parent.valueStart;
    this.endAt = parent.valueEnd;
  }
  get atEnd(): boolean {
    return this.p >= this.endAt;
  }
  peek(): Tlv | undefined {
    if (this.p >= this.endAt) return undefined;
    return readTlv(this.parent.buf, this.p, this.endAt, this.parent.depth + 1, this.limits);
  }
  next(what = 'element'): Tlv {
    if (this.p >= this.endAt) fail('truncated', `missing ${what}`);
    const t = readTlv(this.parent.buf, this.p, this.endAt, this.parent.depth + 1, this.limits);
    this.p = t.end;
    return t;
  }
  /** Reads the next element and checks its wire tag (e.g. 0x30, 0xa0). */
  expect(tag: number, what = 'element'): Tlv {
    const t = this.next(what);
    if (t.tag !== tag) fail('unexpected-tag', `${what}: expected tag 0x${hex(tag)}, got 0x${hex(t.tag)}`);
    return t;
  }
  /** Reads the next element only if it carries `tag`. */
  optional(tag: number): Tlv | undefined {
    const t = this.peek();
    if (!t || t.tag !== tag) return undefined;
    this.p = t.end;
    return t;
  }
  /** Requires that nothing is left. */
  end(what = 'structure'): void {
    if (this.p < this.endAt) fail('trailing-data', `unexpected data at the end of ${what}`);
  }
}

function hex(n: number): string {
  return n < 0 ? 'high' : n.toString(16).padStart(2, '0');
}

// ---------------------------------------------------------------------------------------
// Value accessors

/** The complete encoding of the element (identifier, length, contents). */
export function raw(t: Tlv): Buffer {
  return bufOf(t.buf).subarray(t.start, t.end);
}

/** The content octets of a primitive element (no copy). */
export function value(t: Tlv): Buffer {
  return bufOf(t.buf).subarray(t.valueStart, t.valueEnd);
}

function bufOf(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/**
 * Content octets of a string type (OCTET STRING, [n] IMPLICIT OCTET STRING, …). A BER
 * constructed string is the concatenation of its primitive segments (recursively); only
 * that case copies.
 */
export function octets(t: Tlv, limits: ReadLimits = DEFAULT_LIMITS): Buffer {
  if (!t.constructed) return value(t);
  const parts: Buffer[] = [];
  collectSegments(t, parts, limits);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

function collectSegments(t: Tlv, out: Buffer[], limits: ReadLimits): void {
  for (const c of children(t, limits)) {
    if (c.constructed) collectSegments(c, out, limits);
    else out.push(value(c));
  }
}

export function expectTag(t: Tlv, tag: number, what = 'element'): Tlv {
  if (t.tag !== tag) fail('unexpected-tag', `${what}: expected tag 0x${hex(tag)}, got 0x${hex(t.tag)}`);
  return t;
}

const oidCache = new Map<string, string>();

/** Dotted-decimal form of an OBJECT IDENTIFIER. */
export function oid(t: Tlv): string {
  expectTag(t, TAG.OID, 'OBJECT IDENTIFIER');
  const len = t.valueEnd - t.valueStart;
  if (len === 0 || len > 64) fail('bad-value', 'bad OBJECT IDENTIFIER length');
  // The cache is looked up without a view of the content (most OIDs are known ones).
  const b = bufOf(t.buf);
  const key = b.toString('latin1', t.valueStart, t.valueEnd);
  const hit = oidCache.get(key);
  if (hit !== undefined) return hit;
  const v = b.subarray(t.valueStart, t.valueEnd);
  const arcs: number[] = [];
  let n = 0;
  let started = false;
  for (let i = 0; i < v.length; i++) {
    const b = v[i]!;
    if (!started && b === 0x80) fail('bad-value', 'non-minimal OID arc');
    started = true;
    n = n * 128 + (b & 0x7f);
    if (n > Number.MAX_SAFE_INTEGER / 256) fail('bad-value', 'OID arc too large');
    if ((b & 0x80) === 0) {
      arcs.push(n);
      n = 0;
      started = false;
    }
  }
  if (started) fail('bad-value', 'truncated OID');
  const first = arcs[0]!;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  const s = [...head, ...arcs.slice(1)].join('.');
  if (oidCache.size < 4096) oidCache.set(key, s);
  return s;
}

/** INTEGER content as a bigint (two's complement). */
export function bigint(t: Tlv): bigint {
  expectTag(t, TAG.INTEGER, 'INTEGER');
  const v = value(t);
  if (v.length === 0) fail('bad-value', 'empty INTEGER');
  let n = 0n;
  for (const b of v) n = (n << 8n) | BigInt(b);
  if (v[0]! & 0x80) n -= 1n << BigInt(v.length * 8);
  return n;
}

/** INTEGER as a JS number; refuses values outside the safe range. */
export function int(t: Tlv): number {
  const v = value(expectTag(t, TAG.INTEGER, 'INTEGER'));
  if (v.length > 6) fail('bad-value', 'INTEGER too large');
  if (v.length === 0) fail('bad-value', 'empty INTEGER');
  // At most 48 bits: exact in a double, no bigint needed.
  let n = 0;
  for (let i = 0; i < v.length; i++) n = n * 256 + v[i]!;
  return v[0]! & 0x80 ? n - 2 ** (v.length * 8) : n;
}

/** INTEGER content octets (two's complement, as on the wire). */
export function intBytes(t: Tlv): Buffer {
  const v = value(expectTag(t, TAG.INTEGER, 'INTEGER'));
  if (v.length === 0) fail('bad-value', 'empty INTEGER');
  return v;
}

export function bool(t: Tlv): boolean {
  const v = value(expectTag(t, TAG.BOOLEAN, 'BOOLEAN'));
  if (v.length !== 1) fail('bad-value', 'bad BOOLEAN');
  return v[0] !== 0;
}

export interface BitString {
  unusedBits: number;
  bytes: Buffer;
}

export function bitString(t: Tlv): BitString {
  expectTag(t, TAG.BIT_STRING, 'BIT STRING');
  const v = value(t);
  if (v.length === 0) fail('bad-value', 'empty BIT STRING');
  const unusedBits = v[0]!;
  if (unusedBits > 7 || (v.length === 1 && unusedBits !== 0)) fail('bad-value', 'bad BIT STRING');
  return { unusedBits, bytes: v.subarray(1) };
}

const STRING_TAGS = new Set<number>([
  TAG.UTF8_STRING,
  TAG.PRINTABLE_STRING,
  TAG.IA5_STRING,
  TAG.TELETEX_STRING,
  TAG.VISIBLE_STRING,
  TAG.NUMERIC_STRING,
  TAG.BMP_STRING,
  TAG.UNIVERSAL_STRING,
]);

/** Any DirectoryString-like character string, decoded to a JS string. */
export function string(t: Tlv): string {
  if (!STRING_TAGS.has(t.tag)) fail('unexpected-tag', `expected a character string, got tag 0x${hex(t.tag)}`);
  const v = octets(t);
  switch (t.tag) {
    case TAG.UTF8_STRING:
      return v.toString('utf8');
    case TAG.BMP_STRING: {
      if (v.length % 2) fail('bad-value', 'odd-length BMPString');
      const sw = Buffer.from(v);
      sw.swap16();
      return sw.toString('utf16le');
    }
    case TAG.UNIVERSAL_STRING: {
      if (v.length % 4) fail('bad-value', 'bad UniversalString');
      let s = '';
      for (let i = 0; i < v.length; i += 4) {
        const cp = v.readUInt32BE(i);
        if (cp > 0x10ffff) fail('bad-value', 'bad UniversalString code point');
        s += String.fromCodePoint(cp);
      }
      return s;
    }
    case TAG.TELETEX_STRING:
      return v.toString('latin1');
    default:
      return v.toString('latin1');
  }
}

/** UTCTime or GeneralizedTime. */
export function time(t: Tlv): Date {
  const s = value(t).toString('latin1');
  let m: RegExpExecArray | null;
  if (t.tag === TAG.UTC_TIME) {
    m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(Z|[+-]\d{4})$/.exec(s);
    if (!m) fail('bad-value', 'bad UTCTime');
    const yy = Number(m[1]);
    const year = yy >= 50 ? 1900 + yy : 2000 + yy;
    return mkDate(year, m[2]!, m[3]!, m[4]!, m[5]!, m[6] ?? '00', '', m[7]!);
  }
  if (t.tag === TAG.GENERALIZED_TIME) {
    m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(\.\d{1,9})?(Z|[+-]\d{4})$/.exec(s);
    if (!m) fail('bad-value', 'bad GeneralizedTime');
    return mkDate(Number(m[1]), m[2]!, m[3]!, m[4]!, m[5]!, m[6] ?? '00', m[7] ?? '', m[8]!);
  }
  return fail('unexpected-tag', 'expected a time');
}

function mkDate(
  y: number,
  mo: string,
  d: string,
  h: string,
  mi: string,
  s: string,
  frac: string,
  tz: string,
): Date {
  let ms = Date.UTC(y, Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (frac) ms += Math.floor(Number(frac) * 1000);
  if (tz !== 'Z') {
    const sign = tz[0] === '-' ? -1 : 1;
    ms -= sign * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(3, 5))) * 60_000;
  }
  if (!Number.isFinite(ms)) fail('bad-value', 'bad time');
  return new Date(ms);
}

/**
 * An AlgorithmIdentifier: SEQUENCE { algorithm OID, parameters ANY OPTIONAL } and nothing
 * after them.
 */
export function algorithmIdentifier(t: Tlv, what: string): { oid: string; params: Tlv | undefined } {
  expectTag(t, 0x30, what);
  const c = new Cursor(t);
  const id = oid(c.expect(TAG.OID, `${what} algorithm`));
  const params = c.peek() ? c.next() : undefined;
  c.end(what);
  return { oid: id, params };
}
