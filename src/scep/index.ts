/** SCEP (RFC 8894) message codec: pure, no I/O. */
export * from './types.js';
export * from './attributes.js';
export * from './request.js';
export * from './message-data.js';
export * from './cert-rep.js';
export * from './client.js';
export * from './capabilities.js';
export * from './get-message.js';
export * from './ca-certs.js';
