/**
 * The SCEP signed attributes (RFC 8894 §3.2.1): encoding for CertRep/requests and tolerant,
 * bounded decoding from a SignerInfo's signedAttrs.
 *
 * Decisions (RFC 8894 leaves them open; docs/design-notes.md):
 * - messageType / pkiStatus / failInfo are PrintableString decimals; any string type is read.
 * - transactionID: PrintableString, UTF8String or IA5String (any string type) is accepted and
 *   the decoded string echoed. At most {@link MAX_TRANSACTION_ID} characters; an empty or longer
 *   one makes the message undecodable (it is a storage key; we do not echo unbounded text).
 * - Nonces: {@link MIN_NONCE}–{@link MAX_NONCE} bytes accepted and echoed verbatim; other
 *   lengths make the message undecodable.
 * - An attribute present twice, or with more than one value, is a FAILURE badRequest; the first
 *   value is still used so the CertRep can echo it.
 */
import * as r from '../asn1/reader.js';
import * as der from '../asn1/writer.js';
import { OID } from '../asn1/oids.js';
import type { Attribute } from '../cms/index.js';

export const MAX_TRANSACTION_ID = 128;
export const MIN_NONCE = 8;
export const MAX_NONCE = 64;

const SCEP_OIDS: ReadonlyMap<string, keyof RawScepAttributes> = new Map([
  [OID.scepMessageType, 'messageType'],
  [OID.scepPkiStatus, 'pkiStatus'],
  [OID.scepFailInfo, 'failInfo'],
  [OID.scepSenderNonce, 'senderNonce'],
  [OID.scepRecipientNonce, 'recipientNonce'],
  [OID.scepTransactionId, 'transactionId'],
  [OID.scepFailInfoText, 'failInfoText'],
  [OID.scepFailInfoTextLegacy, 'failInfoText'],
]);

/** The first value of each SCEP attribute found, undecoded. */
interface RawScepAttributes {
  messageType?: r.Tlv;
  pkiStatus?: r.Tlv;
  failInfo?: r.Tlv;
  senderNonce?: r.Tlv;
  recipientNonce?: r.Tlv;
  transactionId?: r.Tlv;
  failInfoText?: r.Tlv;
}

/** SCEP attributes as read from a message. Numbers are NaN when present but not a decimal. */
export interface ScepAttributes {
  messageType?: number;
  pkiStatus?: number;
  failInfo?: number;
  senderNonce?: Buffer;
  recipientNonce?: Buffer;
  transactionId?: string;
  failInfoText?: string;
  /** Problems that still allow an answer (duplicates), one line each. */
  problems: string[];
  /** Problems that make the message undecodable (bad nonce length, bad transactionID). */
  fatal: string[];
}

function decimal(t: r.Tlv): number {
  let s: string;
  try {
    s = r.string(t);
  } catch {
    return NaN;
  }
  return /^\d{1,4}$/.test(s) ? Number(s) : NaN;
}

/** Reads the SCEP attributes out of a SignerInfo's signed attributes. Never throws for bad values. */
export function readScepAttributes(attrs: readonly Attribute[]): ScepAttributes {
  const raw: RawScepAttributes = {};
  const problems: string[] = [];
  const fatal: string[] = [];
  for (const a of attrs) {
    const key = SCEP_OIDS.get(a.oid);
    if (!key) continue;
    if (raw[key] !== undefined) {
      // The legacy failInfoText arc next to the current one is not a duplicate worth failing.
      if (key !== 'failInfoText') problems.push(`duplicate ${key} attribute`);
      continue;
    }
    if (a.values.length !== 1) problems.push(`${key} attribute must have exactly one value`);
    const v = a.values[0];
    if (v) raw[key] = v;
  }
  const out: ScepAttributes = { problems, fatal };
  if (raw.messageType) out.messageType = decimal(raw.messageType);
  if (raw.pkiStatus) out.pkiStatus = decimal(raw.pkiStatus);
  if (raw.failInfo) out.failInfo = decimal(raw.failInfo);
  for (const k of ['senderNonce', 'recipientNonce'] as const) {
    const t = raw[k];
    if (!t) continue;
    if (t.tag !== r.TAG.OCTET_STRING && t.tag !== 0x24) {
      fatal.push(`${k} is not an OCTET STRING`);
      continue;
    }
    let n: Buffer;
    try {
      n = r.octets(t);
    } catch {
      fatal.push(`${k} is malformed`);
      continue;
    }
    if (n.length < MIN_NONCE || n.length > MAX_NONCE) {
      fatal.push(`${k} must be ${MIN_NONCE} to ${MAX_NONCE} bytes, got ${n.length}`);
      continue;
    }
    out[k] = Buffer.from(n);
  }
  if (raw.transactionId) {
    let s: string | undefined;
    try {
      s = r.string(raw.transactionId);
    } catch {
      fatal.push('transactionID is not a character string');
    }
    if (s !== undefined) {
      if (s.length === 0) fatal.push('transactionID is empty');
      else if (s.length > MAX_TRANSACTION_ID)
        fatal.push(`transactionID is longer than ${MAX_TRANSACTION_ID} characters`);
      else if (/[\u0000-\u001f\u007f]/.test(s)) fatal.push('transactionID contains control characters');
      else out.transactionId = s;
    }
  }
  if (raw.failInfoText) {
    try {
      out.failInfoText = r.string(raw.failInfoText).slice(0, 1024);
    } catch {
      // informational only; ignore a broken one
    }
  }
  return out;
}

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** transactionID as PrintableString when every character allows it, otherwise UTF8String. */
export function transactionIdValue(id: string): der.DerNode {
  return PRINTABLE.test(id) ? der.printable(id) : der.utf8(id);
}

export interface ScepAttributeValues {
  messageType: number;
  transactionId: string;
  senderNonce: Buffer;
  recipientNonce?: Buffer;
  pkiStatus?: number;
  failInfo?: number;
  failInfoText?: string;
}

/** The SCEP attributes to sign, in the shape `buildSignedData` takes. */
export function scepAttributes(v: ScepAttributeValues): Array<{ oid: string; values: der.Der[] }> {
  const out: Array<{ oid: string; values: der.Der[] }> = [
    { oid: OID.scepTransactionId, values: [transactionIdValue(v.transactionId)] },
    { oid: OID.scepMessageType, values: [der.printable(String(v.messageType))] },
    { oid: OID.scepSenderNonce, values: [der.octetString(v.senderNonce)] },
  ];
  if (v.recipientNonce)
    out.push({ oid: OID.scepRecipientNonce, values: [der.octetString(v.recipientNonce)] });
  if (v.pkiStatus !== undefined)
    out.push({ oid: OID.scepPkiStatus, values: [der.printable(String(v.pkiStatus))] });
  if (v.failInfo !== undefined)
    out.push({ oid: OID.scepFailInfo, values: [der.printable(String(v.failInfo))] });
  if (v.failInfoText !== undefined)
    out.push({ oid: OID.scepFailInfoText, values: [der.utf8(v.failInfoText)] });
  return out;
}
