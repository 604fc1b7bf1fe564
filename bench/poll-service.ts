/**
 * A PENDING poll inside the enrollment service (no HTTP): `EnrollmentService.pkiOperation` on
 * CertPolls of pending requests, against one RSA signature with the same key, interleaved in
 * rounds in one process and timed by CPU time (process.cpuUsage), so other work on a shared
 * machine does not count. Also the parts: decode + verify, the store lookup, the PENDING
 * CertRep.
 *
 *   node --import tsx bench/poll-service.ts [--rounds 20] [--per-round 40]
 */
import { randomBytes, sign } from 'node:crypto';
import { parseArgs } from 'node:util';
import { CertificateAuthority } from '../src/ca/issuer.js';
import { parseCsr } from '../src/pkix/csr.js';
import { composeEnrollment } from '../src/server/compose.js';
import { encodeCertRep } from '../src/scep/cert-rep.js';
import { decodePkiRequest } from '../src/scep/request.js';
import { buildIssuerAndSubject, encodePkiRequest, MessageType, PkiStatus } from '../src/scep/index.js';
import { openStore } from '../src/store/index.js';
import { csrOf, device, pkcsReq } from '../test/helpers/scep-server.js';
import { fixtureCa } from '../test/helpers/service.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '20' },
    'per-round': { type: 'string', default: '40' },
  },
});
const ROUNDS = Number(args.rounds);
const PER = Number(args['per-round']);

const { ca } = fixtureCa();
const store = await openStore(':memory:');
const svc = composeEnrollment({
  ca: new CertificateAuthority({ cert: ca.cert, key: ca.key, chain: [] }),
  store,
  config: { challenges: ['bench'] },
  lifecycle: { approval: { mode: 'manual' } },
});
const devices = Array.from({ length: 16 }, (_, i) => device(`CN=poll-${i},O=Bench`, { pool: i }));
const pending: Array<{ d: (typeof devices)[number]; tx: string }> = [];
for (const d of devices) {
  const m = pkcsReq(d, ca.cert, { challenge: '' });
  await svc.pkiOperation(m.der, {});
  pending.push({ d, tx: m.transactionId });
}
const polls = Array.from({ length: PER }, (_, i) => {
  const { d, tx } = pending[i % pending.length]!;
  return encodePkiRequest({
    messageType: MessageType.CertPoll,
    transactionId: tx,
    signerCert: d.signer.cert,
    signerKey: d.key,
    digest: 'sha256',
    recipient: ca.cert,
    cipher: 'aes128',
    content: buildIssuerAndSubject({
      issuerRaw: ca.cert.subjectRaw,
      subjectRaw: parseCsr(csrOf(d)).subjectRaw,
    }),
  }).der;
});
const decoded = polls.map((p) => decodePkiRequest(p));
const data = randomBytes(64);
const opened0 = svc.stats.envelopesOpened;

const parts: Record<string, (i: number) => unknown> = {
  'pkiOperation (whole PENDING poll)': (i) => svc.pkiOperation(polls[i]!, { remoteAddress: '192.0.2.1' }),
  '1 RSA signature (node:crypto, same key)': () => sign('sha256', data, ca.key),
  'decodePkiRequest (parse + signature verify)': (i) => decodePkiRequest(polls[i]!),
  'store.getTransaction': (i) => store.getTransaction(decoded[i]!.transactionId),
  'encodeCertRep PENDING (incl. its signature)': (i) =>
    encodeCertRep({
      transactionId: decoded[i]!.transactionId,
      recipientNonce: decoded[i]!.senderNonce,
      signer: svc.identity.signer,
      digest: 'sha256',
      status: PkiStatus.PENDING,
    }),
};
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const total: Record<string, number> = Object.fromEntries(Object.keys(parts).map((k) => [k, 0]));
for (const f of Object.values(parts)) for (let i = 0; i < PER; i++) await f(i); // warm-up
for (let r = 0; r < ROUNDS; r++)
  for (const [k, f] of Object.entries(parts)) {
    const c = cpuMs();
    for (let i = 0; i < PER; i++) await f(i);
    total[k]! += cpuMs() - c;
  }
const us = (k: string) => (total[k]! / (ROUNDS * PER)) * 1000;
const poll = us('pkiOperation (whole PENDING poll)');
const signUs = us('1 RSA signature (node:crypto, same key)');
const out = ['', `PENDING poll in the service, RSA-2048, ${ROUNDS} × ${PER} interleaved, CPU time`, ''];
out.push('| measurement | CPU µs |', '|---|---:|');
for (const k of Object.keys(parts)) out.push(`| ${k} | ${us(k).toFixed(1)} |`);
out.push(`| poll beyond its one signature | ${(poll - signUs).toFixed(1)} |`);
out.push('', `envelopes opened by the polls: ${svc.stats.envelopesOpened - opened0}`, '');
process.stdout.write(out.join('\n'));
await store.close();
