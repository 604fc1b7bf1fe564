/**
 * Per-profile request rules (docs/configuration.md "Profiles"): what a profile accepts in a
 * subject and in subjectAltNames, and the subject template that replaces what the device
 * asked for. Plain data (they cross `workerData`), turned into one Policy in the style of
 * src/ra/policy.ts. They NARROW what is accepted: the issuance-integrity checks
 * (src/ra/csr-checks.ts) run before them in every profile, whatever the rules say.
 */
import { BlockList, isIP } from 'node:net';
import type { Csr } from '../pkix/csr.js';
import type { GeneralName } from '../pkix/extensions.js';
import { attributeTypeOid, buildName, parseName } from '../pkix/name.js';
import { OID_MS_UPN } from '../pkix/name-checks.js';
import { escapeText } from '../pkix/text.js';
import * as r from '../asn1/reader.js';
import { FailInfo } from '../scep/types.js';
import { reject, type Policy } from './policy.js';

/** subjectAltName kinds a profile can allow or require. */
export const SAN_TYPES = ['dns', 'ip', 'email', 'uri', 'upn', 'dirName', 'other'] as const;
export type SanType = (typeof SAN_TYPES)[number];

export interface SubjectRules {
  /** Attribute types (CN, O, OU, C, L, ST, E, serialNumber, UID, DC, or dotted OIDs) the subject may hold; absent: any. */
  allowed?: string[];
  /** Attribute types the subject must hold. */
  required?: string[];
  /**
   * The subject of the certificate, replacing the requested one: RFC 4514 text with
   * `{{csr.CN}}`-style placeholders (any attribute type name) filled from the request's subject.
   * A placeholder the request lacks refuses the request.
   */
  template?: string;
}

export interface SanRules {
  /** Kinds allowed; absent: every kind the integrity checks accept. */
  types?: SanType[];
  /** A dNSName must equal one of these or end in `.` + one of them. */
  dnsSuffixes?: string[];
  /** A dNSName must match one of these patterns (`*` stands for one label). */
  dnsPatterns?: string[];
  /** An iPAddress must lie in one of these ranges (CIDR or single address). */
  ipRanges?: string[];
  /** A URI must start with one of these prefixes. */
  uriPrefixes?: string[];
  /** An rfc822Name must be at one of these domains. */
  emailDomains?: string[];
  /** Most subjectAltNames (the integrity limit applies too). */
  maxCount?: number;
  /** Kinds of which at least one name must be requested. */
  required?: SanType[];
}

export interface ProfileRules {
  subject?: SubjectRules;
  subjectAltNames?: SanRules;
}

function sanType(n: GeneralName): SanType {
  if (n.type !== 'other') return n.type;
  try {
    const t = r.parse(n.raw);
    if (t.tag === 0xa0) {
      const c = r.children(t);
      if (c[0] && r.oid(c[0]) === OID_MS_UPN) return 'upn';
    }
  } catch {
    // not an otherName we know
  }
  return 'other';
}

