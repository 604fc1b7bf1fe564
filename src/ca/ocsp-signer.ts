/**
 * Who signs OCSP responses for a CA (RFC 6960 §2.6, §4.2.2.2): the CA key itself (`ca`, the
 * default) or a delegated responder certificate the CA issues to itself (`delegated`).
 *
 * A delegated responder has a P-256 key generated in memory when first needed (never written
 * to disk), and a short-lived certificate from the CA: keyUsage digitalSignature, extKeyUsage
 * id-kp-OCSPSigning, id-pkix-ocsp-nocheck (clients do not check its own revocation, so it must
 * be short-lived: RFC 6960 §4.2.2.2.1). It is renewed at half of its validity, and always long
 * enough to outlive the responses it signs. Each certificate is recorded in the store like any
 * other the CA issued. Every process (and every instance) has its own responder key.
 */
import { generateKeyPair as generateKeyPairCb, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import * as der from '../asn1/writer.js';
import { OID } from '../asn1/oids.js';
import { spkiHash, spkiOf } from '../crypto/keys.js';
import { parseCertificate, type Certificate } from '../pkix/certificate.js';
import { buildCertificate, wholeSeconds } from '../pkix/certificate-builder.js';
import {
  buildAuthorityKeyIdentifier,
  buildBasicConstraints,
  buildExtKeyUsage,
  buildKeyUsage,
  buildSubjectKeyIdentifier,
  extension,
  keyIdentifier,
} from '../pkix/extensions.js';
import { commonName, nameText } from '../pkix/name.js';
import type { OcspResponderId } from '../pkix/ocsp.js';
import { createSigner } from '../pkix/signature.js';
import type { Store } from '../store/index.js';
import type { CertificateAuthority } from './issuer.js';
import { randomSerial } from './serial.js';

const generateKeyPair = promisify(generateKeyPairCb);

/** `ca`: the CA key signs every response; `delegated`: a responder certificate's key does. */
export type OcspSignerMode = 'ca' | 'delegated';

/** Default validity of a delegated responder certificate: 2 days (renewed after 1). */
export const DEFAULT_OCSP_SIGNER_VALIDITY_SECONDS = 2 * 86_400;
/** Backdating of a responder certificate's notBefore, for clients with slow clocks. */
const BACKDATE_SECONDS = 300;

/** A responder identity and until when it may sign. */
export interface OcspResponderIdentity extends OcspResponderId {
  /** Changes whenever a new identity replaces the previous one (cached responses are dropped). */
  readonly generation: number;
  /** The delegated responder certificate (absent when the CA signs). */
  readonly cert?: Certificate;
}

export interface OcspSignersOptions {
  mode: OcspSignerMode;
  store: Store;
  /** Validity of a delegated responder certificate, seconds. */
  delegatedValiditySeconds: number;
  /** The longest nextUpdate of a response: a delegated certificate outlives it (and is renewed before). */
  responseValiditySeconds: number;
  now: () => Date;
}

/** The responder identity of each CA, created on first use and renewed in time. */
export class OcspSigners {
  private readonly identities = new Map<string, Promise<OcspResponderIdentity>>();
  private generation = 0;

  constructor(private readonly o: OcspSignersOptions) {}

  /** The identity that signs responses about certificates of `ca`. */
  async forCa(ca: CertificateAuthority): Promise<OcspResponderIdentity> {
    const fp = ca.cert.fingerprint;
    const p = this.identities.get(fp);
    if (p) {
      const id = await p.catch(() => undefined);
      if (id && !this.needsRenewal(id, ca)) return id;
      // Stale or failed: renew once; callers that saw the same stale identity share the run.
      const again = this.identities.get(fp);
      if (again && again !== p) return again;
    }
    const next = this.create(ca);
    this.identities.set(fp, next);
    return next;
  }

  private needsRenewal(id: OcspResponderIdentity, ca: CertificateAuthority): boolean {
    // The CA signs for itself; a certificate that already ends with the CA cannot be bettered.
    if (!id.cert || id.cert.notAfter.getTime() >= ca.cert.notAfter.getTime()) return false;
    const now = this.o.now().getTime();
    const { notBefore, notAfter } = id.cert;
    const half = notBefore.getTime() + (notAfter.getTime() - notBefore.getTime()) / 2;
    return now >= half || notAfter.getTime() - now < 2 * this.o.responseValiditySeconds * 1000;
  }

  private async create(ca: CertificateAuthority): Promise<OcspResponderIdentity> {
    const generation = ++this.generation;
    if (this.o.mode === 'ca') {
      return { signer: ca.signer('sha256'), keyHash: keyIdentifier(ca.cert.spki), certs: [], generation };
    }
    const { privateKey } = await generateKeyPair('ec', { namedCurve: 'P-256' });
    const cert = this.issueResponderCert(ca, privateKey);
    await this.o.store.insertCertificate({
      serial: cert.serialHex,
      issuer: ca.cert.fingerprint,
      subject: nameText(cert.subjectRaw),
      commonName: commonName(cert.subjectRaw) ?? null,
      sans: [],
      der: cert.der,
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      keyHash: spkiHash(cert.spki),
      transactionId: null,
    });
    return {
      signer: createSigner(privateKey, 'sha256'),
      keyHash: keyIdentifier(cert.spki),
      certs: [cert.der],
      generation,
      cert,
    };
  }

  private issueResponderCert(ca: CertificateAuthority, key: KeyObject): Certificate {
    const spki = spkiOf(key);
    const now = wholeSeconds(this.o.now());
    const notBefore = new Date(now.getTime() - BACKDATE_SECONDS * 1000);
    const wanted = new Date(now.getTime() + this.o.delegatedValiditySeconds * 1000);
    const notAfter = wanted.getTime() > ca.cert.notAfter.getTime() ? ca.cert.notAfter : wanted;
    const subject = der.encode(
      der.seq(
        der.set(
          der.seq(der.oid(OID.commonName), der.utf8(`OCSP responder ${ca.cert.fingerprint.slice(0, 16)}`)),
        ),
      ),
    );
    const certDer = buildCertificate(
      {
        serial: randomSerial(),
        issuerRaw: ca.cert.subjectRaw,
        subjectRaw: subject,
        spki,
        notBefore,
        notAfter,
        extensions: [
          buildBasicConstraints(false),
          buildKeyUsage(['digitalSignature']),
          buildExtKeyUsage(['ocspSigning']),
          buildSubjectKeyIdentifier(keyIdentifier(spki)),
          buildAuthorityKeyIdentifier(ca.keyId),
          extension(OID.ocspNoCheck, false, der.nul()),
        ],
      },
      ca.signer('sha256'),
    );
    return parseCertificate(certDer);
  }
}
