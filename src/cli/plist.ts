/**
 * A minimal XML property list writer (Apple's PropertyList-1.0 DTD) for configuration
 * profiles: dict, array, string, integer, true/false and data. Text is XML-escaped; a string
 * that XML 1.0 cannot carry at all (control characters, lone surrogates) is refused rather
 * than written into a profile a device would reject.
 */

/** A plist value: strings, integers, booleans, data (Buffer), arrays and dicts. */
export type PlistValue = string | number | boolean | Buffer | PlistValue[] | { [key: string]: PlistValue };

export class PlistError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlistError';
  }
}

// Characters XML 1.0 does not allow in a document (besides TAB, LF, CR), and lone surrogates.
const NOT_XML =
  /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** `s` escaped for XML character data (`&`, `<`, `>`, and quotes for good measure). */
export function xmlEscape(s: string): string {
  if (NOT_XML.test(s)) throw new PlistError('a text value holds a character XML cannot carry');
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function value(v: PlistValue, indent: string, out: string[]): void {
  const next = indent + '\t';
  if (typeof v === 'string') out.push(`${indent}<string>${xmlEscape(v)}</string>`);
  else if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new PlistError(`${v} is not an integer`);
    out.push(`${indent}<integer>${v}</integer>`);
  } else if (typeof v === 'boolean') out.push(`${indent}<${v ? 'true' : 'false'}/>`);
  else if (Buffer.isBuffer(v)) {
    out.push(`${indent}<data>`);
    const b64 = v.toString('base64');
    for (let i = 0; i < b64.length; i += 64) out.push(`${indent}${b64.slice(i, i + 64)}`);
    out.push(`${indent}</data>`);
  } else if (Array.isArray(v)) {
    if (v.length === 0) out.push(`${indent}<array/>`);
    else {
      out.push(`${indent}<array>`);
      for (const x of v) value(x, next, out);
      out.push(`${indent}</array>`);
    }
  } else {
    const keys = Object.keys(v);
    if (keys.length === 0) out.push(`${indent}<dict/>`);
    else {
      out.push(`${indent}<dict>`);
      for (const k of keys) {
        out.push(`${next}<key>${xmlEscape(k)}</key>`);
        value(v[k]!, next, out);
      }
      out.push(`${indent}</dict>`);
    }
  }
}

/** A complete XML plist document holding `root`. */
export function buildPlist(root: PlistValue): string {
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<plist version="1.0">',
  ];
  value(root, '', out);
  out.push('</plist>', '');
  return out.join('\n');
}
