/**
 * GetCACaps keywords (RFC 8894 §3.5.2). Clients match case-insensitively, accept LF or CRLF
 * and ignore unknown keywords; the CA sends the exact case, LF-separated.
 */

/** The keywords we know, in their canonical case. */
export const CAPABILITIES = [
  'AES',
  'DES3',
  'GetNextCACert',
  'POSTPKIOperation',
  'Renewal',
  'SHA-1',
  'SHA-256',
  'SHA-512',
  'SCEPStandard',
  'Update',
] as const;

export type Capability = (typeof CAPABILITIES)[number];

const CANONICAL: ReadonlyMap<string, Capability> = new Map(CAPABILITIES.map((c) => [c.toLowerCase(), c]));

/** `SCEPStandard` implies these (§3.5.2). */
const IMPLIED_BY_STANDARD: ReadonlySet<Capability> = new Set(['AES', 'POSTPKIOperation', 'SHA-256']);

/** Largest GetCACaps body read; the rest is ignored. */
export const MAX_CAPABILITIES_TEXT = 16 * 1024;

/** Parses a GetCACaps body into canonical keyword names; unknown keywords are dropped. */
export function parseCapabilities(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.slice(0, MAX_CAPABILITIES_TEXT).split(/\r?\n|\r/)) {
    const c = CANONICAL.get(line.trim().toLowerCase());
    if (c) out.add(c);
  }
  return out;
}

/** True when `caps` advertises `cap`, directly or through `SCEPStandard`. */
export function hasCapability(caps: ReadonlySet<string>, cap: Capability): boolean {
  if (caps.has(cap)) return true;
  return caps.has('SCEPStandard') && IMPLIED_BY_STANDARD.has(cap);
}

/** A GetCACaps body: the keywords as given (exact case), one per line, LF-separated. */
export function formatCapabilities(list: readonly string[]): string {
  return (
    list
      .map((c) => c.trim())
      .filter((c) => c.length > 0)
      .join('\n') + (list.length ? '\n' : '')
  );
}
