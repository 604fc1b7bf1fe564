/**
 * Idempotent issuance for one SCEP transaction (docs/conformance.md §3 "Resent request"): the first
 * request with a transactionID opens the transaction and gets a certificate; a resend from the
 * same key gets the SAME stored certificate again; the same transactionID from another key is
 * refused. The store guarantees at most one certificate per transactionID across processes
 * (`recordIssued`); in-process, concurrent identical requests share one issuance.
 */
import { CaError, type CertificateAuthority } from '../ca/issuer.js';
import type { Profile } from '../ca/profile.js';
import { randomSerial } from '../ca/serial.js';
import { spkiHash } from '../crypto/keys.js';
import { parseCertificate, type Certificate } from '../pkix/certificate.js';
import { parseSubjectAltName, type GeneralName } from '../pkix/extensions.js';
import { OID } from '../asn1/oids.js';
import { commonName, nameToString } from '../pkix/name.js';
import {
  AlreadyIssuedError,
  SerialConflictError,
  TransactionStateError,
  type JsonObject,
  type NewCertificate,
  type Store,
  type TransactionRecord,
} from '../store/index.js';
import { FailInfo } from '../scep/types.js';
import { effectiveBackdateSeconds } from './config.js';
import { failure, type Decision } from './decision.js';
import type { EnrollmentRequest } from './policy.js';

/** How many fresh serials are tried before giving up (a collision of 127-bit serials is ~never). */
const SERIAL_ATTEMPTS = 8;

export interface IssuanceOptions {
  ca: CertificateAuthority;
  store: Store;
  profile: Profile;
  /** notBefore = now − backdateSeconds, capped to a share of the validity (effectiveBackdateSeconds). */
  backdateSeconds: number;
  now: () => Date;
}

/** RFC 4514 text of a Name, or a hex fallback when it cannot be rendered. */
export function subjectText(raw: Buffer): string {
  try {
    return nameToString(raw);
  } catch {
    return `#${raw.toString('hex')}`;
  }
}

/** A GeneralName in the store's `type:value` form. */
export function sanText(n: GeneralName): string {
  switch (n.type) {
    case 'dns':
    case 'email':
    case 'ip':
    case 'uri':
      return `${n.type}:${n.value}`;
    case 'dirName':
      return `dn:${subjectText(n.raw)}`;
    default:
      return `other:${n.raw.toString('hex')}`;
  }
}

/** The store record for a certificate we issued. */
export function certificateRecord(
  cert: Certificate,
  issuerFingerprint: string,
  transactionId: string | null,
): NewCertificate {
  const sanExt = cert.extension(OID.subjectAltName);
  let sans: string[] = [];
  if (sanExt) {
    try {
      sans = parseSubjectAltName(sanExt.value).map(sanText);
    } catch {
      sans = [];
    }
  }
  return {
    serial: cert.serialHex,
    issuer: issuerFingerprint,
    subject: subjectText(cert.subjectRaw),
    commonName: commonName(cert.subjectRaw) ?? null,
    sans,
    der: cert.der,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    keyHash: spkiHash(cert.spki),
    transactionId,
  };
}

export class TransactionIssuer {
  private readonly inflight = new Map<string, Promise<Decision>>();

  constructor(private readonly o: IssuanceOptions) {}

