/**
 * Client side of the codec: building a request pkiMessage and decoding/authenticating the
 * CA's CertRep (RFC 8894 §3.3, docs/conformance.md §6 case 46).
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { OID } from '../asn1/oids.js';
import type { Certificate } from '../pkix/certificate.js';
import {
  buildEnvelopedData,
  buildSignedData,
  CmsError,
  decryptEnvelopedDataAs,
  parseDegenerate,
  parseEnvelopedData,
  parseSignedData,
  verifySignerInfo,
  type KeyTransport,
  type SignedData,
} from '../cms/index.js';
import { signerIdMatches } from '../cms/signer-id.js';
import type { CipherName, DigestName } from '../crypto/algorithms.js';
import { readScepAttributes, scepAttributes } from './attributes.js';
import { MAX_PKI_MESSAGE_BYTES } from './request.js';
import { FailInfo, MessageType, PkiStatus, ScepError } from './types.js';

export interface PkiRequestOptions {
  messageType: MessageType;
  transactionId: string;
  /** Default: 16 fresh random bytes. */
  senderNonce?: Buffer;
  /** The (often self-signed) certificate that signs the request; the CertRep is encrypted to it. */
  signerCert: Certificate;
  signerKey: KeyObject;
  digest: DigestName;
  /** The CA/RA certificate the pkcsPKIEnvelope is encrypted to. */
  recipient: Certificate;
  cipher: CipherName;
  keyTransport?: KeyTransport;
  /** The messageData: a PKCS#10, IssuerAndSubject or IssuerAndSerialNumber. */
  content: Buffer;
  /** Only for tests of legacy peers: permits cipher 'des'. */
  allowSingleDes?: boolean;
}

/** Builds a request pkiMessage (DER) and returns it with the senderNonce used. */
export function encodePkiRequest(o: PkiRequestOptions): { der: Buffer; senderNonce: Buffer } {
  const senderNonce = o.senderNonce ?? randomBytes(16);
  const envelope = buildEnvelopedData({
    content: o.content,
    recipient: o.recipient,
    cipher: o.cipher,
    ...(o.keyTransport ? { keyTransport: o.keyTransport } : {}),
    ...(o.allowSingleDes ? { allowSingleDes: true } : {}),
  });
  const der = buildSignedData({
    signerCert: o.signerCert,
    signerKey: o.signerKey,
    digest: o.digest,
    content: envelope,
    attributes: scepAttributes({ messageType: o.messageType, transactionId: o.transactionId, senderNonce }),
  });
  return { der, senderNonce };
}

/** A decoded, authenticated CertRep. */
export interface CertRep {
  status: PkiStatus;
  failInfo?: FailInfo;
  failInfoText?: string;
  transactionId: string;
  senderNonce: Buffer;
  recipientNonce: Buffer;
  signerCert: Certificate;
  /** SUCCESS: the certificates in the reply (issued certificate normally first). */
  certificates: Certificate[];
  /** SUCCESS for GetCRL: the CRLs (CertificateList DER). */
  crls: Buffer[];
  /** The reply's content cipher (SUCCESS only). */
  cipher?: CipherName;
  digest: DigestName;
}

export interface DecodeCertRepOptions {
  /** The transactionID we sent. */
  transactionId: string;
  /** The senderNonce we sent; the reply's recipientNonce must equal it. */
  senderNonce: Buffer;
  /** CA/RA certificates the reply must be signed by (compared by public key). */
  trustedSigners: Certificate[];
  /**
   * Our certificate and key, to open a SUCCESS reply's envelope: key transport for an RSA
   * key; for an EC key key agreement, or the password recipient with `password` (the
   * challengePassword we sent, RFC 8894 §3.1).
   */
  decrypt?: { cert: Certificate; key: KeyObject; password?: Buffer };
  allowSingleDes?: boolean;
}

function check(msg: string): never {
  throw ScepError.failure(FailInfo.badMessageCheck, msg);
}

/**
 * Decodes a CertRep and checks it belongs to our request and comes from a trusted signer:
 * signature, signer among `trustedSigners`, messageType 3, transactionID and recipientNonce
 * equal to ours, a known pkiStatus (with failInfo when FAILURE). Opens the SUCCESS envelope
 * when `decrypt` is given. Throws ScepError: `undecodable` for bytes that are no pkiMessage,
 * `failure` badMessageCheck/badAlg for a reply that must not be trusted or cannot be opened.
 */
