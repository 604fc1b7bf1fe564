/**
 * One simulated issuance against a store: by default `beginTransaction` (approved) then
 * `recordIssued` with a 900-byte certificate and, optionally, its `enroll.issued` audit record
 * (two writes, as the enrollment path made it before it opened the transaction in the
 * recording write); with `oneWrite`, as it makes it now. Shared by the store benchmarks
 * (bench/audit.ts, bench/store-ab.ts) and the floor server (bench/lib/floor-server.ts).
 */
import { randomBytes } from 'node:crypto';
import { publicRandomBytes } from '../../src/crypto/random-pool.js';
import type { Store } from '../../src/store/index.js';

export interface SimulatedIssuance {
  /** Its transactionID (also in the subject unless `subject` is given). */
  id: string;
  /** Append the audit record in the same transaction. */
  audit: boolean;
  /** Subject and common name (default `CN=dev-<id>,O=Example` / `dev-<id>`). */
  subject?: { dn: string; cn: string };
  /**
   * As the enrollment path now does for a new auto-approved request: `transactionExists`, then
   * ONE write, `recordIssued` with `open` (src/ra/issuance.ts), with the serial and key hash
   * from the public random pool and fixed certificate and CSR bytes (the store does not read
   * them) instead of four `randomBytes` calls that the enrollment path does not make. Default:
   * `beginTransaction` and `recordIssued`, two writes.
   */
  oneWrite?: boolean;
}

/** The certificate and CSR bytes of the one-write path (contents the store never reads). */
const FIXED_DER = randomBytes(900);
const FIXED_CSR = randomBytes(700);

export async function issueSimulated(store: Store, o: SimulatedIssuance): Promise<void> {
  const { id } = o;
  const subject = o.subject ?? { dn: `CN=dev-${id},O=Example`, cn: `dev-${id}` };
  const tx = {
    transactionId: id,
    signerKeyHash: 'ab'.repeat(32),
    messageType: 19,
    state: 'approved' as const,
  };
  // The one-write path opens the transaction as the enrollment path does: with its CSR and subject.
  const open = Object.assign(tx, o.oneWrite ? { csr: FIXED_CSR, subject: subject.dn } : {});
  const random = o.oneWrite ? publicRandomBytes : randomBytes;
  if (o.oneWrite) {
    if (await store.transactionExists(id)) throw new Error(`transaction ${id} exists`);
  } else {
    await store.beginTransaction(open);
  }
  const serial = '1' + random(15).toString('hex');
  const issuer = 'cd'.repeat(32);
  await store.recordIssued({
    transactionId: id,
    ...(o.oneWrite ? { open } : {}),
    cert: {
      serial,
      issuer,
      subject: subject.dn,
      commonName: subject.cn,
      sans: [`dns:${subject.cn}.example`],
      der: o.oneWrite ? FIXED_DER : randomBytes(900),
      notBefore: new Date(),
      notAfter: new Date(Date.now() + 365 * 86_400_000),
      keyHash: random(32).toString('hex'),
      transactionId: id,
    },
    ...(o.audit
      ? {
          audit: {
            actor: 'device',
            action: 'enroll.issued',
            target: id,
            details: { serial, subject: subject.dn, messageType: 'PKCSReq', source: '192.0.2.7', issuer },
          },
        }
      : {}),
  });
}
