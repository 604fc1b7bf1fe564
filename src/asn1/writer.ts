/**
 * DER writer.
 *
 * Builders return lightweight nodes that know their encoded length; `encode()` allocates
 * the output once and writes every node into it. Pre-encoded DER (a certificate, a subject
 * name, an SPKI taken from a CSR) is spliced in as-is by passing a Buffer/Uint8Array where a
 * node is expected, so the hot path never re-encodes what it already has.
 *
 * This is the only place in scepter that produces DER.
 */

export interface DerNode {
  /** Total encoded length (identifier + length + contents). */
  readonly size: number;
  /** Writes the encoding at `off`; returns the offset after it. */
  write(out: Buffer, off: number): number;
}

/** A node, or bytes that already are one complete DER element. */
export type Der = DerNode | Uint8Array;

function sizeOf(d: Der): number {
  return d instanceof Uint8Array ? d.length : d.size;
}

function writeInto(d: Der, out: Buffer, off: number): number {
  if (d instanceof Uint8Array) {
    out.set(d, off);
    return off + d.length;
  }
  return d.write(out, off);
}

function lengthSize(len: number): number {
  if (len < 0x80) return 1;
  if (len < 0x100) return 2;
  if (len < 0x10000) return 3;
  if (len < 0x1000000) return 4;
  return 5;
}

function writeLength(out: Buffer, off: number, len: number): number {
  if (len < 0x80) {
    out[off] = len;
    return off + 1;
  }
  const n = lengthSize(len) - 1;
  out[off++] = 0x80 | n;
  for (let i = n - 1; i >= 0; i--) out[off++] = (len >>> (8 * i)) & 0xff;
  return off;
}

/** A constructed element whose contents are the given nodes, in order. */
export function constructed(tag: number, items: readonly Der[]): DerNode {
  let inner = 0;
  for (const it of items) inner += sizeOf(it);
  const size = 1 + lengthSize(inner) + inner;
  return {
    size,
    write(out, off) {
      out[off++] = tag;
      off = writeLength(out, off, inner);
      for (const it of items) off = writeInto(it, out, off);
      return off;
    },
  };
}

/** A primitive element with the given content octets. */
export function primitive(tag: number, content: Uint8Array): DerNode {
  const size = 1 + lengthSize(content.length) + content.length;
  return {
    size,
    write(out, off) {
      out[off++] = tag;
      off = writeLength(out, off, content.length);
      out.set(content, off);
      return off + content.length;
    },
  };
}

export function encode(d: Der): Buffer {
  if (d instanceof Uint8Array) return Buffer.from(d);
  const out = Buffer.allocUnsafe(d.size);
  const end = d.write(out, 0);
  if (end !== d.size) throw new Error(`internal DER size mismatch: ${end} != ${d.size}`);
  return out;
}

export function seq(...items: Der[]): DerNode {
  return constructed(0x30, items);
}

/** SET with items kept in the given order (use `setOf` for DER SET OF ordering). */
export function set(...items: Der[]): DerNode {
  return constructed(0x31, items);
}

/** DER SET OF: elements sorted by their encodings (X.690 §11.6). */
export function setOf(items: readonly Der[]): DerNode {
  const encs = items.map((i) => encode(i));
  encs.sort(Buffer.compare);
  return constructed(0x31, encs);
}

/** `[n]` EXPLICIT wrapper. */
export function explicit(n: number, inner: Der): DerNode {
  return constructed(0xa0 | n, [inner]);
}

/** `[n]` IMPLICIT constructed (e.g. `[0] IMPLICIT SET OF Certificate`). */
export function implicitConstructed(n: number, items: readonly Der[]): DerNode {
  return constructed(0xa0 | n, items);
}

/** `[n]` IMPLICIT primitive (e.g. `[0] IMPLICIT OCTET STRING` for a subjectKeyIdentifier). */
export function implicitPrimitive(n: number, content: Uint8Array): DerNode {
  return primitive(0x80 | n, content);
}

const NULL_NODE = primitive(0x05, Buffer.alloc(0));
export function nul(): DerNode {
  return NULL_NODE;
}

export function bool(v: boolean): DerNode {
  return primitive(0x01, Buffer.from([v ? 0xff : 0x00]));
}

/**
 * INTEGER. A Buffer is taken as an unsigned big-endian magnitude (a serial number, an RSA
 * modulus) and gets a leading 0x00 when its top bit is set; leading zero octets are trimmed.
 */
