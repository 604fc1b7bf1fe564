/** Public API of the `scepter` package. */
export * as asn1 from './asn1/index.js';
export { parseCertificate, type Certificate } from './pkix/certificate.js';
export {
  ScepClient,
  ScepClientError,
  ScepFailureError,
  ScepTransportError,
  ScepProtocolError,
  ScepPendingTimeoutError,
  Agent,
  loadAgentConfig,
  generateRsaKey,
  type ScepClientOptions,
  type EnrollOptions,
  type RenewOptions,
  type EnrollResult,
  type IssuedResult,
  type PendingResult,
  type CaCertificates,
  type AgentConfig,
} from './client/index.js';
