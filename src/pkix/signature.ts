/**
 * X.509/PKCS#10 signature algorithms: AlgorithmIdentifiers for signing with a KeyObject, and
 * verification of a signature given its AlgorithmIdentifier (RSA PKCS#1 v1.5, RSA-PSS, ECDSA).
 */
import { constants, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import * as r from '../asn1/reader.js';
import * as der from '../asn1/writer.js';
import { OID } from '../asn1/oids.js';
import type { DigestName } from '../crypto/algorithms.js';
import { keyHandle, type PrivateKeyLike } from '../crypto/private-key.js';

const ECDSA = {
  sha1: '1.2.840.10045.4.1',
  sha224: '1.2.840.10045.4.3.1',
  sha256: '1.2.840.10045.4.3.2',
  sha384: '1.2.840.10045.4.3.3',
  sha512: '1.2.840.10045.4.3.4',
} as const satisfies Record<DigestName, string>;

const RSA_PKCS1 = {
  sha1: OID.sha1WithRSAEncryption,
  sha224: OID.sha224WithRSAEncryption,
  sha256: OID.sha256WithRSAEncryption,
  sha384: OID.sha384WithRSAEncryption,
  sha512: OID.sha512WithRSAEncryption,
} as const satisfies Record<DigestName, string>;

const HASH_BY_SIG_OID = new Map<string, { hash: DigestName; kind: 'rsa' | 'ecdsa' }>([
  ...Object.entries(RSA_PKCS1).map(([h, o]) => [o, { hash: h as DigestName, kind: 'rsa' as const }] as const),
  ...Object.entries(ECDSA).map(([h, o]) => [o, { hash: h as DigestName, kind: 'ecdsa' as const }] as const),
]);

const DIGEST_BY_OID = new Map<string, DigestName>([
  [OID.sha1, 'sha1'],
  [OID.sha224, 'sha224'],
  [OID.sha256, 'sha256'],
  [OID.sha384, 'sha384'],
  [OID.sha512, 'sha512'],
]);

/** Something that signs a TBS structure: its AlgorithmIdentifier DER and a sign function. */
export interface Signer {
  /** The complete signature AlgorithmIdentifier DER. */
  readonly algorithm: Buffer;
  sign(data: Buffer): Buffer;
}

/**
 * A signer for a private key, software or on a token (src/crypto/private-key.ts): RSA →
 * <digest>WithRSAEncryption with NULL parameters, EC → ecdsa-with-<digest>, Ed25519 →
 * id-Ed25519. Default digest sha256.
 */
export function createSigner(key: PrivateKeyLike, digest: DigestName = 'sha256'): Signer {
  const h = keyHandle(key);
  const type = h.type;
  if (type === 'rsa') {
    const algorithm = der.encode(der.algorithm(RSA_PKCS1[digest], der.nul()));
    return { algorithm, sign: (data) => h.sign(digest, data) };
  }
  if (type === 'ec') {
    const algorithm = der.encode(der.algorithm(ECDSA[digest]));
    return { algorithm, sign: (data) => h.sign(digest, data) };
  }
  if (type === 'ed25519') {
    const algorithm = der.encode(der.algorithm('1.3.101.112'));
    return { algorithm, sign: (data) => h.sign(null, data) };
  }
  throw new Error(`unsupported signing key type ${type}`);
}

/** The digest a signature algorithm uses, if we know it (PSS: from its parameters). */
export function signatureDigest(algOid: string, params?: Buffer): DigestName | undefined {
  const known = HASH_BY_SIG_OID.get(algOid);
  if (known) return known.hash;
  if (algOid === OID.rsassaPss) {
    try {
      return pssParams(params).hash;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

interface PssParams {
  hash: DigestName;
  mgfHash: DigestName;
  saltLength: number;
}

/** RSASSA-PSS-params (RFC 4055 §3.1); defaults sha1 / MGF1-sha1 / salt 20. */
function pssParams(params: Buffer | undefined): PssParams {
  const out: PssParams = { hash: 'sha1', mgfHash: 'sha1', saltLength: 20 };
  if (!params || params.length === 0 || (params[0] === 0x05 && params.length === 2)) return out;
  const c = new r.Cursor(r.expectTag(r.parse(params), 0x30, 'RSASSA-PSS-params'));
  const h = c.optional(0xa0);
  if (h) out.hash = digestOf(new r.Cursor(h).expect(0x30, 'hashAlgorithm'));
  const m = c.optional(0xa1);
  if (m) {
    const mc = new r.Cursor(new r.Cursor(m).expect(0x30, 'maskGenAlgorithm'));
    if (r.oid(mc.expect(r.TAG.OID, 'mgf')) !== OID.mgf1) throw new Error('unsupported MGF');
    out.mgfHash = digestOf(mc.expect(0x30, 'mgf hash'));
  }
  const s = c.optional(0xa2);
  if (s) out.saltLength = r.int(new r.Cursor(s).expect(r.TAG.INTEGER, 'saltLength'));
  const t = c.optional(0xa3);
  if (t && r.int(new r.Cursor(t).expect(r.TAG.INTEGER, 'trailerField')) !== 1) throw new Error('bad trailer');
  return out;
}

function digestOf(algT: r.Tlv): DigestName {
  const d = DIGEST_BY_OID.get(r.oid(new r.Cursor(algT).expect(r.TAG.OID, 'digest')));
  if (!d) throw new Error('unsupported digest');
  return d;
}

/**
 * Verifies `signature` over `data` with `key` under the signature algorithm `algOid` (with its
 * raw parameters, if any). Never throws: unknown algorithms and malformed input give false.
 */
export function verifySignature(
  algOid: string,
  params: Buffer | undefined,
  data: Buffer,
  key: KeyObject,
  signature: Buffer,
): boolean {
  try {
    const known = HASH_BY_SIG_OID.get(algOid);
    if (known) {
      const kt = key.asymmetricKeyType;
      if (known.kind === 'rsa' && kt !== 'rsa') return false;
      if (known.kind === 'ecdsa' && kt !== 'ec') return false;
      return cryptoVerify(known.hash, data, key, signature);
    }
    if (algOid === OID.rsassaPss) {
      const p = pssParams(params);
      if (p.mgfHash !== p.hash) return false; // node:crypto uses the same hash for MGF1
      return cryptoVerify(
        p.hash,
        data,
        { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: p.saltLength },
        signature,
      );
    }
    if (algOid === '1.3.101.112') return cryptoVerify(null, data, key, signature);
    return false;
  } catch {
    return false;
  }
}
