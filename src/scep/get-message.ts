/**
 * The `message` parameter of `GET ?operation=PKIOperation&message=…` (RFC 8894 §4.1): standard
 * base64 of the pkiMessage, percent-escaped. Real clients deviate (docs/conformance.md §6 cases 10–11):
 * an unescaped `+` that reaches us as a space, `%0A` line breaks, base64url, missing padding.
 */
import { ScepError } from './types.js';
import { MAX_PKI_MESSAGE_BYTES } from './request.js';

/** Longest `message` accepted, in characters (base64 of the largest pkiMessage plus line breaks). */
export const MAX_GET_MESSAGE_CHARS = Math.ceil((MAX_PKI_MESSAGE_BYTES * 4) / 3) * 2;

/**
 * Decodes an already percent-decoded `message` value. Spaces become `+`; CR, LF, tabs and
 * leftover `%0A`/`%0D` escapes are dropped; leftover `%2B`/`%2F`/`%3D` are undone; base64url
 * is mapped to standard base64; padding is optional. Throws ScepError('undecodable') for any
 * other character, bad length or oversize input.
 */
export function decodeGetMessage(s: string): Buffer {
  if (typeof s !== 'string') throw ScepError.undecodable('the message parameter is missing');
  if (s.length > MAX_GET_MESSAGE_CHARS) throw ScepError.undecodable('the message parameter is too long');
  let t = s
    .replace(/%0[ad]/gi, '')
    .replace(/%2b/gi, '+')
    .replace(/%2f/gi, '/')
    .replace(/%3d/gi, '=')
    .replace(/ /g, '+')
    .replace(/[\r\n\t]/g, '')
    .replace(/-/g, '+')
    .replace(/_/g, '/');
  const pad = /=*$/.exec(t)![0].length;
  if (pad > 2) throw ScepError.undecodable('the message parameter is not base64');
  t = t.slice(0, t.length - pad);
  if (!/^[A-Za-z0-9+/]*$/.test(t)) throw ScepError.undecodable('the message parameter is not base64');
  if (t.length === 0) throw ScepError.undecodable('the message parameter is empty');
  if (t.length % 4 === 1) throw ScepError.undecodable('the message parameter is not base64 (bad length)');
  if (pad > 0 && (t.length + pad) % 4 !== 0)
    throw ScepError.undecodable('the message parameter has bad padding');
  const out = Buffer.from(t, 'base64');
  if (out.length > MAX_PKI_MESSAGE_BYTES) throw ScepError.undecodable('the message parameter is too long');
  return out;
}

/** Standard base64 of a pkiMessage, percent-escaped for a query string. */
export function encodeGetMessage(der: Buffer): string {
  return encodeURIComponent(der.toString('base64'));
}
