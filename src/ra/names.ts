/**
 * Text forms of names for the store, logs and operator output: RFC 4514 subjects and the
 * store's `type:value` subjectAltNames. Pure formatters on src/pkix; no RA state.
 */
import type { GeneralName } from '../pkix/extensions.js';
import { nameToString } from '../pkix/name.js';

/** RFC 4514 text of a Name, or a hex fallback when it cannot be rendered. */
export function subjectText(raw: Buffer): string {
  try {
    return nameToString(raw);
  } catch {
    return `#${raw.toString('hex')}`;
  }
}

/** A GeneralName in the store's `type:value` form. */
export function sanText(n: GeneralName): string {
  switch (n.type) {
    case 'dns':
    case 'email':
    case 'ip':
    case 'uri':
      return `${n.type}:${n.value}`;
    case 'dirName':
      return `dn:${subjectText(n.raw)}`;
    default:
      return `other:${n.raw.toString('hex')}`;
  }
}
