/**
 * OCSP messages (RFC 6960) on the hot-path DER reader and writer: requests are parsed (they are
 * network input: bounded size, number of certificates and nonce length; anything else is an
 * `OcspRequestError`, answered malformedRequest) and responses are built and signed.
 *
 * What a request may carry: v1, an optional requestorName, 1 to MAX_OCSP_CERT_IDS CertIDs
 * hashed with SHA-1/SHA-2 (MD5 and unknown hashes are refused), the nonce extension (RFC 8954:
 * an OCTET STRING of 1 to 32 octets) and non-critical extensions we ignore. A signature on
 * the request (optionalSignature) is neither required nor checked (RFC 5019 §2.1.2 profile).
 */
import * as r from '../asn1/reader.js';
import * as der from '../asn1/writer.js';
import { OID } from '../asn1/oids.js';
import {
  DIGEST_LENGTH,
  digestFromOid,
  UnsupportedAlgorithmError,
  type DigestName,
} from '../crypto/algorithms.js';
import { serialToHex } from './certificate.js';
import { extension, parseExtensionsTlv } from './extensions.js';
import type { Signer } from './signature.js';

/** OCSPResponseStatus (RFC 6960 §4.2.1). */
export const OcspStatus = {
  successful: 0,
  malformedRequest: 1,
  internalError: 2,
  tryLater: 3,
  sigRequired: 5,
  unauthorized: 6,
} as const;
export type OcspResponseStatus = (typeof OcspStatus)[keyof typeof OcspStatus];

/** Largest OCSP request we read (a plain one is about 100 bytes; a signed one a few KiB). */
export const MAX_OCSP_REQUEST_BYTES = 16 * 1024;
/** Most certificates asked about in one request. */
export const MAX_OCSP_CERT_IDS = 16;
/** Longest nonce (RFC 8954 §2.1: 1 to 32 octets). */
export const MAX_OCSP_NONCE_BYTES = 32;

/** A request we cannot answer (answered malformedRequest); the message names the cause. */
export class OcspRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OcspRequestError';
  }
}

/** One CertID of a request. */
export interface OcspCertId {
  /** The CertID DER exactly as the client sent it (echoed in the response). */
  raw: Buffer;
  hash: DigestName;
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
  /** Canonical serial hex (`serialToHex`). */
  serial: string;
}

export interface OcspRequest {
  certIds: OcspCertId[];
  /** The nonce extension's extnValue (the DER of its OCTET STRING), echoed unchanged. */
  nonce?: Buffer;
}

/** Nesting and element bounds of a request (a CertID sits at depth 5). */
const LIMITS: r.ReadLimits = { maxDepth: 16, maxChildren: 64 };

/** Parses an OCSPRequest. Throws only `OcspRequestError`. */
export function parseOcspRequest(input: Uint8Array): OcspRequest {
  if (input.length > MAX_OCSP_REQUEST_BYTES)
    throw new OcspRequestError(`request larger than ${MAX_OCSP_REQUEST_BYTES} bytes`);
  if (input.length === 0) throw new OcspRequestError('empty request');
  try {
    return parseUnchecked(input);
  } catch (e) {
    if (e instanceof OcspRequestError) throw e;
    if (e instanceof r.Asn1Error) throw new OcspRequestError(`malformed OCSP request: ${e.message}`);
    if (e instanceof UnsupportedAlgorithmError) throw new OcspRequestError(e.message);
    throw new OcspRequestError('malformed OCSP request');
  }
}

function parseUnchecked(input: Uint8Array): OcspRequest {
  const top = new r.Cursor(r.expectTag(r.parse(input, LIMITS), 0x30, 'OCSPRequest'), LIMITS);
  const tbs = new r.Cursor(top.expect(0x30, 'TBSRequest'), LIMITS);
  top.optional(0xa0); // optionalSignature: not required, not checked
  top.end('OCSPRequest');
  const version = tbs.optional(0xa0);
  if (version && r.int(new r.Cursor(version, LIMITS).expect(r.TAG.INTEGER, 'version')) !== 0)
    throw new OcspRequestError('unsupported OCSP request version');
  tbs.optional(0xa1); // requestorName
  const list = tbs.expect(0x30, 'requestList');
  const exts = tbs.optional(0xa2);
  tbs.end('TBSRequest');
  const items = r.children(list, LIMITS);
  if (items.length === 0) throw new OcspRequestError('the request names no certificate');
  if (items.length > MAX_OCSP_CERT_IDS)
    throw new OcspRequestError(`more than ${MAX_OCSP_CERT_IDS} certificates in one request`);
  const out: OcspRequest = { certIds: items.map(parseSingleRequest) };
  if (exts) {
    for (const e of extensionsOf(exts)) {
      if (e.oid === OID.ocspNonce) out.nonce = checkedNonce(e.value);
      else if (e.critical) throw new OcspRequestError(`unsupported critical extension ${e.oid}`);
    }
  }
  return out;
}

/** The Extensions inside an `[n] EXPLICIT Extensions`, each OID at most once. */
function extensionsOf(wrapper: r.Tlv): ReturnType<typeof parseExtensionsTlv> {
  const c = new r.Cursor(wrapper, LIMITS);
  const list = parseExtensionsTlv(c.expect(0x30, 'Extensions'));
  c.end('extensions');
  const seen = new Set<string>();
  for (const e of list) {
    if (seen.has(e.oid)) throw new OcspRequestError(`extension ${e.oid} appears twice`);
    seen.add(e.oid);
  }
  return list;
}

