/** Public API of the `scepter` package. */
export * as asn1 from './asn1/index.js';
export { parseCertificate, type Certificate } from './pkix/certificate.js';
