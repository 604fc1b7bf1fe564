/**
 * `npm run bench -- --poll`: what a device polling a PENDING request costs the server.
 *
 * Untimed: a server in manual approval mode gets `pending` initial PKCSReqs (no challenge, one
 * per client key), which stay pending; then `n` CertPolls are built (round-robin over those
 * transactions, each a new pkiMessage with its own nonce, IssuerAndSubject enveloped to the
 * CA). Timed: the CertPolls, `c` in flight, over keep-alive HTTP; server CPU time (all
 * threads, /proc) per poll. Every reply is checked: PENDING, signed by the CA, nonce echoed.
 *
 * The RSA floor of a PENDING answer is ONE private-key operation (its signature); it is
 * measured in the same run by `openssl speed` and by node:crypto `sign` in this process, and
 * the report gives the CPU per poll beyond it.
 */
import { createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import type { Certificate } from '../../src/pkix/certificate.js';
import { buildCsr } from '../../src/pkix/csr.js';
import {
  buildIssuerAndSubject,
  decodeCertRep,
  encodePkiRequest,
  MessageType,
  PkiStatus,
} from '../../src/scep/index.js';
import { parseCsr } from '../../src/pkix/csr.js';
import { postPkiMessage, signerCertFor } from '../../test/helpers/enrollment.js';
import { percentile, runMeasured } from './load.js';
import { cpuSeconds, startScepter, type ScepterServeOptions } from './processes.js';

export interface PollBenchOptions {
  serve: Omit<ScepterServeOptions, 'serveArgs'>;
  /** Where envelopes go (the RA when there is one, else the CA). */
  recipient: Certificate;
  ca: Certificate;
  /** The CertRep signer's certificate (to check replies) and key (the node:crypto floor). */
  trusted: Certificate[];
  signerKey: KeyObject;
  keys: KeyObject[];
  pending: number;
  n: number;
  c: number;
  warmup: number;
}

export interface PollBenchResult {
  polls: number;
  notPending: number;
  perSecond: number;
  p50: number;
  p99: number;
  cpuMsPerPoll: number;
  /** One RSA signature with the CA key by node:crypto in this process, ms. */
  nodeSignMs: number;
}

interface Poll {
  der: Buffer;
  senderNonce: Buffer;
  transactionId: string;
  signerCert: Certificate;
  key: KeyObject;
}

function message(
  type: MessageType,
  key: KeyObject,
  recipient: Certificate,
  transactionId: string,
  content: Buffer,
): Poll {
  const signerCert = signerCertFor(key);
  const m = encodePkiRequest({
    messageType: type,
    transactionId,
    signerCert,
    signerKey: key,
    digest: 'sha256',
    recipient,
    cipher: 'aes128',
    content,
  });
  return { ...m, transactionId, signerCert, key };
}

/**
 * Mean CPU ms of one RSA PKCS#1 v1.5 SHA-256 signature with `key` (node:crypto, this thread):
 * CPU time, not wall time, so other work on a shared machine does not count.
 */
export function nodeSignMs(key: KeyObject, count = 2000): number {
  const data = randomBytes(64);
  for (let i = 0; i < 50; i++) sign('sha256', data, key);
  const c0 = process.cpuUsage();
  for (let i = 0; i < count; i++) sign('sha256', data, key);
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000 / count;
}

export async function pollBench(o: PollBenchOptions): Promise<PollBenchResult> {
  const count = Math.min(o.pending, o.keys.length);
  const opened = Array.from({ length: count }, (_, i) => {
    const key = o.keys[i]!;
    const csr = buildCsr({ subject: `CN=poll-${i},O=Scepter Load`, key, publicKey: createPublicKey(key) });
    return {
      key,
      csr,
      m: message(MessageType.PKCSReq, key, o.recipient, randomBytes(16).toString('hex'), csr),
    };
  });
  const polls = (k: number, first: number): Poll[] =>
    Array.from({ length: k }, (_, j) => {
      const p = opened[(first + j) % count]!;
      const content = buildIssuerAndSubject({
        issuerRaw: o.ca.subjectRaw,
        subjectRaw: parseCsr(p.csr).subjectRaw,
      });
      return message(MessageType.CertPoll, p.key, o.recipient, p.m.transactionId, content);
    });
  const warm = polls(o.warmup, 0);
  const timed = polls(o.n, o.warmup);
  const server = await startScepter({
    ...o.serve,
    serveArgs: ['--approval', 'manual', '--max-pending-per-address', '0', '--max-open-pending', '0'],
  });
  try {
    for (const p of opened) {
      const r = await postPkiMessage(server.url, p.m.der);
      const rep = decodeCertRep(r.body, {
        transactionId: p.m.transactionId,
        senderNonce: p.m.senderNonce,
        trustedSigners: o.trusted,
      });
      if (rep.status !== PkiStatus.PENDING) throw new Error(`the PKCSReq was not held: ${rep.status}`);
    }
    let cpu0 = 0;
    const r = await runMeasured(server.url, warm, timed, o.c, () => {
      cpu0 = cpuSeconds(server.pid);
    });
    const cpuS = cpuSeconds(server.pid) - cpu0;
    let notPending = 0;
    timed.forEach((p, i) => {
      const reply = r.replies[i];
      if (!reply || 'error' in reply || reply.status !== 200) return void notPending++;
      try {
        const rep = decodeCertRep(reply.body, {
          transactionId: p.transactionId,
          senderNonce: p.senderNonce,
          trustedSigners: o.trusted,
        });
        if (rep.status !== PkiStatus.PENDING) notPending++;
      } catch {
        notPending++;
      }
    });
    return {
      polls: timed.length,
      notPending,
      perSecond: (timed.length / r.wallMs) * 1000,
      p50: percentile(r.latencies, 50),
      p99: percentile(r.latencies, 99),
      cpuMsPerPoll: (cpuS * 1000) / timed.length,
      nodeSignMs: nodeSignMs(o.signerKey),
    };
  } finally {
    await server.stop();
  }
}
