/**
 * Enrollment policies: small functions that each look at one aspect of a decrypted request and
 * either pass it (return undefined) or reject it with a failInfo and a client-safe text.
 * A message handler runs its own chain (`runPolicies`), so a renewal path can reuse these and
 * add its own (signer issued by us, identity match) without the service knowing them.
 *
 * failInfo mapping (docs/design-notes.md): CSR signature → badMessageCheck; challenge, key mismatch,
 * policy → badRequest; unsupported key algorithm → badAlg.
 */
import type { Csr } from '../pkix/csr.js';
import { ecCurveOid, verifyCsrSignature } from '../pkix/csr.js';
import { OID } from '../asn1/oids.js';
import { EC_CURVE_POLICY_TEXT } from '../crypto/key-agreement.js';
import type { CipherName } from '../crypto/algorithms.js';
import type { PkiRequest } from '../scep/request.js';
import { FailInfo } from '../scep/types.js';
import type { Decision, LimitName } from './decision.js';
import type { RequestContext } from './types.js';

/** A decrypted request as the policies see it. */
export interface EnrollmentRequest {
  readonly request: PkiRequest;
  readonly csr: Csr;
  /** The content cipher of the request's envelope. */
  readonly cipher: CipherName;
  /** SHA-256 hex of the request signer's SubjectPublicKeyInfo. */
  readonly signerKeyHash: string;
  readonly ctx: RequestContext;
}

/** Why a request is refused; `text` goes into failInfoText, so it never carries a secret. */
export interface Rejection {
  failInfo: FailInfo;
  text: string;
  /** The challenge was checked and failed (the throttle counts it). */
  challengeFailure?: boolean;
  /** A limit refused the request (counted in the metrics). */
  limit?: LimitName;
}

/** The FAILURE decision for a rejection. */
export function rejectionDecision(r: Rejection): Decision {
  return {
    status: 'FAILURE',
    failInfo: r.failInfo,
    text: r.text,
    ...(r.challengeFailure ? { challengeFailure: true } : {}),
    ...(r.limit ? { limit: r.limit } : {}),
  };
}

export type Policy = (req: EnrollmentRequest) => Rejection | undefined | Promise<Rejection | undefined>;

/** A rejection value. */
export function reject(failInfo: FailInfo, text: string): Rejection {
  return { failInfo, text };
}

/** Runs policies in order; the first rejection wins. */
export async function runPolicies(
  policies: readonly Policy[],
  req: EnrollmentRequest,
): Promise<Rejection | undefined> {
  for (const p of policies) {
    const r = await p(req);
    if (r) return r;
  }
  return undefined;
}

/** The CSR's self-signature (proof of possession) must verify. */
export const proofOfPossession: Policy = (req) =>
  verifyCsrSignature(req.csr)
    ? undefined
    : reject(FailInfo.badMessageCheck, 'the certificate request signature does not verify');

/**
 * Initial enrollment (PKCSReq): the message must be signed with the key being certified, so
 * whoever sent it holds that key and the reply is encrypted to it.
 */
export const signerKeyIsCsrKey: Policy = (req) =>
  req.request.signerCert.spki.equals(req.csr.spki)
    ? undefined
    : reject(FailInfo.badRequest, 'the message signer key differs from the certificate request key');

export interface KeyPolicyOptions {
  /** Smallest RSA modulus accepted (default 2048). */
  minRsaBits?: number;
  /** Largest RSA modulus accepted (default 8192; bigger keys only cost CPU). */
  maxRsaBits?: number;
}

/**
 * RSA keys within [minRsaBits, maxRsaBits] and EC keys on P-256 or P-384; other curves and
 * key types → badAlg with a clear text.
 */
export function keyPolicy(o: KeyPolicyOptions = {}): Policy {
  const min = o.minRsaBits ?? 2048;
  const max = o.maxRsaBits ?? 8192;
  return (req) => {
    const { keyType, keyBits } = req.csr;
    if (keyType === 'ec') {
      const curve = ecCurveOid(req.csr.spki);
      return curve === OID.prime256v1 || curve === OID.secp384r1
        ? undefined
        : reject(FailInfo.badAlg, `EC key of ${keyBits || 'unknown'} bits refused: ${EC_CURVE_POLICY_TEXT}`);
    }
    if (keyType !== 'rsa')
      return reject(
        FailInfo.badAlg,
        `only RSA keys (at least ${min} bits) and EC keys on P-256 or P-384 are supported`,
      );
    if (keyBits < min)
      return reject(FailInfo.badRequest, `RSA key of ${keyBits} bits is too small (minimum ${min})`);
    if (keyBits > max)
      return reject(FailInfo.badRequest, `RSA key of ${keyBits} bits is too large (maximum ${max})`);
    return undefined;
  };
}

export interface CsrPolicyOptions {
  /** Most subjectAltNames accepted in one request (default 100). */
  maxSubjectAltNames?: number;
}

/** The CSR names someone: a non-empty subject or at least one subjectAltName, within bounds. */
export function csrPolicy(o: CsrPolicyOptions = {}): Policy {
  const maxSans = o.maxSubjectAltNames ?? 100;
  return (req) => {
    const emptySubject = req.csr.subjectRaw.length === 2;
    if (emptySubject && req.csr.subjectAltNames.length === 0) {
      return reject(
        FailInfo.badRequest,
        'the certificate request has neither a subject nor a subjectAltName',
      );
    }
    if (req.csr.subjectAltNames.length > maxSans) {
      return reject(FailInfo.badRequest, `more than ${maxSans} subjectAltNames requested`);
    }
    return undefined;
  };
}
