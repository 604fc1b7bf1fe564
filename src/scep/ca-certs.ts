/**
 * GetCACert and GetNextCACert bodies (RFC 8894 §4.2, §4.7): building them (server) and
 * reading them (client).
 */
import { fromPem, parseCertificate, type Certificate } from '../pkix/certificate.js';
import {
  buildDegenerate,
  buildSignedData,
  CmsError,
  parseDegenerate,
  parseSignedData,
  verifySignerInfo,
  type SignedData,
} from '../cms/index.js';
import { signerIdMatches } from '../cms/signer-id.js';
import type { DigestName } from '../crypto/algorithms.js';
import { FailInfo, ScepError } from './types.js';
import type { PrivateKeyLike } from '../crypto/private-key.js';

export type CaCertContentType = 'application/x-x509-ca-cert' | 'application/x-x509-ca-ra-cert';

/** Largest GetCACert/GetNextCACert body read by the client. */
export const MAX_CA_CERT_BODY = 1024 * 1024;

/**
 * The GetCACert answer: one certificate → its DER as `application/x-x509-ca-cert`; more
 * (RA/intermediate + CA) → a degenerate certs-only SignedData as `application/x-x509-ca-ra-cert`.
 */
export function caCertResponse(certs: Buffer[]): { contentType: CaCertContentType; body: Buffer } {
  if (certs.length === 0) throw new TypeError('caCertResponse needs at least one certificate');
  if (certs.length === 1) return { contentType: 'application/x-x509-ca-cert', body: certs[0]! };
  return { contentType: 'application/x-x509-ca-ra-cert', body: buildDegenerate({ certificates: certs }) };
}

function undecodable(e: unknown, what: string): ScepError {
  if (e instanceof ScepError) return e;
  const detail = e instanceof Error ? `: ${e.message}` : '';
  return ScepError.undecodable(`${what} could not be decoded${detail}`);
}

/**
 * Reads a GetCACert answer whatever its declared type: a DER certificate, PEM (one or more
 * certificates) or a degenerate SignedData (DER/BER, or base64 of one). Throws
 * ScepError('undecodable').
 */
export function parseCaCertResponse(contentType: string, body: Buffer): Certificate[] {
  void contentType; // servers mislabel; sniff the body instead
  if (body.length === 0) throw ScepError.undecodable('the GetCACert answer is empty');
  if (body.length > MAX_CA_CERT_BODY) throw ScepError.undecodable('the GetCACert answer is too large');
  try {
    const text = body.subarray(0, 64).toString('latin1');
    if (text.includes('-----BEGIN')) {
      const s = body.toString('latin1');
      const pems = fromPem(s, 'CERTIFICATE');
      if (pems.length > 0) return pems.map((d) => parseCertificate(d));
      const p7 = [...fromPem(s, 'PKCS7'), ...fromPem(s, 'CMS')];
      if (p7[0]) return parseDegenerate(p7[0]).certificates;
      throw new Error('no certificate in PEM');
    }
    if (body[0] !== 0x30 && /^[A-Za-z0-9+/=\s]+$/.test(body.toString('latin1'))) {
      return parseCaCertResponse(contentType, Buffer.from(body.toString('latin1'), 'base64'));
    }
    try {
      return [parseCertificate(body)];
    } catch {
      const certs = parseDegenerate(body).certificates;
      if (certs.length === 0) throw new Error('the degenerate SignedData holds no certificate');
      return certs;
    }
  } catch (e) {
    throw undecodable(e, 'the GetCACert answer');
  }
}

/**
 * The GetNextCACert answer (`application/x-x509-next-ca-cert`): a SignedData signed by the
 * current CA whose content is a degenerate SignedData holding the new CA (and RA) certificates.
 */
export function nextCaCertResponse(
  newCerts: Buffer[],
  signer: { cert: Certificate; key: PrivateKeyLike },
  digest: DigestName,
): Buffer {
  if (newCerts.length === 0) throw new TypeError('nextCaCertResponse needs at least one certificate');
  return buildSignedData({
    signerCert: signer.cert,
    signerKey: signer.key,
    digest,
    content: buildDegenerate({ certificates: newCerts }),
  });
}

/**
 * Reads and verifies a GetNextCACert answer: it must be signed by one of `currentCaCerts`
 * (compared by public key). Accepts the RFC shape (nested degenerate in eContent) and the
 * jscep shape (new certificates in the outer `certificates`, no eContent). Throws ScepError:
 * `undecodable` for malformed bytes, failure badMessageCheck for an unsigned or untrusted answer.
 */
export function parseNextCaCertResponse(body: Buffer, currentCaCerts: Certificate[]): Certificate[] {
  if (body.length > MAX_CA_CERT_BODY) throw ScepError.undecodable('the GetNextCACert answer is too large');
  let sd: SignedData;
  try {
    sd = parseSignedData(body);
  } catch (e) {
    throw undecodable(e, 'the GetNextCACert answer');
  }
  const si = sd.signerInfos[0];
  if (!si || sd.signerInfos.length !== 1) {
    throw ScepError.failure(
      FailInfo.badMessageCheck,
      'the GetNextCACert answer is not signed (exactly one signer)',
    );
  }
  const signer =
    sd.certificates.find((c) => signerIdMatches(si.sid, c)) ??
    currentCaCerts.find((c) => signerIdMatches(si.sid, c));
  if (!signer || !currentCaCerts.some((c) => c.spki.equals(signer.spki))) {
    throw ScepError.failure(
      FailInfo.badMessageCheck,
      'the GetNextCACert answer is not signed by the current CA',
    );
  }
  try {
    verifySignerInfo(sd, si, signer);
  } catch (e) {
    const msg = e instanceof CmsError ? e.message : 'signature check failed';
    throw ScepError.failure(FailInfo.badMessageCheck, `GetNextCACert: ${msg}`);
  }
  let certs: Certificate[];
  if (sd.eContent && sd.eContent.length > 0) {
    try {
      certs = parseDegenerate(sd.eContent).certificates;
    } catch (e) {
      throw undecodable(e, 'the GetNextCACert content');
    }
  } else {
    certs = sd.certificates.filter((c) => !currentCaCerts.some((cur) => cur.spki.equals(c.spki)));
  }
  if (certs.length === 0) throw ScepError.undecodable('the GetNextCACert answer holds no new certificate');
  return certs;
}
