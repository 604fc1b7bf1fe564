/**
 * Public API of the `scepter` package: everything exported here is covered by semantic
 * versioning, and nothing else is (docs/client.md "Public API"). The surface is recorded in
 * etc/scepter.api.md; `npm run lint` fails when it changes without that report being updated
 * (`npm run api:update`). The DER reader/writer, CMS and SCEP codecs are internals.
 */

// The SCEP client library.
export {
  ScepClient,
  generateRsaKey,
  generateEcKey,
  keyTypeOf,
  verifyCrlSignature,
  Capabilities,
  negotiate,
  classifyCaCertificates,
  parseFingerprint,
  formatFingerprint,
  type ScepClientOptions,
  type EnrollOptions,
  type RenewOptions,
  type EnrollResult,
  type IssuedResult,
  type PendingResult,
  type ReplyInfo,
  type WaitOptions,
  type KeySize,
  type KeyType,
  type Negotiated,
  type CaCertificates,
  type FetchLike,
} from './client/index.js';

// The renewal agent (`scepter agent`).
export {
  Agent,
  loadAgentConfig,
  parseAgentConfig,
  renewalTime,
  type AgentConfig,
  type AgentCertificateConfig,
  type AgentOutcome,
  type AgentEvents,
} from './client/index.js';

// Errors: branch on the class and its `code`, never on the message.
export {
  ScepClientError,
  ScepFailureError,
  ScepTransportError,
  ScepProtocolError,
  ScepPendingTimeoutError,
  ScepArgumentError,
  AgentConfigError,
  type ScepClientErrorCode,
  type ScepFailureCode,
  type ScepTransportCode,
  type ScepProtocolCode,
  type ScepPendingTimeoutCode,
  type ScepArgumentCode,
  type AgentConfigErrorCode,
} from './client/index.js';

// Types that appear in the signatures above.
export { parseCertificate, type Certificate, type Extension } from './pkix/certificate.js';
export type { GeneralName } from './pkix/extensions.js';
export type { CipherName, DigestName } from './crypto/algorithms.js';
export type { KeyTransport } from './cms/enveloped-data.js';
export { FailInfo } from './scep/types.js';
export { CAPABILITIES, type Capability } from './scep/capabilities.js';

// Running a SCEP server in-process (a plain-data facade; `startServer` and the store are internal).
export { startScepServer, type ScepServerOptions, type ScepServer } from './server/embedded.js';
