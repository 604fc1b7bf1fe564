/**
 * Server side: decoding a client's pkiMessage (PKCSReq, RenewalReq, CertPoll, GetCert, GetCRL)
 * and opening its pkcsPKIEnvelope.
 *
 * `decodePkiRequest` throws only when no CertRep can be built; every other problem is
 * returned in `failure` so the server can sign a CertRep FAILURE that echoes the
 * transactionID and nonce (RFC 8894 §3.3.2.2, docs/conformance.md §6 cases 15, 19–23, 29).
 */
import * as r from '../asn1/reader.js';
import { OID, oidName } from '../asn1/oids.js';
import type { Certificate } from '../pkix/certificate.js';
import {
  CmsError,
  decryptEnvelopedData,
  findSignerCertificate,
  openEnvelopedData,
  getAttribute,
  parseEnvelopedData,
  parseSignedData,
  verifySignerInfo,
  type SignedData,
  type SignerInfo,
} from '../cms/index.js';
import {
  digestFromOid,
  UnsupportedAlgorithmError,
  type CipherName,
  type DigestName,
} from '../crypto/algorithms.js';
import type { RsaKeyTransport } from '../crypto/key-transport.js';
import { readScepAttributes } from './attributes.js';
import { ENVELOPE_FAILURE_TEXT, FailInfo, MessageType, REQUEST_TYPES, ScepError } from './types.js';

/** Largest pkiMessage accepted (the HTTP layer should refuse bigger bodies first). */
export const MAX_PKI_MESSAGE_BYTES = 256 * 1024;

export interface PkiRequest {
  /** The message as received. */
  raw: Buffer;
  /** The messageType number as sent (may be unknown when `failure` is set). */
  messageType: number;
  transactionId: string;
  senderNonce: Buffer;
  /** The certificate that signed the message (the CertRep is encrypted to it). */
  signerCert: Certificate;
  /** Every certificate the message carried. */
  certificates: Certificate[];
  /** The request's digest; sha256 when the request's was refused. */
  digest: DigestName;
  signingTime?: Date;
  /** The inner EnvelopedData ContentInfo (the pkcsPKIEnvelope). */
  envelope?: Buffer;
  /** Set when the server must answer FAILURE (the first problem found). */
  failure?: { failInfo: FailInfo; text: string };
}

function undecodable(msg: string): never {
  throw ScepError.undecodable(msg);
}

/**
 * Decodes and authenticates a pkiMessage sent to the server. Throws ScepError('undecodable')
 * when no CertRep can be built (not a SignedData, trailing data, no signer, signer certificate
 * not in the message, transactionID or senderNonce missing or unusable). Otherwise returns the
 * request, with `failure` set when the answer must be FAILURE: bad signature, messageDigest or
 * content type → badMessageCheck; MD5 or unknown algorithms → badAlg; unknown or
 * server-bound messageType, duplicate SCEP attributes, missing or non-enveloped content →
 * badRequest.
 */
export function decodePkiRequest(input: Buffer): PkiRequest {
  if (!Buffer.isBuffer(input)) undecodable('the pkiMessage must be bytes');
  if (input.length === 0) undecodable('empty pkiMessage');
  if (input.length > MAX_PKI_MESSAGE_BYTES)
    undecodable(`pkiMessage larger than ${MAX_PKI_MESSAGE_BYTES} bytes`);
  let sd: SignedData;
  try {
    sd = parseSignedData(input);
  } catch (e) {
    undecodable(e instanceof CmsError ? e.message : 'malformed pkiMessage');
  }
  const si: SignerInfo | undefined = sd.signerInfos[0];
  if (!si) undecodable('the pkiMessage has no signer');
  const signerCert = findSignerCertificate(sd, si);
  if (!signerCert) undecodable('the signer certificate is not in the pkiMessage');
  if (!si.signedAttrsRaw) undecodable('the pkiMessage has no signed attributes');

  const attrs = readScepAttributes(si.signedAttrs);
  if (attrs.fatal.length > 0) undecodable(attrs.fatal[0]!);
  const transactionId = attrs.transactionId ?? undecodable('transactionID is missing');
  const senderNonce = attrs.senderNonce ?? undecodable('senderNonce is missing');

  const req: PkiRequest = {
    raw: input,
    messageType: attrs.messageType ?? NaN,
    transactionId,
    senderNonce,
    signerCert,
    certificates: sd.certificates,
    digest: 'sha256',
  };
  const fail = (failInfo: FailInfo, text: string): PkiRequest => {
    req.failure = { failInfo, text };
    return req;
  };

  // Authenticity first: nothing else is trusted before the signature checks out.
  try {
    req.digest = digestFromOid(si.digestAlgorithm);
  } catch (e) {
    if (e instanceof UnsupportedAlgorithmError) return fail(FailInfo.badAlg, e.message);
    return fail(FailInfo.badAlg, `unsupported digest algorithm ${oidName(si.digestAlgorithm)}`);
  }
  try {
    verifySignerInfo(sd, si, signerCert);
  } catch (e) {
    if (e instanceof CmsError && e.code === 'badAlg') return fail(FailInfo.badAlg, e.message);
    if (e instanceof CmsError) return fail(FailInfo.badMessageCheck, e.message);
    return fail(FailInfo.badMessageCheck, 'the signature could not be verified');
  }
  if (sd.eContentType !== OID.data) {
    return fail(FailInfo.badMessageCheck, `eContentType must be id-data, got ${oidName(sd.eContentType)}`);
  }
  const st = getAttribute(si, OID.signingTime)?.[0];
  if (st) {
    try {
      req.signingTime = r.time(st);
    } catch {
      return fail(FailInfo.badMessageCheck, 'the signingTime attribute is malformed');
    }
  }

  if (sd.signerInfos.length !== 1)
    return fail(FailInfo.badRequest, 'a pkiMessage must have exactly one signer');
  if (attrs.problems.length > 0) return fail(FailInfo.badRequest, attrs.problems[0]!);
  if (attrs.messageType === undefined) return fail(FailInfo.badRequest, 'messageType is missing');
  if (!REQUEST_TYPES.has(req.messageType)) {
    const shown = Number.isNaN(req.messageType)
      ? 'non-numeric messageType'
      : `messageType ${req.messageType}`;
    return fail(
      FailInfo.badRequest,
      req.messageType === MessageType.CertRep
        ? 'messageType 3 (CertRep) is not a request'
        : `${shown} is not supported`,
    );
  }

  const content = sd.eContent;
  if (!content || content.length === 0) return fail(FailInfo.badRequest, 'the pkcsPKIEnvelope is missing');
  if (!isEnvelopedData(content)) {
    return fail(
      FailInfo.badRequest,
      'the message content is not an EnvelopedData (unencrypted requests are refused)',
    );
  }
  req.envelope = content;
  return req;
}

