/**
 * CMS errors. `code` is ready to become a SCEP failInfo (except 'malformed', which means the
 * input could not be decoded at all and maps to an HTTP 400 or to badMessageCheck, at the
 * caller's choice).
 */
import { Asn1Error } from '../asn1/reader.js';
import { CertificateError } from '../pkix/certificate.js';
import { UnsupportedAlgorithmError } from '../crypto/algorithms.js';

export type CmsErrorCode = 'malformed' | 'badAlg' | 'badMessageCheck' | 'badRequest';

export class CmsError extends Error {
  readonly code: CmsErrorCode;
  constructor(code: CmsErrorCode, message: string) {
    super(message);
    this.name = 'CmsError';
    this.code = code;
  }
}

/**
 * Runs a decoder and turns every decoding exception into a CmsError('malformed'), and
 * UnsupportedAlgorithmError into CmsError('badAlg'). CmsErrors pass through.
 */
export function decoding<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw asCmsError(e, what);
  }
}

/** Maps any thrown value to a CmsError (see `decoding`). */
export function asCmsError(e: unknown, what: string): CmsError {
  if (e instanceof CmsError) return e;
  if (e instanceof UnsupportedAlgorithmError) return new CmsError('badAlg', e.message);
  if (e instanceof Asn1Error || e instanceof CertificateError) {
    return new CmsError('malformed', `malformed ${what}: ${e.message}`);
  }
  if (e instanceof RangeError) {
    // e.g. a number or buffer operation on absurd input; never leak a stack to callers.
    return new CmsError('malformed', `malformed ${what}`);
  }
  return new CmsError('malformed', `malformed ${what}: ${e instanceof Error ? e.message : String(e)}`);
}