export function decodeCertRep(input: Buffer, o: DecodeCertRepOptions): CertRep {
  if (!Buffer.isBuffer(input) || input.length === 0) throw ScepError.undecodable('empty CertRep');
  if (input.length > MAX_PKI_MESSAGE_BYTES) throw ScepError.undecodable('CertRep too large');
  let sd: SignedData;
  try {
    sd = parseSignedData(input);
  } catch (e) {
    throw ScepError.undecodable(e instanceof CmsError ? e.message : 'malformed CertRep');
  }
  if (sd.signerInfos.length !== 1) check('the CertRep must have exactly one signer');
  const si = sd.signerInfos[0]!;
  const signerCert =
    sd.certificates.find((c) => signerIdMatches(si.sid, c)) ??
    o.trustedSigners.find((c) => signerIdMatches(si.sid, c));
  if (!signerCert) check('the CertRep signer certificate is missing');
  if (!o.trustedSigners.some((t) => t.spki.equals(signerCert.spki))) {
    check('the CertRep is not signed by a trusted CA/RA certificate');
  }
  let digest: DigestName;
  try {
    digest = verifySignerInfo(sd, si, signerCert);
  } catch (e) {
    if (e instanceof CmsError && e.code === 'badAlg') throw ScepError.failure(FailInfo.badAlg, e.message);
    check(`CertRep ${e instanceof CmsError ? e.message : 'signature check failed'}`);
  }
  if (sd.eContentType !== OID.data) check('the CertRep content type is not id-data');

  const a = readScepAttributes(si.signedAttrs);
  if (a.fatal.length > 0) check(`CertRep: ${a.fatal[0]!}`);
  if (a.problems.length > 0) check(`CertRep: ${a.problems[0]!}`);
  if (a.messageType !== MessageType.CertRep) check('the reply is not a CertRep (messageType must be 3)');
  if (a.transactionId === undefined) check('the CertRep has no transactionID');
  if (a.transactionId !== o.transactionId) check('the CertRep transactionID does not match the request');
  if (!a.recipientNonce) check('the CertRep has no recipientNonce');
  if (!a.recipientNonce.equals(o.senderNonce))
    check('the CertRep recipientNonce does not match our senderNonce');
  if (!a.senderNonce) check('the CertRep has no senderNonce');
  const status = a.pkiStatus;
  if (status !== PkiStatus.SUCCESS && status !== PkiStatus.FAILURE && status !== PkiStatus.PENDING) {
    check('the CertRep pkiStatus is missing or unknown');
  }
  const rep: CertRep = {
    status,
    transactionId: a.transactionId,
    senderNonce: a.senderNonce,
    recipientNonce: a.recipientNonce,
    signerCert,
    certificates: [],
    crls: [],
    digest,
  };
  if (status === PkiStatus.FAILURE) {
    const fi = a.failInfo;
    if (fi === undefined || !(fi in FailInfo) || Number.isNaN(fi))
      check('the CertRep failInfo is missing or unknown');
    rep.failInfo = fi as FailInfo;
    if (a.failInfoText !== undefined) rep.failInfoText = a.failInfoText;
    return rep;
  }
  if (status === PkiStatus.PENDING) return rep;

  if (!sd.eContent || sd.eContent.length === 0) check('the SUCCESS CertRep has no pkcsPKIEnvelope');
  if (!o.decrypt) return rep;
  let inner: Buffer;
  try {
    const env = parseEnvelopedData(sd.eContent);
    const out = decryptEnvelopedDataAs(
      env,
      o.decrypt,
      o.allowSingleDes ? { allowSingleDes: true } : undefined,
    );
    inner = out.content;
    rep.cipher = out.cipher;
  } catch (e) {
    if (e instanceof CmsError && e.code === 'badAlg') throw ScepError.failure(FailInfo.badAlg, e.message);
    check(`the CertRep envelope could not be opened${e instanceof CmsError ? `: ${e.message}` : ''}`);
  }
  try {
    const d = parseDegenerate(inner);
    rep.certificates = d.certificates;
    rep.crls = d.crls;
  } catch {
    check('the CertRep content is not a degenerate SignedData');
  }
  return rep;
}

/** Reads only the SCEP attributes of any pkiMessage, without any verification (for `inspect`). */
export function peekAttributes(
  input: Buffer,
): ReturnType<typeof readScepAttributes> & { signed: SignedData } {
  let sd: SignedData;
  try {
    sd = parseSignedData(input);
  } catch (e) {
    throw ScepError.undecodable(e instanceof CmsError ? e.message : 'malformed pkiMessage');
  }
  const si = sd.signerInfos[0];
  if (!si) throw ScepError.undecodable('the pkiMessage has no signer');
  return { signed: sd, ...readScepAttributes(si.signedAttrs) };
}
