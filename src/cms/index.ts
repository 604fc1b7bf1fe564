/** CMS (RFC 5652) as SCEP uses it: SignedData, EnvelopedData, degenerate certs-only. */
export { CmsError, type CmsErrorCode } from './errors.js';
export { parseSignerId, signerIdMatches, issuerAndSerial, type SignerId } from './signer-id.js';
export {
  parseSignedData,
  parseSignedDataContent,
  findSignerCertificate,
  verifySignerInfo,
  getAttribute,
  buildSignedData,
  SIGNED_DATA_LIMITS,
  type Attribute,
  type SignerInfo,
  type SignedData,
  type SignOptions,
} from './signed-data.js';
export { buildDegenerate, parseDegenerate } from './degenerate.js';
export {
  buildEnvelopedData,
  parseEnvelopedData,
  parseEnvelopedDataContent,
  decryptEnvelopedData,
  decryptEnvelopedDataAs,
  openEnvelopedData,
  DECRYPT_FAILED_MESSAGE,
  MAX_RECIPIENTS,
  type KeyTransport,
  type KeyTransRecipient,
  type EnvelopedData,
  type Decrypter,
  type EnvelopeOwner,
} from './enveloped-data.js';
export { MAX_AGREE_KEYS, type KeyAgreeRecipient, type PasswordRecipient } from './pwri-kari.js';
export { MAX_CMS_BYTES, unwrapContentInfo, wrapContentInfo } from './content-info.js';
