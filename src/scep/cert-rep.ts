/**
 * Server side: building a CertRep (RFC 8894 §3.3.2). SUCCESS carries a pkcsPKIEnvelope (an
 * EnvelopedData to the request's signer certificate) around a degenerate certs-only or
 * CRLs-only SignedData; FAILURE and PENDING carry no content at all.
 */
import type { Certificate } from '../pkix/certificate.js';
import { buildDegenerate, buildEnvelopedData, buildSignedData, type KeyTransport } from '../cms/index.js';
import type { CipherName, DigestName } from '../crypto/algorithms.js';
import { publicRandomBytes } from '../crypto/random-pool.js';
import { scepAttributes } from './attributes.js';
import { FailInfo, MessageType, PkiStatus } from './types.js';
import type { PrivateKeyLike } from '../crypto/private-key.js';

export interface CertRepOptions {
  /** The request's transactionID, echoed. */
  transactionId: string;
  /** The request's senderNonce, echoed verbatim. */
  recipientNonce: Buffer;
  /** Default: 16 fresh random bytes. */
  senderNonce?: Buffer;
  status: PkiStatus;
  /** Required with FAILURE (default badRequest); ignored otherwise. */
  failInfo?: FailInfo;
  /** Human text for FAILURE (failInfoText, 1.3.6.1.5.5.7.24.1). Never put secrets here. */
  failInfoText?: string;
  /** SUCCESS: the issued (or requested) certificate first, then an optional chain. */
  certificates?: Buffer[];
  /** SUCCESS for GetCRL: the CRL(s). */
  crls?: Buffer[];
  /**
   * The request's signer certificate; SUCCESS content is encrypted to it: RSA key transport
   * for an RSA key, ECDH key agreement (RFC 5753) for an EC key without `recipientPassword`.
   */
  recipientCert?: Certificate;
  /**
   * Encrypt the SUCCESS content to this password instead (PasswordRecipientInfo, RFC 3211):
   * RFC 8894 §3.1 for a signer key that cannot receive key transport, keyed by the request's
   * challengePassword.
   */
  recipientPassword?: Buffer;
  /** The request's cipher (single DES is answered with 3DES). Default aes256. */
  cipher?: CipherName;
  keyTransport?: KeyTransport;
  /** The CA or RA signing the reply; `chain` certs are added after its own certificate. */
  signer: { cert: Certificate; key: PrivateKeyLike; chain?: Buffer[] };
  /** The request's digest. */
  digest: DigestName;
}

/** The cipher a reply uses for a request's cipher: the same, except single DES → 3DES. */
export function replyCipher(requestCipher: CipherName | undefined): Exclude<CipherName, 'des'> {
  if (requestCipher === undefined) return 'aes256';
  return requestCipher === 'des' ? 'des3' : requestCipher;
}

/** Builds a signed CertRep pkiMessage (DER). Throws TypeError for inconsistent options. */
export function encodeCertRep(o: CertRepOptions): Buffer {
  const senderNonce = o.senderNonce ?? publicRandomBytes(16);
  let content: Buffer | undefined;
  if (o.status === PkiStatus.SUCCESS) {
    if (!o.recipientCert) throw new TypeError('a SUCCESS CertRep needs recipientCert');
    const certs = o.certificates ?? [];
    const crls = o.crls ?? [];
    if (certs.length === 0 && crls.length === 0)
      throw new TypeError('a SUCCESS CertRep needs certificates or crls');
    const inner = buildDegenerate({ certificates: certs, crls });
    content = buildEnvelopedData({
      content: inner,
      recipient: o.recipientCert,
      ...(o.recipientPassword ? { password: o.recipientPassword } : {}),
      cipher: replyCipher(o.cipher),
      ...(o.keyTransport ? { keyTransport: o.keyTransport } : {}),
    });
  } else if (o.status !== PkiStatus.FAILURE && o.status !== PkiStatus.PENDING) {
    throw new TypeError(`unknown pkiStatus ${String(o.status)}`);
  }
  const failure = o.status === PkiStatus.FAILURE;
  const attributes = scepAttributes({
    messageType: MessageType.CertRep,
    transactionId: o.transactionId,
    senderNonce,
    recipientNonce: o.recipientNonce,
    pkiStatus: o.status,
    ...(failure ? { failInfo: o.failInfo ?? FailInfo.badRequest } : {}),
    ...(failure && o.failInfoText ? { failInfoText: o.failInfoText } : {}),
  });
  return buildSignedData({
    signerCert: o.signer.cert,
    signerKey: o.signer.key,
    digest: o.digest,
    attributes,
    ...(content ? { content } : {}),
    ...(o.signer.chain ? { certificates: o.signer.chain } : {}),
  });
}
