/**
 * Who the SCEP endpoint is: which certificate signs CertReps, which certificates may receive
 * envelopes, and what GetCACert returns. CA-only mode: the CA key does both (so it must be
 * RSA). RA mode: the RA certificate (issued by the CA) signs and decrypts; envelopes to an RSA
 * CA certificate are still accepted (clients that ignore the RA certificate); an EC CA key
 * only signs certificates and CRLs.
 */
import type { CertificateAuthority } from '../ca/issuer.js';
import { RsaKeyTransport } from '../crypto/key-transport.js';
import type { Certificate } from '../pkix/certificate.js';
import { caCertResponse } from '../scep/ca-certs.js';
import type { ScepRecipient } from '../scep/request.js';
import type { HttpAnswer } from './types.js';
import { keyHandle, type PrivateKeyLike } from '../crypto/private-key.js';

export interface ScepIdentity {
  /** Signs every CertRep; `chain` certificates go into the CertRep after the signer's own. */
  signer: { cert: Certificate; key: PrivateKeyLike; chain: Buffer[] };
  /** Certificates an envelope may be addressed to, with their private keys. */
  recipients: ScepRecipient[];
  /** The GetCACert answer (computed once). */
  caCert: HttpAnswer;
  /** 'ra' when a separate RA certificate signs and decrypts. */
  mode: 'ca' | 'ra';
}

/** What the identity is made from: the CA, its chain and an optional RA key pair. */
export interface IdentitySource {
  ca: CertificateAuthority;
  /** Certificates above the CA certificate (empty for a self-signed root). */
  chain: readonly Certificate[];
  ra?: { cert: Certificate; key: PrivateKeyLike };
}

/**
 * Builds the endpoint identity. GetCACert: a lone root CA → its DER as
 * `application/x-x509-ca-cert`; with an RA or an intermediate → a degenerate certs-only
 * SignedData (`application/x-x509-ca-ra-cert`) with the RA first, then the CA, then its chain.
 */
export function scepIdentity(src: IdentitySource): ScepIdentity {
  const caCert = src.ca.cert;
  const chainDer = src.chain.map((c) => c.der);
  const ra = src.ra;
  const caKeyType = keyHandle(src.ca.key).type;
  if (caKeyType !== 'rsa' && !ra) {
    throw new TypeError(
      `a ${caKeyType} CA key cannot decrypt SCEP requests: ` +
        'use RA mode (an RSA RA key in front of the CA)',
    );
  }
  if (ra && keyHandle(ra.key).type !== 'rsa') throw new TypeError('the RA key must be an RSA key');
  const caRecipients: ScepRecipient[] =
    caKeyType === 'rsa' ? [{ cert: caCert, transport: new RsaKeyTransport(src.ca.key) }] : [];
  const signer = ra
    ? { cert: ra.cert, key: ra.key, chain: [caCert.der, ...chainDer] }
    : { cert: caCert, key: src.ca.key, chain: chainDer };
  const recipients = ra
    ? [{ cert: ra.cert, transport: new RsaKeyTransport(ra.key) }, ...caRecipients]
    : caRecipients;
  const certs = ra ? [ra.cert.der, caCert.der, ...chainDer] : [caCert.der, ...chainDer];
  return {
    mode: ra ? 'ra' : 'ca',
    signer,
    recipients,
    caCert: { httpStatus: 200, ...caCertResponse(certs) },
  };
}
