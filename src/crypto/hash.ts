/**
 * One-shot digests. `crypto.hash` (Node ≥ 20.12) hashes without building a Hash object and
 * costs about a third of `createHash().update().digest()` for the short inputs of an
 * enrollment (keys, CSRs, signed attributes); older Node 20 releases fall back to createHash.
 */
import * as nodeCrypto from 'node:crypto';

const oneShot = (nodeCrypto as { hash?: typeof nodeCrypto.hash }).hash;

/** The digest of `data` with `algorithm` (a node digest name: sha1, sha256, …). */
export function digestOf(algorithm: string, data: Buffer): Buffer {
  return oneShot
    ? oneShot(algorithm, data, 'buffer')
    : nodeCrypto.createHash(algorithm).update(data).digest();
}

/** The digest of `data` with `algorithm`, lower-case hex. */
export function digestHex(algorithm: string, data: Buffer): string {
  return oneShot
    ? oneShot(algorithm, data, 'hex')
    : nodeCrypto.createHash(algorithm).update(data).digest('hex');
}
