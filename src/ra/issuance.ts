/**
 * Idempotent issuance for one SCEP transaction (docs/conformance.md §3 "Resent request"): the first
 * request with a transactionID opens the transaction and gets a certificate; a resend from the
 * same key gets the SAME stored certificate again; the same transactionID from another key is
 * refused. The store guarantees at most one certificate per transactionID across processes
 * (`recordIssued`); in-process, concurrent identical requests share one issuance.
 *
 * A new transaction (the store has no record of its transactionID) is opened by the same
 * write that records its certificate and audit record (`recordIssued` with `open`): one store
 * write and one commit per enrollment. If the transactionID turns up in between (a resend
 * racing its original on another instance), that write changes nothing, the certificate just
 * signed is dropped unsent, and the request takes the path of an existing transaction.
 */
import { CaError, type CertificateAuthority } from '../ca/issuer.js';
import type { Profile } from '../ca/profile.js';
import { randomSerial } from '../ca/serial.js';
import { digestHex } from '../crypto/hash.js';
import { spkiHash } from '../crypto/keys.js';
import { parseCertificate, type Certificate } from '../pkix/certificate.js';
import { subjectAltNamesOf } from '../pkix/extensions.js';
import { commonName, nameText } from '../pkix/name.js';
import {
  AlreadyIssuedError,
  SerialConflictError,
  TransactionExistsError,
  TransactionStateError,
  type JsonObject,
  type NewCertificate,
  type NewTransaction,
  type Store,
  type TransactionRecord,
} from '../store/index.js';
import { FailInfo, messageTypeName } from '../scep/types.js';
import { auditEntry, auditText, DEVICE_ACTOR } from './audit.js';
import { failure, type Decision } from './decision.js';
import { sanText } from './names.js';
import type { EnrollmentRequest } from './policy.js';
import type { ServiceLogger } from './types.js';
import { KeyUnavailableError } from '../crypto/private-key.js';

// Formatters other modules (src/ra/operator.ts, approval.ts) import from here.
export { sanText } from './names.js';

/** failInfoText for a message whose CSR differs from the one stored for its transactionID. */
export const CSR_CHANGED_TEXT =
  'this transactionID belongs to another certificate request; resend the original request or start a new transaction';

/**
 * failInfoText for a message whose transactionID is held by a request sent to another CA or
 * profile: transactionIDs are unique across the server, and each request is answered only where
 * it was made (its policies, its CA).
 */
export const OTHER_PROFILE_TEXT =
  'this transactionID belongs to a request made to another CA or profile of this server; start a new transaction';

/** Whether transaction `tx` was opened under another CA or profile than this service's. */
export function heldElsewhere(tx: TransactionRecord, here: { caName: string; profileName: string }): boolean {
  return tx.ca !== here.caName || tx.profile !== here.profileName;
}

/** How many fresh serials are tried before giving up (a collision of 127-bit serials is ~never). */
const SERIAL_ATTEMPTS = 8;

/** The largest share of a certificate's validity that its notBefore may be backdated by. */
export const BACKDATE_SHARE = 0.1;

/**
 * How far notBefore goes into the past for a certificate valid `validitySeconds` from now:
 * the configured backdating, but at most BACKDATE_SHARE (10%) of the validity, whole seconds.
 *
 * Why the cap: notAfter is counted from now, so backdating lengthens the certificate's
 * nominal lifetime (notAfter − notBefore) into the past. Clients that renew after a share of
 * that lifetime (our agent, certmonger) would find a 30 s certificate backdated 300 s already
 * "93% used" on arrival and renew it at once, in a loop. With the cap, a certificate is at
 * most ~9% into its nominal lifetime when issued; for validities of 50 minutes and more the
 * default 300 s applies unchanged.
 */
export function effectiveBackdateSeconds(backdateSeconds: number, validitySeconds: number): number {
  return Math.min(backdateSeconds, Math.floor(validitySeconds * BACKDATE_SHARE));
}

export interface IssuanceOptions {
  ca: CertificateAuthority;
  /** The CA's name, recorded with every transaction and certificate (serials are unique per CA). */
  caName: string;
  /** The enrollment profile's name, recorded with every transaction and certificate. */
  profileName: string;
  store: Store;
  profile: Profile;
  /** notBefore = now − backdateSeconds, capped to a share of the validity (effectiveBackdateSeconds). */
  backdateSeconds: number;
  /** The issued subject from the requested one (a profile's subject template); default: as requested. */
  subjectOf?: (subjectRaw: Buffer) => Buffer;
  now: () => Date;
  /** Server-side detail of issuance faults (never sent to the client). */
  logger?: ServiceLogger;
}

