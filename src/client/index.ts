/** The SCEP client library: `ScepClient`, its result and error types, and the agent. */
export {
  ScepClient,
  generateRsaKey,
  generateEcKey,
  keyTypeOf,
  verifyCrlSignature,
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
} from './client.js';
export {
  ScepClientError,
  ScepFailureError,
  ScepTransportError,
  ScepProtocolError,
  ScepPendingTimeoutError,
  ScepArgumentError,
  type ScepClientErrorCode,
  type ScepFailureCode,
  type ScepTransportCode,
  type ScepProtocolCode,
  type ScepPendingTimeoutCode,
  type ScepArgumentCode,
} from './errors.js';
export { Capabilities, negotiate, type Negotiated } from './negotiate.js';
export {
  classifyCaCertificates,
  parseFingerprint,
  formatFingerprint,
  type CaCertificates,
} from './ca-certs.js';
export type { FetchLike } from './transport.js';
export {
  Agent,
  AgentConfigError,
  type AgentConfigErrorCode,
  loadAgentConfig,
  parseAgentConfig,
  renewalTime,
  type AgentConfig,
  type AgentCertificateConfig,
  type AgentOutcome,
  type AgentEvents,
} from './agent.js';
export { writeFileAtomic, writePairFiles, installGeneration, readPair, keyMatchesCert } from './files.js';
