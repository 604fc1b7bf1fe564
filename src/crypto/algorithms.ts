/**
 * Algorithm identifiers used by CMS/SCEP: digest and content-encryption OIDs mapped to the
 * names node:crypto understands, with a policy of what is accepted (no MD5, no RC2, no GCM
 * in EnvelopedData; single DES only when a caller explicitly allows it).
 */
import { OID, oidName } from '../asn1/oids.js';

export type DigestName = 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';
/** 'des' is only ever used when a caller explicitly allows it (see `cipherFromOid`). */
export type CipherName = 'aes128' | 'aes192' | 'aes256' | 'des3' | 'des';

/** An algorithm we do not (or will not) handle; maps to SCEP failInfo badAlg. */
export class UnsupportedAlgorithmError extends Error {
  readonly oid: string;
  readonly failInfo = 'badAlg' as const;
  constructor(oid: string, message: string) {
    super(message);
    this.name = 'UnsupportedAlgorithmError';
    this.oid = oid;
  }
}

const DIGEST_BY_OID: ReadonlyMap<string, DigestName> = new Map<string, DigestName>([
  [OID.sha1, 'sha1'],
  [OID.sha224, 'sha224'],
  [OID.sha256, 'sha256'],
  [OID.sha384, 'sha384'],
  [OID.sha512, 'sha512'],
]);

const OID_BY_DIGEST: Readonly<Record<DigestName, string>> = {
  sha1: OID.sha1,
  sha224: OID.sha224,
  sha256: OID.sha256,
  sha384: OID.sha384,
  sha512: OID.sha512,
};

/** Output length in bytes of each digest. */
export const DIGEST_LENGTH: Readonly<Record<DigestName, number>> = {
  sha1: 20,
  sha224: 28,
  sha256: 32,
  sha384: 48,
  sha512: 64,
};

function describe(oid: string): string {
  const n = oidName(oid);
  return n === oid ? oid : `${n} (${oid})`;
}

/** Digest name for a digest AlgorithmIdentifier OID; MD5 and unknown OIDs are refused. */
export function digestFromOid(oid: string): DigestName {
  const d = DIGEST_BY_OID.get(oid);
  if (d) return d;
  if (oid === OID.md5) throw new UnsupportedAlgorithmError(oid, `MD5 (${oid}) is not accepted as a digest`);
  throw new UnsupportedAlgorithmError(oid, `unsupported digest algorithm ${describe(oid)}`);
}

/** The digest AlgorithmIdentifier OID for a digest name. */
export function digestOid(d: DigestName): string {
  return OID_BY_DIGEST[d];
}

export interface CipherInfo {
  name: CipherName;
  oid: string;
  keyLength: number;
  ivLength: number;
  blockSize: number;
}

const CIPHERS: Readonly<Record<CipherName, CipherInfo>> = {
  aes128: { name: 'aes128', oid: OID.aes128Cbc, keyLength: 16, ivLength: 16, blockSize: 16 },
  aes192: { name: 'aes192', oid: OID.aes192Cbc, keyLength: 24, ivLength: 16, blockSize: 16 },
  aes256: { name: 'aes256', oid: OID.aes256Cbc, keyLength: 32, ivLength: 16, blockSize: 16 },
  des3: { name: 'des3', oid: OID.desEde3Cbc, keyLength: 24, ivLength: 8, blockSize: 8 },
  des: { name: 'des', oid: OID.desCbc, keyLength: 8, ivLength: 8, blockSize: 8 },
};

const CIPHER_BY_OID: ReadonlyMap<string, CipherInfo> = new Map(
  Object.values(CIPHERS).map((c) => [c.oid, c] as const),
);

/**
 * Content-encryption algorithm for an OID. Single DES is refused unless `allowSingleDes`;
 * RC2, AES-GCM and anything unknown are always refused.
 */
export function cipherFromOid(oid: string, opts?: { allowSingleDes?: boolean }): CipherInfo {
  const c = CIPHER_BY_OID.get(oid);
  if (c && c.name === 'des' && !opts?.allowSingleDes) {
    throw new UnsupportedAlgorithmError(
      oid,
      `single DES (${oid}) is refused by default: start the server with --allow-single-des to accept ` +
        'DES-only clients such as micromdm scepclient 2.1 (replies use 3DES), or use a client ' +
        'that encrypts with AES or 3DES',
    );
  }
  if (c) return c;
  if (oid === OID.rc2Cbc) throw new UnsupportedAlgorithmError(oid, `RC2 (${oid}) is not accepted`);
  if (oid === OID.aes128Gcm || oid === OID.aes256Gcm || oid === '2.16.840.1.101.3.4.1.26') {
    throw new UnsupportedAlgorithmError(oid, `AES-GCM (${oid}) is not supported in EnvelopedData`);
  }
  throw new UnsupportedAlgorithmError(oid, `unsupported content-encryption algorithm ${describe(oid)}`);
}

/** Parameters of a cipher by name. */
export function cipherInfo(name: CipherName): CipherInfo {
  return CIPHERS[name];
}
