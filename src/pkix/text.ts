/**
 * Safe display of text that came from a client (subjects, SANs, transactionIDs, reasons):
 * the ONE escaping function for terminals, logs and operator output. Control characters (C0,
 * DEL, C1), line and paragraph separators, bidi overrides/isolates and other invisible format
 * characters, and lone surrogates become visible escapes: `\x1b`, `\x0a`, `\u202e`. Everything
 * else (printable Unicode) is kept; a backslash is kept as is, so the result of escaping is
 * unchanged by escaping again.
 */

const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

/** `s` with every unsafe character replaced by `\xNN` (below U+0100) or `\uNNNN`. */
export function escapeText(s: string): string {
  return s.replace(UNSAFE, (ch) => {
    const c = ch.charCodeAt(0);
    return c < 0x100 ? `\\x${c.toString(16).padStart(2, '0')}` : `\\u${c.toString(16).padStart(4, '0')}`;
  });
}

/**
 * JSON text made terminal-safe: JSON.stringify escapes C0 controls but leaves DEL, C1 controls,
 * bidi and other invisible format characters raw; those become `\uXXXX` (the same JSON data).
 */
export function escapeJsonText(json: string): string {
  // Raw line breaks in JSON text are layout (inside strings JSON.stringify escapes them).
  return json.replace(UNSAFE, (ch) =>
    ch === '\n' ? ch : `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * A client value for a failInfoText or a log message, ASCII only: printable ASCII as is (the
 * backslash and `quote` escaped), everything else as `\xNN` (bytes of a Buffer, code points
 * below U+0100) or `\u{…}`; longer than `max` characters → cut and ended with `…`. The caller
 * puts it between `quote` characters.
 */
export function escapeQuoted(v: string | Buffer, quote: "'" | '"', max: number): string {
  let out = '';
  const s = typeof v === 'string' ? v : v.toString('latin1');
  const bytesMode = typeof v !== 'string';
  let n = 0;
  for (const ch of s) {
    if (n++ >= max) {
      out += '…';
      break;
    }
    const cp = ch.codePointAt(0)!;
    if (ch === '\\' || ch === quote) out += '\\' + ch;
    else if (cp >= 0x20 && cp < 0x7f) out += ch;
    else if (bytesMode || cp < 0x100) out += '\\x' + cp.toString(16).padStart(2, '0');
    else out += `\\u{${cp.toString(16)}}`;
  }
  return out;
}