export function int(v: number | bigint | Uint8Array): DerNode {
  if (v instanceof Uint8Array) return primitive(0x02, unsignedIntContent(v));
  const n = BigInt(v);
  // Smallest L with -2^(8L-1) <= n < 2^(8L-1), then the L-octet two's complement.
  let len = 1;
  while (n >= 1n << BigInt(8 * len - 1) || n < -(1n << BigInt(8 * len - 1))) len++;
  let u = n < 0n ? n + (1n << BigInt(8 * len)) : n;
  const bytes = new Array<number>(len);
  for (let i = len - 1; i >= 0; i--) {
    bytes[i] = Number(u & 0xffn);
    u >>= 8n;
  }
  return primitive(0x02, Buffer.from(bytes));
}

/** INTEGER content octets, exactly as given (already two's complement, e.g. copied from input). */
export function intRaw(content: Uint8Array): DerNode {
  return primitive(0x02, content);
}

function unsignedIntContent(v: Uint8Array): Buffer {
  let i = 0;
  while (i < v.length - 1 && v[i] === 0) i++;
  const body = Buffer.from(v.buffer, v.byteOffset + i, v.length - i);
  if (body.length === 0) return Buffer.from([0]);
  if (body[0]! & 0x80) return Buffer.concat([Buffer.from([0]), body]);
  return body;
}

export function octetString(v: Uint8Array): DerNode {
  return primitive(0x04, v);
}

export function bitString(v: Uint8Array, unusedBits = 0): DerNode {
  const c = Buffer.allocUnsafe(v.length + 1);
  c[0] = unusedBits;
  c.set(v, 1);
  return primitive(0x03, c);
}

/**
 * A named-bit BIT STRING (KeyUsage, ReasonFlags) from bit positions (0 = most significant
 * bit of the first octet), DER-minimal: trailing zero bits removed.
 */
export function namedBits(bits: readonly number[]): DerNode {
  if (bits.length === 0) return bitString(Buffer.alloc(0));
  const max = Math.max(...bits);
  const bytes = Buffer.alloc((max >> 3) + 1);
  for (const b of bits) bytes[b >> 3]! |= 0x80 >> (b & 7);
  const unused = 7 - (max & 7);
  return bitString(bytes, unused);
}

const oidEncCache = new Map<string, Buffer>();

/** OBJECT IDENTIFIER from dotted form; encodings are cached. */
export function oid(dotted: string): Buffer {
  const hit = oidEncCache.get(dotted);
  if (hit) return hit;
  const arcs = dotted.split('.').map((s) => {
    if (!/^\d+$/.test(s)) throw new Error(`bad OID ${dotted}`);
    return Number(s);
  });
  if (arcs.length < 2 || arcs[0]! > 2) throw new Error(`bad OID ${dotted}`);
  const content: number[] = [];
  const push = (n: number) => {
    const tmp = [n & 0x7f];
    n = Math.floor(n / 128);
    while (n > 0) {
      tmp.unshift((n & 0x7f) | 0x80);
      n = Math.floor(n / 128);
    }
    content.push(...tmp);
  };
  push(arcs[0]! * 40 + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  const enc = encode(primitive(0x06, Buffer.from(content)));
  oidEncCache.set(dotted, enc);
  return enc;
}

export function utf8(s: string): DerNode {
  return primitive(0x0c, Buffer.from(s, 'utf8'));
}

export function printable(s: string): DerNode {
  return primitive(0x13, Buffer.from(s, 'latin1'));
}

export function ia5(s: string): DerNode {
  return primitive(0x16, Buffer.from(s, 'latin1'));
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

export function utcTime(d: Date): DerNode {
  const s =
    pad(d.getUTCFullYear() % 100) +
    pad(d.getUTCMonth() + 1) +
    pad(d.getUTCDate()) +
    pad(d.getUTCHours()) +
    pad(d.getUTCMinutes()) +
    pad(d.getUTCSeconds()) +
    'Z';
  return primitive(0x17, Buffer.from(s, 'latin1'));
}

export function generalizedTime(d: Date): DerNode {
  const s =
    pad(d.getUTCFullYear(), 4) +
    pad(d.getUTCMonth() + 1) +
    pad(d.getUTCDate()) +
    pad(d.getUTCHours()) +
    pad(d.getUTCMinutes()) +
    pad(d.getUTCSeconds()) +
    'Z';
  return primitive(0x18, Buffer.from(s, 'latin1'));
}

/** RFC 5280 Time: UTCTime through 2049, GeneralizedTime from 2050. */
export function time(d: Date): DerNode {
  const y = d.getUTCFullYear();
  return y >= 1950 && y < 2050 ? utcTime(d) : generalizedTime(d);
}

/** AlgorithmIdentifier with optional parameters (pass `nul()` for an explicit NULL). */
export function algorithm(oidDotted: string, params?: Der): DerNode {
  return params === undefined ? seq(oid(oidDotted)) : seq(oid(oidDotted), params);
}
