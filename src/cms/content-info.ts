/**
 * ContentInfo (RFC 5652 §3): the outer wrapper of every CMS message.
 * `ContentInfo ::= SEQUENCE { contentType OBJECT IDENTIFIER, content [0] EXPLICIT ANY }`
 */
import * as r from '../asn1/reader.js';
import * as der from '../asn1/writer.js';
import { oidName } from '../asn1/oids.js';
import { CmsError } from './errors.js';

/** Hard cap on one CMS message; SCEP messages are a few KiB. */
export const MAX_CMS_BYTES = 4 * 1024 * 1024;

/**
 * Parses a ContentInfo (DER or BER) and returns its content element after checking the
 * content type. Throws Asn1Error/CmsError; callers wrap with `decoding`.
 */
export function unwrapContentInfo(input: Uint8Array, expectedType: string, what: string): r.Tlv {
  if (input.length > MAX_CMS_BYTES)
    throw new CmsError('malformed', `${what} is larger than ${MAX_CMS_BYTES} bytes`);
  const top = r.parse(input);
  r.expectTag(top, 0x30, 'ContentInfo');
  const c = new r.Cursor(top);
  const type = r.oid(c.expect(r.TAG.OID, 'contentType'));
  if (type !== expectedType) {
    throw new CmsError(
      'malformed',
      `expected ${what} (${oidName(expectedType)}), got content type ${oidName(type)}`,
    );
  }
  const wrapper = c.expect(0xa0, 'content');
  c.end('ContentInfo');
  const wc = new r.Cursor(wrapper);
  const content = wc.next('content');
  wc.end('content');
  return content;
}

/** ContentInfo DER around an encoded content. */
export function wrapContentInfo(contentType: string, content: der.Der): Buffer {
  return der.encode(der.seq(der.oid(contentType), der.explicit(0, content)));
}