function checkedNonce(extnValue: Buffer): Buffer {
  const t = r.parse(extnValue, LIMITS);
  if (t.tag !== r.TAG.OCTET_STRING) throw new OcspRequestError('the nonce is not an OCTET STRING');
  const n = t.valueEnd - t.valueStart;
  if (n < 1 || n > MAX_OCSP_NONCE_BYTES)
    throw new OcspRequestError(`the nonce must be 1 to ${MAX_OCSP_NONCE_BYTES} octets, not ${n}`);
  return extnValue;
}

function parseSingleRequest(t: r.Tlv): OcspCertId {
  const req = new r.Cursor(r.expectTag(t, 0x30, 'Request'), LIMITS);
  const idT = req.expect(0x30, 'CertID');
  const exts = req.optional(0xa0);
  req.end('Request');
  if (exts) {
    for (const e of extensionsOf(exts))
      if (e.critical) throw new OcspRequestError(`unsupported critical extension ${e.oid}`);
  }
  const c = new r.Cursor(idT, LIMITS);
  const alg = new r.Cursor(c.expect(0x30, 'hashAlgorithm'), LIMITS);
  const hash = digestFromOid(r.oid(alg.expect(r.TAG.OID, 'hash algorithm')));
  const params = alg.optional(r.TAG.NULL);
  if (params && params.valueEnd !== params.valueStart) throw new OcspRequestError('bad hash parameters');
  alg.end('hashAlgorithm');
  const issuerNameHash = r.value(c.expect(r.TAG.OCTET_STRING, 'issuerNameHash'));
  const issuerKeyHash = r.value(c.expect(r.TAG.OCTET_STRING, 'issuerKeyHash'));
  if (issuerNameHash.length !== DIGEST_LENGTH[hash] || issuerKeyHash.length !== DIGEST_LENGTH[hash])
    throw new OcspRequestError(`the issuer hashes are not ${hash} digests`);
  const serial = r.intBytes(c.expect(r.TAG.INTEGER, 'serialNumber'));
  if (serial.length > 21) throw new OcspRequestError('serial number longer than 20 octets');
  c.end('CertID');
  return { raw: r.raw(idT), hash, issuerNameHash, issuerKeyHash, serial: serialToHex(serial) };
}

// ---------------------------------------------------------------------------------------
// Responses

export type OcspCertStatus =
  | { status: 'good' }
  /** reason: CRLReason (RFC 5280 §5.3.1), omitted when null/undefined. */
  | { status: 'revoked'; revokedAt: Date; reason?: number | null }
  | { status: 'unknown' };

export interface OcspSingleResponse {
  /** The CertID DER as the request had it. */
  certId: Uint8Array;
  certStatus: OcspCertStatus;
  thisUpdate: Date;
  /** Absent: newer information may be available at any time (not cacheable). */
  nextUpdate?: Date;
}

/** Who signs a response: the CA itself or a delegated responder certificate it issued. */
export interface OcspResponderId {
  signer: Signer;
  /** SHA-1 of the signer's subjectPublicKey bits (ResponderID byKey, RFC 6960 §4.2.1). */
  keyHash: Buffer;
  /** Certificates sent along (the delegated responder certificate; none for the CA). */
  certs: readonly Buffer[];
}

export interface OcspResponseOptions {
  responses: readonly OcspSingleResponse[];
  producedAt: Date;
  /** The request's nonce extnValue, echoed. */
  nonce?: Buffer;
  responder: OcspResponderId;
}

function certStatusDer(s: OcspCertStatus): der.Der {
  switch (s.status) {
    case 'good':
      return der.implicitPrimitive(0, Buffer.alloc(0));
    case 'unknown':
      return der.implicitPrimitive(2, Buffer.alloc(0));
    case 'revoked': {
      const items: der.Der[] = [der.generalizedTime(s.revokedAt)];
      if (s.reason !== undefined && s.reason !== null)
        items.push(der.explicit(0, der.primitive(r.TAG.ENUMERATED, Buffer.from([s.reason]))));
      return der.implicitConstructed(1, items);
    }
  }
}

/** A successful OCSPResponse carrying a signed BasicOCSPResponse. */
export function buildOcspResponse(o: OcspResponseOptions): Buffer {
  const single = o.responses.map((s) => {
    const items: der.Der[] = [s.certId, certStatusDer(s.certStatus), der.generalizedTime(s.thisUpdate)];
    if (s.nextUpdate) items.push(der.explicit(0, der.generalizedTime(s.nextUpdate)));
    return der.seq(...items);
  });
  const data: der.Der[] = [
    der.explicit(2, der.octetString(o.responder.keyHash)),
    der.generalizedTime(o.producedAt),
    der.seq(...single),
  ];
  if (o.nonce) data.push(der.explicit(1, der.seq(extension(OID.ocspNonce, false, o.nonce))));
  const tbs = der.encode(der.seq(...data));
  const basic: der.Der[] = [tbs, o.responder.signer.algorithm, der.bitString(o.responder.signer.sign(tbs))];
  if (o.responder.certs.length > 0) basic.push(der.explicit(0, der.seq(...o.responder.certs)));
  return der.encode(
    der.seq(
      der.primitive(r.TAG.ENUMERATED, Buffer.from([OcspStatus.successful])),
      der.explicit(0, der.seq(der.oid(OID.ocspBasic), der.octetString(der.encode(der.seq(...basic))))),
    ),
  );
}

/** An unsuccessful OCSPResponse (no responseBytes, unsigned: RFC 6960 §2.3). */
export function ocspErrorResponse(status: Exclude<OcspResponseStatus, 0>): Buffer {
  return der.encode(der.seq(der.primitive(r.TAG.ENUMERATED, Buffer.from([status]))));
}