/** failText recorded when the CA fails unexpectedly (the detail goes to the server log only). */
export const ISSUANCE_FAULT_TEXT = 'the certificate cannot be issued: internal CA error (see the server log)';

/** The store record for a certificate we issued. */
export function certificateRecord(
  cert: Certificate,
  issuerFingerprint: string,
  transactionId: string | null,
): NewCertificate {
  const sans = subjectAltNamesOf(cert).map(sanText);
  return {
    serial: cert.serialHex,
    issuer: issuerFingerprint,
    subject: nameText(cert.subjectRaw),
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
   * transaction opened now (e.g. `{ challenge: 'one-time' }`). `known`: the store's answer to
   * `transactionExists` for this transactionID when the caller asked already.
   */
  issue(er: EnrollmentRequest, meta?: JsonObject, known?: Promise<boolean>): Promise<Decision> {
    // The CSR is part of the key: a different request under this transactionID must not share
    // (and be answered with) another request's issuance.
    const csrHash = digestHex('sha256', er.csr.der);
    const key = `${er.request.transactionId}\0${er.signerKeyHash}\0${csrHash}`;
    const running = this.inflight.get(key);
    if (running) {
      return running.then((d) =>
        d.status === 'SUCCESS' ? Object.assign({}, d, { cipher: er.cipher, replay: true }) : d,
      );
    }
    const p = this.run(er, meta, known).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async run(
    er: EnrollmentRequest,
    meta: JsonObject | undefined,
    known: Promise<boolean> | undefined,
  ): Promise<Decision> {
    const { request: req, csr } = er;
    const subject = nameText(csr.subjectRaw);
    const open: NewTransaction & { state: 'approved' } = {
      transactionId: req.transactionId,
      signerKeyHash: er.signerKeyHash,
      messageType: req.messageType,
      state: 'approved',
      csr: csr.der,
      subject,
      requester: er.ctx.remoteAddress ?? null,
      ...(meta ? { meta } : {}),
      ca: this.o.caName,
      profile: this.o.profileName,
    };
    // A new transaction (the usual case) is opened by the write that records its certificate:
    // one store write per enrollment. Undefined: it appeared meanwhile (a racing resend).
    if (!(await (known ?? this.o.store.transactionExists(req.transactionId)))) {
      const d = await this.issueNew(er, open);
      if (d) return d;
    }
    const begin = await this.o.store.beginTransaction(open);
    if (!begin.created) {
      const ex = begin.existing;
      if (heldElsewhere(ex, this.o)) return failure(FailInfo.badRequest, OTHER_PROFILE_TEXT);
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
      // What is issued is the stored request: another CSR under this transactionID (other
      // subjectAltNames after an approval, say) is refused, not issued.
      if (ex.csr !== null && !ex.csr.equals(csr.der)) {
        this.o.logger?.warn(
          { transactionId: req.transactionId, subject },
          'a request under an existing transactionID carries another CSR than the stored one; refused',
        );
        return failure(FailInfo.badRequest, CSR_CHANGED_TEXT);
      }
      const settled = await this.answerExisting(ex, er);
      if (settled) return settled;
    }
    const d = await this.issueNew(er);
    if (!d) throw new Error(`transaction ${req.transactionId}: issuance without open returned nothing`);
    return d;
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
    const rec = await this.o.store.getCertificate(serial, this.o.caName);
    if (!rec) throw new Error(`certificate ${serial} of an issued transaction is missing from the store`);
    return {
      status: 'SUCCESS',
      certificates: [rec.der],
      serial: rec.serial,
      cipher: er.cipher,
      replay: true,
    };
  }

  /**
   * After a fault that issued nothing, records a new transaction as `approved` (best effort:
   * the fault itself is what the caller reports), so the client's retry finds it.
   */
  private async keepApproved(open: NewTransaction & { state: 'approved' }): Promise<void> {
    try {
      await this.o.store.beginTransaction(open);
    } catch (err) {
      this.o.logger?.warn(
        { err, transactionId: open.transactionId },
        'the request could not be recorded after a failed issuance',
      );
    }
  }

  /**
   * Records why a transaction failed: `fail` on an existing one; with `open`, the transaction
   * is created failed (false: it exists already, the caller takes the existing path).
   */
  private async recordFailure(id: string, text: string, open: NewTransaction | undefined): Promise<boolean> {
    if (!open) {
      await this.o.store.fail(id, 'failed', FailInfo.badRequest, text);
      return true;
    }
    const b = await this.o.store.beginTransaction(
      Object.assign({}, open, { state: 'failed' as const, failInfo: FailInfo.badRequest, failText: text }),
    );
    return b.created;
  }

  /**
   * Signs and records a certificate for an approved transaction — or, with `open`, for a new
   * one that the recording write creates. Undefined only with `open`, when the transaction
   * exists after all (nothing was recorded; the caller goes the existing-transaction way).
   */
  private async issueNew(
    er: EnrollmentRequest,
    open?: NewTransaction & { state: 'approved' },
  ): Promise<Decision | undefined> {
    const { request: req, csr } = er;
    const { ca, store, profile } = this.o;
    const backdateMs = effectiveBackdateSeconds(this.o.backdateSeconds, profile.validitySeconds) * 1000;
    for (let attempt = 0; attempt < SERIAL_ATTEMPTS; attempt++) {
      const now = this.o.now().getTime();
      let der: Buffer;
      let cert: Certificate;
      try {
        der = ca.issue({
          subjectRaw: this.o.subjectOf ? this.o.subjectOf(csr.subjectRaw) : csr.subjectRaw,
          spki: csr.spki,
          subjectAltNames: csr.subjectAltNames,
          requestedExtensions: csr.extensions,
          serial: randomSerial(),
          notBefore: new Date(now - backdateMs),
          notAfter: new Date(now + profile.validitySeconds * 1000),
          profile,
        });
        cert = parseCertificate(der);
      } catch (e) {
        // The CA key is on a token that is unreachable now: nothing was issued; the transaction
        // is (or stays) `approved` and the client's retry issues it (503). A new one is recorded
        // first, so the retry finds it as a resend (a one-time challenge it spent stays its own).
        if (e instanceof KeyUnavailableError) {
          if (open) await this.keepApproved(open);
          throw e;
        }
        // Never leave the transaction `approved`: record why it failed (the operator sees it),
        // the device gets FAILURE. A CaError is about the request; anything else is logged.
        let text: string;
        if (e instanceof CaError) {
          text = `the certificate cannot be issued: ${e.message}`;
        } else {
          text = ISSUANCE_FAULT_TEXT;
          this.o.logger?.error({ err: e, transactionId: req.transactionId }, 'the CA failed to issue');
        }
        if (!(await this.recordFailure(req.transactionId, text, open))) return undefined;
        return failure(FailInfo.badRequest, text);
      }
      try {
        await store.recordIssued({
          transactionId: req.transactionId,
          ...(open ? { open } : {}),
          cert: certificateRecord(cert, ca.cert.fingerprint, req.transactionId),
          audit: auditEntry(DEVICE_ACTOR, 'enroll.issued', req.transactionId, {
            serial: cert.serialHex,
            subject: auditText(nameText(cert.subjectRaw)),
            messageType: messageTypeName(req.messageType),
            source: er.ctx.remoteAddress,
            issuer: ca.cert.fingerprint,
            ca: this.o.caName,
            profile: this.o.profileName,
          }),
        });
        return {
          status: 'SUCCESS',
          certificates: [der],
          issued: cert,
          serial: cert.serialHex,
          cipher: er.cipher,
        };
      } catch (e) {
        if (e instanceof SerialConflictError) continue;
        // Signed but never recorded nor sent: this certificate does not exist.
        if (e instanceof TransactionExistsError) return undefined;
        if (e instanceof AlreadyIssuedError) return this.replay(e.serial, er);
        if (e instanceof TransactionStateError) {
          const ex = await store.getTransaction(req.transactionId);
          const a = ex ? await this.answerExisting(ex, er) : undefined;
          if (a) return a;
        }
        // The store failed (busy past its timeout, I/O): as with an unreachable CA key, the
        // request is kept `approved` if the store takes that, so the client's retry is a resend.
        if (open) await this.keepApproved(open);
        throw e;
      }
    }
    this.o.logger?.error(
      { transactionId: req.transactionId },
      `no unique serial after ${SERIAL_ATTEMPTS} attempts`,
    );
    if (!(await this.recordFailure(req.transactionId, ISSUANCE_FAULT_TEXT, open))) return undefined;
    return failure(FailInfo.badRequest, ISSUANCE_FAULT_TEXT);
  }
}
