/**
 * The client address behind trusted reverse proxies (`scepter serve --trusted-proxy`).
 *
 * By default the client address is the socket's peer. With trusted proxies (addresses or CIDRs),
 * a request whose peer is trusted has its `Forwarded` (RFC 7239, `for=`) or, without it,
 * `X-Forwarded-For` header read from right to left: each hop a trusted proxy appended is
 * skipped while it is itself trusted, and the first untrusted hop is the client. The header of
 * an untrusted peer is never read (anyone can send one). A hop that is not an IP address
 * (`unknown`, an obfuscated identifier, garbage) ends the walk at the last trusted address, so
 * a client can never choose its own throttling key. Headers longer than
 * MAX_FORWARDED_HEADER_LENGTH are not read at all (the peer's address is used).
 */
import { BlockList, isIP } from 'node:net';

/** Longest Forwarded / X-Forwarded-For header read, characters (longer: ignored). */
export const MAX_FORWARDED_HEADER_LENGTH = 4096;
/** Most hops examined. */
const MAX_HOPS = 32;

/** A set of trusted proxy addresses and networks. */
export class TrustedProxies {
  private readonly list = new BlockList();
  readonly size: number;

  /** `entries`: IPv4/IPv6 addresses or CIDRs (`10.0.0.0/8`, `fd00::/8`). Throws on anything else. */
  constructor(entries: readonly string[]) {
    for (const raw of entries) {
      const e = raw.trim();
      const slash = e.indexOf('/');
      const addr = normalizeIp(slash < 0 ? e : e.slice(0, slash));
      const family = addr === undefined ? 0 : isIP(addr);
      if (addr === undefined || family === 0)
        throw new TypeError(`not an IP address or CIDR: ${JSON.stringify(raw)}`);
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (slash < 0) {
        this.list.addAddress(addr, type);
        continue;
      }
      const bits = e.slice(slash + 1);
      const prefix = /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
      if (!(prefix >= 0 && prefix <= (family === 4 ? 32 : 128)))
        throw new TypeError(`bad prefix length in ${JSON.stringify(raw)}`);
      this.list.addSubnet(addr, prefix, type);
    }
    this.size = entries.length;
  }

  /** Whether `address` (an IP, possibly IPv4-mapped IPv6) is a trusted proxy. */
  has(address: string): boolean {
    const a = normalizeIp(address);
    if (a === undefined) return false;
    const family = isIP(a);
    return family !== 0 && this.list.check(a, family === 4 ? 'ipv4' : 'ipv6');
  }
}

/**
 * An IP address in canonical-enough form: IPv4-mapped IPv6 (`::ffff:1.2.3.4`) → `1.2.3.4`,
 * brackets and an IPv6 zone removed; undefined when it is not an IP address.
 */
export function normalizeIp(s: string): string | undefined {
  let a = s.trim();
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(a);
  if (mapped) a = mapped[1]!;
  return isIP(a) === 0 ? undefined : a.toLowerCase();
}

/** One `for=` value of a Forwarded element → an IP (port and quotes removed), or undefined. */
function forwardedFor(element: string): string | undefined {
  for (const pair of element.split(';')) {
    const eq = pair.indexOf('=');
    if (eq < 0 || pair.slice(0, eq).trim().toLowerCase() !== 'for') continue;
    let v = pair.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
    if (v.startsWith('[')) {
      const end = v.indexOf(']');
      return end > 0 ? normalizeIp(v.slice(1, end)) : undefined;
    }
    // IPv4 with an optional port.
    const colon = v.indexOf(':');
    if (colon >= 0 && v.indexOf(':', colon + 1) < 0) v = v.slice(0, colon);
    return normalizeIp(v);
  }
  return undefined;
}

/** The hops of a header, nearest last; `undefined` entries are hops that are not IP addresses. */
function hops(headers: Record<string, string | string[] | undefined>): Array<string | undefined> | undefined {
  const pick = (name: string): string | undefined => {
    const v = headers[name];
    const s = Array.isArray(v) ? v.join(',') : v;
    return s === undefined || s.length > MAX_FORWARDED_HEADER_LENGTH ? undefined : s;
  };
  const fwd = pick('forwarded');
  if (fwd !== undefined) return fwd.split(',').slice(-MAX_HOPS).map(forwardedFor);
  const xff = pick('x-forwarded-for');
  if (xff !== undefined)
    return xff
      .split(',')
      .slice(-MAX_HOPS)
      .map((h) => normalizeIp(h));
  return undefined;
}

/**
 * The client address of a request whose socket peer is `peer`: the peer itself unless it is a
 * trusted proxy, else the right-most untrusted hop of its forwarding header (see above).
 */
export function clientAddress(
  peer: string | undefined,
  headers: Record<string, string | string[] | undefined>,
  trusted: TrustedProxies | undefined,
): string | undefined {
  const p = peer === undefined ? undefined : (normalizeIp(peer) ?? peer);
  if (!trusted || trusted.size === 0 || p === undefined || !trusted.has(p)) return p;
  const list = hops(headers);
  if (!list) return p;
  let client = p;
  for (let i = list.length - 1; i >= 0; i--) {
    const hop = list[i];
    if (hop === undefined) break;
    client = hop;
    if (!trusted.has(hop)) break;
  }
  return client;
}
