export * as der from './writer.js';
export * from './reader.js';
export { OID, oidName, type OidName } from './oids.js';