function dnsPatternRegex(p: string): RegExp {
  const body = p
    .toLowerCase()
    .split('.')
    .map((l) => (l === '*' ? '[^.]+' : l.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('\\.');
  return new RegExp(`^${body}$`);
}

/** A BlockList of CIDRs/addresses; throws RangeError for a bad entry. */
export function ipRangeList(ranges: readonly string[]): BlockList {
  const list = new BlockList();
  for (const range of ranges) {
    const [addr, bits] = range.split('/');
    const family = isIP(addr ?? '');
    if (family === 0) throw new RangeError(`${JSON.stringify(range)} is not an IP address or CIDR`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(addr!, type);
    else {
      const n = /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
      if (!(n >= 0 && n <= (family === 4 ? 32 : 128)))
        throw new RangeError(`${JSON.stringify(range)} has a bad prefix length`);
      list.addSubnet(addr!, n, type);
    }
  }
  return list;
}

/** The subject's attributes: dotted OID → values (text). */
function subjectAttributes(subjectRaw: Buffer): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const rdn of parseName(subjectRaw))
    for (const a of rdn) out.set(a.oid, [...(out.get(a.oid) ?? []), a.value]);
  return out;
}

/** The first problem of the SAN rules with these names, or undefined. */
function sanProblem(
  names: readonly GeneralName[],
  s: SanRules,
  ips: BlockList | undefined,
): string | undefined {
  if (s.maxCount !== undefined && names.length > s.maxCount)
    return `more than ${s.maxCount} subjectAltNames requested (this profile's limit)`;
  const patterns = s.dnsPatterns?.map(dnsPatternRegex);
  const suffixes = s.dnsSuffixes?.map((x) => x.toLowerCase().replace(/^\.+/, ''));
  for (const n of names) {
    const type = sanType(n);
    if (s.types && !s.types.includes(type))
      return `subjectAltName type ${type} is not allowed in this profile`;
    if (n.type === 'dns') {
      const v = n.value.toLowerCase();
      if (suffixes && !suffixes.some((x) => v === x || v.endsWith('.' + x)))
        return `dNSName ${escapeText(n.value)} is not under ${suffixes.join(', ')}`;
      if (patterns && !patterns.some((p) => p.test(v)))
        return `dNSName ${escapeText(n.value)} matches none of this profile's patterns`;
    } else if (n.type === 'ip' && ips) {
      const fam = isIP(n.value);
      if (fam === 0 || !ips.check(n.value, fam === 4 ? 'ipv4' : 'ipv6'))
        return `iPAddress ${escapeText(n.value)} is outside this profile's ranges`;
    } else if (n.type === 'uri' && s.uriPrefixes && !s.uriPrefixes.some((p) => n.value.startsWith(p))) {
      return `URI ${escapeText(n.value)} is not allowed in this profile`;
    } else if (n.type === 'email' && s.emailDomains) {
      const domain = n.value.slice(n.value.lastIndexOf('@') + 1).toLowerCase();
      if (!s.emailDomains.some((d) => d.toLowerCase() === domain))
        return `rfc822Name ${escapeText(n.value)} is not at ${s.emailDomains.join(', ')}`;
    }
  }
  for (const t of s.required ?? [])
    if (!names.some((n) => sanType(n) === t))
      return `a subjectAltName of type ${t} is required in this profile`;
  return undefined;
}

/** The first problem of the subject rules, or undefined. */
function subjectRuleProblem(subjectRaw: Buffer, s: SubjectRules): string | undefined {
  const attrs = subjectAttributes(subjectRaw);
  if (s.allowed) {
    const allowed = new Set(s.allowed.map(attributeTypeOid));
    for (const oid of attrs.keys())
      if (!allowed.has(oid)) return `subject attribute ${oid} is not allowed in this profile`;
  }
  for (const t of s.required ?? [])
    if (!attrs.has(attributeTypeOid(t))) return `the subject must have ${t} in this profile`;
  if (s.template !== undefined) {
    try {
      subjectFromTemplate(s.template, subjectRaw);
    } catch (e) {
      return (e as Error).message;
    }
  }
  return undefined;
}

/** Checks the rules themselves (bad attribute names, CIDRs, templates); throws RangeError. */
export function validateProfileRules(rules: ProfileRules): void {
  for (const t of [...(rules.subject?.allowed ?? []), ...(rules.subject?.required ?? [])]) {
    try {
      attributeTypeOid(t);
    } catch {
      throw new RangeError(`unknown subject attribute type ${JSON.stringify(t)}`);
    }
  }
  if (rules.subject?.template !== undefined) {
    // Fill every placeholder with a harmless value: the result must be a valid Name.
    const filled = rules.subject.template.replace(PLACEHOLDER, 'x');
    try {
      buildName(filled);
    } catch (e) {
      throw new RangeError(`subject template: ${(e as Error).message}`);
    }
    for (const m of rules.subject.template.matchAll(PLACEHOLDER)) {
      try {
        attributeTypeOid(m[1]!);
      } catch {
        throw new RangeError(`subject template: unknown attribute {{csr.${m[1]}}}`);
      }
    }
  }
  if (rules.subjectAltNames?.ipRanges) ipRangeList(rules.subjectAltNames.ipRanges);
}

/** The Policy of a profile's rules (badRequest with a client-safe text), or undefined without rules. */
export function profileRulesPolicy(rules: ProfileRules | undefined): Policy | undefined {
  if (!rules || (!rules.subject && !rules.subjectAltNames)) return undefined;
  const ips = rules.subjectAltNames?.ipRanges ? ipRangeList(rules.subjectAltNames.ipRanges) : undefined;
  return (req) => {
    const csr: Csr = req.csr;
    let p: string | undefined;
    try {
      p =
        (rules.subject ? subjectRuleProblem(csr.subjectRaw, rules.subject) : undefined) ??
        (rules.subjectAltNames ? sanProblem(csr.subjectAltNames, rules.subjectAltNames, ips) : undefined);
    } catch {
      p = 'the subject cannot be read';
    }
    return p ? reject(FailInfo.badRequest, p) : undefined;
  };
}

const PLACEHOLDER = /\{\{\s*csr\.([A-Za-z0-9.]+)\s*\}\}/g;

/** RFC 4514 escaping of a value spliced into a template (never read as hex or as a separator). */
function escapeDnValue(v: string): string {
  let out = v.replace(/[\\,+"<>;=#]/g, (ch) => '\\' + ch).replace(/\0/g, '\\00');
  if (out.startsWith(' ')) out = '\\' + out;
  if (out.endsWith(' ')) out = out.slice(0, -1) + '\\ ';
  return out;
}

/**
 * The subject DER from a template (`CN={{csr.CN}},O=Acme`) and the request's subject. Values
 * are escaped, so a requested `CN=a,O=Evil` stays one CN. Throws Error with a client-safe text
 * when the request lacks an attribute the template uses.
 */
export function subjectFromTemplate(template: string, subjectRaw: Buffer): Buffer {
  const attrs = subjectAttributes(subjectRaw);
  const text = template.replace(PLACEHOLDER, (_m, name: string) => {
    const v = attrs.get(attributeTypeOid(name))?.[0];
    if (v === undefined)
      throw new Error(`the subject must have ${name} (this profile's subject template uses it)`);
    return escapeDnValue(v);
  });
  return buildName(text);
}