  /**
   * Answers an authorized PKCSReq: opens (or finds) its transaction and issues at most once.
   * Throws only for internal faults (store unavailable, ...). `meta` is recorded with a
   * transaction opened now (e.g. `{ challenge: 'one-time' }`).
   */
  issue(er: EnrollmentRequest, meta?: JsonObject): Promise<Decision> {
    const key = `${er.request.transactionId}\0${er.signerKeyHash}`;
    const running = this.inflight.get(key);
    if (running) {
      return running.then((d) => (d.status === 'SUCCESS' ? { ...d, cipher: er.cipher, replay: true } : d));
    }
    const p = this.run(er, meta).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async run(er: EnrollmentRequest, meta: JsonObject | undefined): Promise<Decision> {
    const { request: req, csr } = er;
    const subject = subjectText(csr.subjectRaw);
    const begin = await this.o.store.beginTransaction({
      transactionId: req.transactionId,
      signerKeyHash: er.signerKeyHash,
      messageType: req.messageType,
      state: 'approved',
      csr: csr.der,
      subject,
      requester: er.ctx.remoteAddress ?? null,
      ...(meta ? { meta } : {}),
    });
    if (!begin.created) {
      const ex = begin.existing;
      if (ex.signerKeyHash !== er.signerKeyHash) {
        return failure(
          FailInfo.badRequest,
          'this transactionID is already in use by a request from another key',
        );
      }
      if (ex.subject !== null && ex.subject !== subject) {
        return failure(
          FailInfo.badRequest,
          'this transactionID is already in use by a request for another subject',
        );
      }
      const settled = await this.answerExisting(ex, er);
      if (settled) return settled;
    }
    return this.issueNew(er);
  }

  /** The answer an existing transaction already determines, or undefined when it still needs a certificate. */
  private async answerExisting(ex: TransactionRecord, er: EnrollmentRequest): Promise<Decision | undefined> {
    switch (ex.state) {
      case 'issued':
        if (ex.certSerial === null)
          throw new Error(`transaction ${ex.transactionId} is issued without a serial`);
        return this.replay(ex.certSerial, er);
      case 'approved':
        return undefined;
      case 'pending':
        return { status: 'PENDING' };
      default:
        return failure(ex.failInfo ?? FailInfo.badRequest, ex.failText ?? `the transaction is ${ex.state}`);
    }
  }

  private async replay(serial: string, er: EnrollmentRequest): Promise<Decision> {
    const rec = await this.o.store.getCertificate(serial);
    if (!rec) throw new Error(`certificate ${serial} of an issued transaction is missing from the store`);
    return {
      status: 'SUCCESS',
      certificates: [rec.der],
      serial: rec.serial,
      cipher: er.cipher,
      replay: true,
    };
  }

  private async issueNew(er: EnrollmentRequest): Promise<Decision> {
    const { request: req, csr } = er;
    const { ca, store, profile } = this.o;
    const backdateMs = effectiveBackdateSeconds(this.o.backdateSeconds, profile.validitySeconds) * 1000;
    for (let attempt = 0; attempt < SERIAL_ATTEMPTS; attempt++) {
      const now = this.o.now().getTime();
      let der: Buffer;
      try {
        der = ca.issue({
          subjectRaw: csr.subjectRaw,
          spki: csr.spki,
          subjectAltNames: csr.subjectAltNames,
          serial: randomSerial(),
          notBefore: new Date(now - backdateMs),
          notAfter: new Date(now + profile.validitySeconds * 1000),
          profile,
        });
      } catch (e) {
        if (!(e instanceof CaError)) throw e;
        const text = `the certificate cannot be issued: ${e.message}`;
        await store.fail(req.transactionId, 'failed', FailInfo.badRequest, text);
        return failure(FailInfo.badRequest, text);
      }
      const cert = parseCertificate(der);
      try {
        await store.recordIssued({
          transactionId: req.transactionId,
          cert: certificateRecord(cert, ca.cert.fingerprint, req.transactionId),
        });
        return { status: 'SUCCESS', certificates: [der], serial: cert.serialHex, cipher: er.cipher };
      } catch (e) {
        if (e instanceof SerialConflictError) continue;
        if (e instanceof AlreadyIssuedError) return this.replay(e.serial, er);
        if (e instanceof TransactionStateError) {
          const ex = await store.getTransaction(req.transactionId);
          const a = ex ? await this.answerExisting(ex, er) : undefined;
          if (a) return a;
        }
        throw e;
      }
    }
    throw new Error(`no unique serial after ${SERIAL_ATTEMPTS} attempts`);
  }
}
