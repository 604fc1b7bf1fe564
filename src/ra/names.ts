/**
 * Text forms of names for the store, logs and operator output: the store's `type:value`
 * subjectAltNames (subjects: `nameText` in src/pkix/name.ts) and quoted names for failInfoTexts. Pure formatters on src/pkix; no RA state.
 */
import type { GeneralName } from '../pkix/extensions.js';
import { nameText } from '../pkix/name.js';

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
 * A client-supplied name for a failInfoText or a log line: in double quotes, with quotes,
 * backslashes, control and non-ASCII characters escaped (\xNN, \u{N}), at most MAX_QUOTED
 * characters (then ...), so it cannot forge lines or terminal sequences.
 */
export function quotedName(s: string): string {
  const cut = s.length > MAX_QUOTED ? s.slice(0, MAX_QUOTED) : s;
  let out = '';
  for (const ch of cut) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (c >= 0x20 && c < 0x7f) out += ch;
    else if (c <= 0xff) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else out += `\\u{${c.toString(16)}}`;
  }
  return `"${out}"${cut.length < s.length ? '...' : ''}`;
}
