/**
 * Text forms of names for the store, logs and operator output: the store's `type:value`
 * subjectAltNames (subjects: `nameText` in src/pkix/name.ts) and quoted names for failInfoTexts. Pure formatters on src/pkix; no RA state.
 */
import type { GeneralName } from '../pkix/extensions.js';
import { nameText } from '../pkix/name.js';
import { escapeQuoted } from '../pkix/text.js';

/** A GeneralName in the store's `type:value` form. */
export function sanText(n: GeneralName): string {
  switch (n.type) {
    case 'dns':
    case 'email':
    case 'ip':
    case 'uri':
      return `${n.type}:${n.value}`;
    case 'dirName':
      return `dn:${nameText(n.raw)}`;
    default:
      return `other:${n.raw.toString('hex')}`;
  }
}

/** Longest client-supplied name quoted into a failInfoText or log line. */
const MAX_QUOTED = 200;

/**
 * A client-supplied name for a failInfoText or a log line: in double quotes, escaped by
 * `escapeQuoted` (ASCII only), at most MAX_QUOTED characters, so it cannot forge lines or
 * terminal sequences.
 */
export function quotedName(s: string): string {
  return `"${escapeQuoted(s, '"', MAX_QUOTED)}"`;
}