/** True when `b` starts like ContentInfo(envelopedData); the full parse happens on opening. */
function isEnvelopedData(b: Buffer): boolean {
  try {
    const top = r.readTlv(b, 0);
    if (top.tag !== 0x30) return false;
    const c = new r.Cursor(top);
    return r.oid(c.expect(r.TAG.OID, 'contentType')) === OID.envelopedData;
  } catch {
    return false;
  }
}

/** A certificate of ours that can receive envelopes, with its private key. */
export interface ScepRecipient {
  cert: Certificate;
  transport: RsaKeyTransport;
}

/**
 * Decrypts the request's pkcsPKIEnvelope with whichever of `ours` it is addressed to. Throws
 * ScepError failure: badRequest when the request already failed, has no envelope or is
 * addressed to none of ours; badAlg for a refused cipher (single DES names the switch
 * `--allow-single-des`); badMessageCheck, always with the same text, for any decryption or
 * envelope decoding problem.
 */
export function openEnvelope(
  req: PkiRequest,
  ours: ScepRecipient[],
  opts?: { allowSingleDes?: boolean },
): { content: Buffer; cipher: CipherName } {
  if (req.failure) throw ScepError.failure(req.failure.failInfo, req.failure.text);
  if (!req.envelope) throw ScepError.failure(FailInfo.badRequest, 'the pkcsPKIEnvelope is missing');
  try {
    const env = parseEnvelopedData(req.envelope);
    return decryptEnvelopedData(env, ours, opts);
  } catch (e) {
    throw envelopeError(e);
  }
}

/**
 * Opens the pkcsPKIEnvelope and parses its content with `parse`, doing the same work whatever
 * happens after the public decisions (recipient, algorithms): the content is parsed even when
 * decryption failed (it is then garbage and the parse fails too), and every failure from the
 * RSA unpadding to the content parse ends in ONE prepared ScepError (badMessageCheck,
 * ENVELOPE_FAILURE_TEXT). So neither the answer nor its timing tells a bad RSA padding, a bad
 * CBC padding and an unparsable CSR apart (Bleichenbacher/Marvin, Vaudenay; bench/marvin.ts).
 */
export function openEnvelopeAs<T>(
  req: PkiRequest,
  ours: ScepRecipient[],
  parse: (content: Buffer) => T,
  opts?: { allowSingleDes?: boolean },
): { value: T; cipher: CipherName } {
  if (req.failure) throw ScepError.failure(req.failure.failInfo, req.failure.text);
  if (!req.envelope) throw ScepError.failure(FailInfo.badRequest, 'the pkcsPKIEnvelope is missing');
  let opened: { ok: boolean; content: Buffer; cipher: CipherName };
  try {
    opened = openEnvelopedData(parseEnvelopedData(req.envelope), ours, opts);
  } catch (e) {
    throw envelopeError(e);
  }
  const failed = ScepError.prepared(FailInfo.badMessageCheck, ENVELOPE_FAILURE_TEXT);
  let value: T | undefined;
  let parsed = false;
  try {
    value = parse(opened.content);
    parsed = true;
  } catch {
    parsed = false;
  }
  if (!opened.ok || !parsed) throw failed;
  return { value: value as T, cipher: opened.cipher };
}

function envelopeError(e: unknown): ScepError {
  if (e instanceof ScepError) return e;
  if (e instanceof UnsupportedAlgorithmError)
    return ScepError.failure(FailInfo.badAlg, algText(e.message, e.oid));
  if (e instanceof CmsError) {
    if (e.code === 'badAlg') return ScepError.failure(FailInfo.badAlg, algText(e.message));
    if (e.code === 'badRequest') return ScepError.failure(FailInfo.badRequest, e.message);
  }
  return ScepError.failure(FailInfo.badMessageCheck, ENVELOPE_FAILURE_TEXT);
}

function algText(msg: string, oid?: string): string {
  if ((oid === OID.desCbc || msg.includes(OID.desCbc)) && !msg.includes('--allow-single-des')) {
    return `${msg}; the server accepts single DES only with --allow-single-des`;
  }
  return msg;
}
