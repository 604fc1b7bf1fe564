/**
 * What the CA copies from a request must be well formed before it is signed (docs/security.md
 * "What the CA refuses to sign"): the CSR's size, its subject (syntax, bounds, never the name
 * of one of our CAs or of the RA), its subjectAltNames (well-formed GeneralNames, count) and
 * its RSA public key (exponent and modulus). A Policy in the style of src/ra/policy.ts; the
 * syntax lives in src/pkix/name-checks.ts.
 *
 * failInfo: badRequest for every refusal here, including a degenerate RSA key (like an RSA key
 * that is too small): the algorithm is supported, this key is not acceptable.
 */
import { OID } from '../asn1/oids.js';
import { namesEqual } from '../pkix/name.js';
import {
  NAME_CHECK_DEFAULTS,
  rsaKeyProblem,
  subjectAltNameProblem,
  subjectProblem,
} from '../pkix/name-checks.js';
import { FailInfo } from '../scep/types.js';
import { reject, type EnrollmentRequest, type Policy, type Rejection } from './policy.js';

export interface CsrCheckOptions {
  /** Accept wildcard dNSNames (`*.example.com`); `scepter serve --allow-wildcard-san`. Default false. */
  allowWildcards?: boolean;
  /** otherName type OIDs accepted in subjectAltName (default: only the Microsoft UPN). */
  allowedOtherNames?: readonly string[];
  /** Most subjectAltNames in one request (default 20). */
  maxSans?: number;
  /** Longest single subjectAltName value, bytes (default 512; a dNSName is at most 253 anyway). */
  maxSanLength?: number;
  /** Largest CSR, bytes (default 16384). */
  maxCsrBytes?: number;
  /** Most attributes in the subject (default 16). */
  maxSubjectAttributes?: number;
  /** Largest subject DER, bytes (default 1024). */
  maxSubjectBytes?: number;
}

/** Defaults of `csrChecks` (docs/security.md). */
export const CSR_CHECK_DEFAULTS = {
  allowWildcards: false,
  allowedOtherNames: NAME_CHECK_DEFAULTS.allowedOtherNames,
  maxSans: 20,
  maxSanLength: NAME_CHECK_DEFAULTS.maxNameLength,
  maxCsrBytes: 16 * 1024,
  maxSubjectAttributes: NAME_CHECK_DEFAULTS.maxAttributes,
  maxSubjectBytes: NAME_CHECK_DEFAULTS.maxSubjectBytes,
} as const;

/** Subject Names the CA never certifies (its own, the RA's, retired and staged CAs). */
export type ReservedSubjects = () => Iterable<Buffer>;

/** The checks as a pure function: the first problem, or undefined. */
export function csrProblem(
  req: Pick<EnrollmentRequest, 'csr'>,
  o: CsrCheckOptions = {},
  reserved?: ReservedSubjects,
): string | undefined {
  const { csr } = req;
  const maxCsr = o.maxCsrBytes ?? CSR_CHECK_DEFAULTS.maxCsrBytes;
  if (csr.der.length > maxCsr) return `the certificate request is larger than ${maxCsr} bytes`;
  const key = rsaKeyProblem(csr.spki);
  if (key) return key;
  const subj = subjectProblem(csr.subjectRaw, {
    maxAttributes: o.maxSubjectAttributes ?? CSR_CHECK_DEFAULTS.maxSubjectAttributes,
    maxBytes: o.maxSubjectBytes ?? CSR_CHECK_DEFAULTS.maxSubjectBytes,
  });
  if (subj) return subj;
  if (csr.subjectRaw.length > 2 && reserved) {
    for (const name of reserved()) {
      if (namesEqual(csr.subjectRaw, name))
        return 'subject is the name of this CA or its RA, which is never issued to a client';
    }
  }
  const sans = csr.extensions.filter((e) => e.oid === OID.subjectAltName);
  if (sans.length > 1) return 'the certificate request has more than one subjectAltName extension';
  if (sans.length === 1) {
    const p = subjectAltNameProblem(sans[0]!.value, {
      allowWildcards: o.allowWildcards ?? CSR_CHECK_DEFAULTS.allowWildcards,
      allowedOtherNames: o.allowedOtherNames ?? CSR_CHECK_DEFAULTS.allowedOtherNames,
      maxNameLength: o.maxSanLength ?? CSR_CHECK_DEFAULTS.maxSanLength,
      maxSans: o.maxSans ?? CSR_CHECK_DEFAULTS.maxSans,
    });
    if (p) return p;
  }
  return undefined;
}

/**
 * The Policy: refuses with badRequest and a text naming the field (values escaped).
 * `reserved` lists the subjects that must never be issued (at least the issuing CA's and the
 * RA's); it is called per request, so a rollover's new names are picked up.
 */
export function csrChecks(o: CsrCheckOptions = {}, reserved?: ReservedSubjects): Policy {
  return (req): Rejection | undefined => {
    const p = csrProblem(req, o, reserved);
    return p ? reject(FailInfo.badRequest, p) : undefined;
  };
}

/**
 * ReservedSubjects from certificates (absent ones skipped) and, optionally, a source read per
 * request (e.g. the staged next CA and RA of a rollover).
 */
export function subjectsOf(
  certs: ReadonlyArray<{ subjectRaw: Buffer } | undefined>,
  more?: () => ReadonlyArray<{ subjectRaw: Buffer }> | undefined,
): ReservedSubjects {
  const fixed = certs.flatMap((c) => (c ? [c.subjectRaw] : []));
  return () => (more ? [...fixed, ...(more() ?? []).map((c) => c.subjectRaw)] : fixed);
}
