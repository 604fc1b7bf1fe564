/** Crypto building blocks: algorithm policy, cached keys, RSA key transport, content ciphers. */
export * from './algorithms.js';
export * from './keys.js';
export * from './key-transport.js';
export * from './private-key.js';
export * from './content-cipher.js';
