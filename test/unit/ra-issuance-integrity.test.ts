/**
 * Issuance integrity over real HTTP: what an operator approved is what is issued (a CSR swapped
 * under an approved transactionID is refused), approved requests nobody collects expire, a CA
 * failure leaves no transaction `approved`, and a renewal may ask only for the names of the
 * certificate it renews unless `--renewal-any-san`.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, type KeyObject } from 'node:crypto';
import * as der from '../../src/asn1/writer.js';
import { OID } from '../../src/asn1/oids.js';
import { CaError, CertificateAuthority, type IssueOptions } from '../../src/ca/issuer.js';
import type { Certificate } from '../../src/pkix/certificate.js';
import { buildCsr } from '../../src/pkix/csr.js';
import { parseSubjectAltName, type GeneralName } from '../../src/pkix/extensions.js';
import { FailInfo, MessageType, PkiStatus, type CertRep } from '../../src/scep/index.js';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { composeEnrollment } from '../../src/server/compose.js';
import { KeyUnavailableError } from '../../src/crypto/private-key.js';
import { OneTimeChallenges } from '../../src/ra/one-time-challenge.js';
import { openStore } from '../../src/store/index.js';
import { logSink } from '../helpers/log-sink.js';
import { fixtureCa } from '../helpers/service.js';
import {
  caCerts,
  certPoll,
  csrOf,
  device,
  openCertRep,
  pkcsReq,
  postPki,
  recipientOf,
  testServer,
  TEST_CHALLENGE,
  type Device,
  sendSignedBy,
} from '../helpers/scep-server.js';

const TOKEN = 'integrity-admin-token-0123456789';

/** A Microsoft UPN otherName GeneralName. */
function upn(value: string): GeneralName {
  const raw = der.encode(
    der.implicitConstructed(0, [der.oid('1.3.6.1.4.1.311.20.2.3'), der.explicit(0, der.utf8(value))]),
  );
  return { type: 'other', raw };
}

function sansOf(cert: Certificate): string[] {
  const ext = cert.extension(OID.subjectAltName);
  return ext
    ? parseSubjectAltName(ext.value).map((n) =>
        n.type === 'other' ? 'other' : `${n.type}:${'value' in n ? n.value : ''}`,
      )
    : [];
}

/** A CertPoll of `d`'s request to the server whose GetCACert answer is `certs`. */
function pollOf(d: Device, certs: Certificate[], transactionId: string) {
  return certPoll(d, recipientOf(certs), certs[certs.length - 1]!, transactionId);
}

async function send(
  url: string,
  m: { der: Buffer; senderNonce: Buffer; transactionId: string },
  d: Device,
  certs: Certificate[],
) {
  const a = await postPki(url, m.der);
  assert.equal(a.status, 200);
  return openCertRep(a.body, m, d, certs);
}

test('manual approval: a CSR swapped after approval → FAILURE badRequest + warning; CertPoll and an identical resend get the approved certificate', async (t) => {
  const log = logSink();
  const s = await testServer(t, {
    lifecycle: { approval: { mode: 'manual' } },
    challenges: { adminToken: TOKEN },
    logLevel: 'warn',
    logStream: log.stream,
  });
  const certs = await caCerts(s.url);
  const d = device('CN=printer1,O=Corp', { pool: 1 });
  const approvedCsr = csrOf(d, {
    challengePassword: undefined,
    subjectAltNames: [{ type: 'dns', value: 'printer1.corp.example' }],
  });
  const first = pkcsReq(d, recipientOf(certs), { content: approvedCsr });
  assert.equal((await send(s.url, first, d, certs)).status, PkiStatus.PENDING);

  const approve = await fetch(
    `${s.origin}/admin/pending/${encodeURIComponent(first.transactionId)}/approve`,
    {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    },
  );
  assert.equal(approve.status, 200);

  // Same transactionID, key and subject; other subjectAltNames.
  const swapped = csrOf(d, {
    challengePassword: undefined,
    subjectAltNames: [
      { type: 'dns', value: '*.corp.example' },
      { type: 'dns', value: 'login.example' },
      upn('administrator@corp.example'),
    ],
  });
  const resend = pkcsReq(d, recipientOf(certs), { content: swapped, transactionId: first.transactionId });
  const bad = await send(s.url, resend, d, certs);
  assert.equal(bad.status, PkiStatus.FAILURE);
  assert.equal(bad.failInfo, FailInfo.badRequest);
  assert.match(bad.failInfoText ?? '', /another certificate request/);
  const store = s.enrollment!.store;
  assert.equal((await store.getTransaction(first.transactionId))?.state, 'approved', 'the approval stands');
  assert.equal((await store.searchCertificates({ transactionId: first.transactionId })).total, 0);
  assert.ok(
    log.lines().some((l) => l.level === 40 && /another CSR than the stored one/.test(String(l.msg))),
    'a warning is logged',
  );

  const poll = pollOf(d, certs, first.transactionId);
  const ok = await send(s.url, poll, d, certs);
  assert.equal(ok.status, PkiStatus.SUCCESS, ok.failInfoText);
  const cert = ok.certificates[0]!;
  assert.deepEqual(sansOf(cert), ['dns:printer1.corp.example'], 'the approved names, nothing else');

  const again = pkcsReq(d, recipientOf(certs), { content: approvedCsr, transactionId: first.transactionId });
  const same = await send(s.url, again, d, certs);
  assert.equal(same.status, PkiStatus.SUCCESS);
  assert.ok(same.certificates[0]!.der.equals(cert.der));
  // Once issued, a swapped CSR is still refused (not answered with a certificate).
  const late = pkcsReq(d, recipientOf(certs), { content: swapped, transactionId: first.transactionId });
  assert.equal((await send(s.url, late, d, certs)).failInfo, FailInfo.badRequest);
  assert.equal((await store.searchCertificates({ transactionId: first.transactionId })).total, 1);
});

test('auto mode: another CSR under a used transactionID → FAILURE badRequest, not the stored certificate', async (t) => {
  const s = await testServer(t);
  const certs = await caCerts(s.url);
  const d = device('CN=auto-swap,O=Test', { pool: 2 });
  const r1 = pkcsReq(d, recipientOf(certs), {
    content: csrOf(d, { subjectAltNames: [{ type: 'dns', value: 'auto-swap.example' }] }),
  });
  assert.equal((await send(s.url, r1, d, certs)).status, PkiStatus.SUCCESS);
  const r2 = pkcsReq(d, recipientOf(certs), {
    transactionId: r1.transactionId,
    content: csrOf(d, { subjectAltNames: [{ type: 'dns', value: 'other.example' }] }),
  });
  const rep = await send(s.url, r2, d, certs);
  assert.equal(rep.status, PkiStatus.FAILURE);
  assert.equal(rep.failInfo, FailInfo.badRequest);
});

/** A server in front of a composed service with a settable clock and CA (fixture CA, in-memory store). */
async function clockServer(
  t: TestContext,
  o: {
    ca?: CertificateAuthority;
    pendingTtlSeconds?: number;
    mode?: 'manual' | 'auto';
    oneTimeChallengeKey?: Buffer;
  } = {},
): Promise<{ s: RunningServer; clock: { now: number } }> {
  const { ca } = fixtureCa();
  const store = await openStore(':memory:');
  const clock = { now: Date.now() };
  const service = composeEnrollment({
    ca: o.ca ?? new CertificateAuthority({ cert: ca.cert, key: ca.key, chain: [] }),
    store,
    config: {
      challenges: [TEST_CHALLENGE],
      ...(o.oneTimeChallengeKey ? { oneTimeChallengeKey: o.oneTimeChallengeKey.toString('hex') } : {}),
    },
    lifecycle: {
      approval: {
        mode: o.mode ?? 'manual',
        ...(o.pendingTtlSeconds ? { pendingTtlSeconds: o.pendingTtlSeconds } : {}),
      },
    },
    now: () => new Date(clock.now),
  });
  const s = await startServer({ service, logLevel: 'silent' });
  t.after(async () => {
    await s.close();
    await store.close();
  });
  (s as RunningServer & { enrollment: typeof service }).enrollment = service;
  return { s, clock };
}

test('an approved request nobody collects within the pending TTL fails (device and operator see why)', async (t) => {
  const { s, clock } = await clockServer(t, { pendingTtlSeconds: 3600 });
  const svc = s.enrollment!;
  const certs = await caCerts(s.url);
  const d = device('CN=uncollected,O=Test', { pool: 3 });
  const r = pkcsReq(d, recipientOf(certs), { challenge: '' });
  assert.equal((await send(s.url, r, d, certs)).status, PkiStatus.PENDING);
  assert.equal(await svc.store.decide(r.transactionId, 'approved'), true);
  const approvedAt = (await svc.store.getTransaction(r.transactionId))!.updatedAt.getTime();

  // Maintenance before the deadline leaves it alone; after it, the request fails.
  clock.now = approvedAt + 3599_000;
  await svc.lifecycle.maintain();
  assert.equal((await svc.store.getTransaction(r.transactionId))?.state, 'approved');
  clock.now = approvedAt + 3600_000;
  await svc.lifecycle.maintain();
  const tx = await svc.store.getTransaction(r.transactionId);
  assert.equal(tx?.state, 'failed');
  assert.match(tx?.failText ?? '', /not collected in time/);
  const late = await send(s.url, pollOf(d, certs, r.transactionId), d, certs);
  assert.equal(late.status, PkiStatus.FAILURE);
  assert.match(late.failInfoText ?? '', /not collected in time/);
  assert.equal((await svc.store.searchCertificates({ transactionId: r.transactionId })).total, 0);

  // Without the timer: the device's own poll after the deadline finds it expired.
  const d2 = device('CN=uncollected-2,O=Test', { pool: 4 });
  const r2 = pkcsReq(d2, recipientOf(certs), { challenge: '' });
  assert.equal((await send(s.url, r2, d2, certs)).status, PkiStatus.PENDING);
  assert.equal(await svc.store.decide(r2.transactionId, 'approved'), true);
  clock.now = (await svc.store.getTransaction(r2.transactionId))!.updatedAt.getTime() + 3600_000;
  const p2 = await send(s.url, pollOf(d2, certs, r2.transactionId), d2, certs);
  assert.equal(p2.status, PkiStatus.FAILURE);
  assert.equal((await svc.store.getTransaction(r2.transactionId))?.state, 'failed');
});

/** A CA whose issue() fails as a CA can fail (typed) or unexpectedly. */
class FailingCa extends CertificateAuthority {
  mode: 'typed' | 'fault' | 'works' | 'unreachable' = 'fault';
  override issue(r: IssueOptions): Buffer {
    if (this.mode === 'works') return super.issue(r);
    if (this.mode === 'unreachable') throw new KeyUnavailableError('the token is unplugged');
    if (this.mode === 'typed') throw new CaError('the profile refuses this request');
    throw new Error('disk on fire');
  }
}

test('a CA failure during issuance records the transaction failed (never left approved); the device gets FAILURE', async (t) => {
  const { ca } = fixtureCa();
  const failing = new FailingCa({ cert: ca.cert, key: ca.key, chain: [] });
  const { s } = await clockServer(t, { ca: failing });
  const svc = s.enrollment!;
  const certs = await caCerts(s.url);
  for (const [i, mode] of (['fault', 'typed'] as const).entries()) {
    failing.mode = mode;
    const d = device(`CN=ca-fails-${mode},O=Test`, { pool: 5 + i });
    const r = pkcsReq(d, recipientOf(certs), { challenge: '' });
    assert.equal((await send(s.url, r, d, certs)).status, PkiStatus.PENDING);
    assert.equal(await svc.store.decide(r.transactionId, 'approved'), true);
    const rep = await send(s.url, pollOf(d, certs, r.transactionId), d, certs);
    assert.equal(rep.status, PkiStatus.FAILURE, mode);
    assert.equal(rep.failInfo, FailInfo.badRequest);
    const tx = await svc.store.getTransaction(r.transactionId);
    assert.equal(tx?.state, 'failed', mode);
    if (mode === 'fault') {
      assert.match(tx?.failText ?? '', /internal CA error/);
      assert.ok(!(rep.failInfoText ?? '').includes('disk on fire'), 'no internal detail to the client');
    } else {
      assert.match(tx?.failText ?? '', /profile refuses/);
    }
    // Asking again answers from the record.
    const again = await send(s.url, pollOf(d, certs, r.transactionId), d, certs);
    assert.equal(again.status, PkiStatus.FAILURE);
  }
});

test('auto mode: a new request is opened and issued in ONE store write; a CA failure records it failed; resends answer from the store', async (t) => {
  const { ca } = fixtureCa();
  const failing = new FailingCa({ cert: ca.cert, key: ca.key, chain: [] });
  failing.mode = 'works';
  const { s } = await clockServer(t, { ca: failing, mode: 'auto' });
  const svc = s.enrollment!;
  const certs = await caCerts(s.url);
  const d = device('CN=one-write,O=Test', { pool: 7 });
  const r = pkcsReq(d, recipientOf(certs));
  const before = svc.store.stats().writes;
  const rep = await send(s.url, r, d, certs);
  assert.equal(rep.status, PkiStatus.SUCCESS);
  assert.equal(svc.store.stats().writes - before, 1, 'one store write for a new auto-approved enrollment');
  const tx = await svc.store.getTransaction(r.transactionId);
  assert.equal(tx?.state, 'issued');
  assert.equal(tx?.certSerial, rep.certificates[0]?.serialHex);
  assert.deepEqual(tx?.meta, { challenge: 'static' });
  // The identical resend gets the same certificate; nothing new is stored.
  const again = await send(s.url, r, d, certs);
  assert.equal(again.status, PkiStatus.SUCCESS);
  assert.equal(again.certificates[0]?.serialHex, tx?.certSerial);
  assert.equal((await svc.store.searchCertificates({})).total, 1, 'one certificate');
  // A CA failure on a new request: recorded failed (never a certificate), and a resend is
  // answered from the record without asking the CA again.
  failing.mode = 'typed';
  const d2 = device('CN=one-write-fails,O=Test', { pool: 8 });
  const r2 = pkcsReq(d2, recipientOf(certs));
  const bad = await send(s.url, r2, d2, certs);
  assert.equal(bad.status, PkiStatus.FAILURE);
  const tx2 = await svc.store.getTransaction(r2.transactionId);
  assert.equal(tx2?.state, 'failed');
  assert.match(tx2?.failText ?? '', /profile refuses/);
  failing.mode = 'works';
  const bad2 = await send(s.url, r2, d2, certs);
  assert.equal(bad2.status, PkiStatus.FAILURE, 'the recorded failure answers the resend');
  assert.equal((await svc.store.searchCertificates({ transactionId: r2.transactionId })).total, 0);
});

test('auto mode, one-time challenge: the CA key unreachable → 503, the request is kept approved and its retry issues (the spent challenge stays its own)', async (t) => {
  const { ca } = fixtureCa();
  const failing = new FailingCa({ cert: ca.cert, key: ca.key, chain: [] });
  failing.mode = 'unreachable';
  const key = Buffer.alloc(32, 9);
  const { s } = await clockServer(t, { ca: failing, mode: 'auto', oneTimeChallengeKey: key });
  const svc = s.enrollment!;
  const [challenge] = await new OneTimeChallenges(key).mint(svc.store, { ttlSeconds: 3600, actor: 'test' });
  const certs = await caCerts(s.url);
  const d = device('CN=token-unplugged,O=Test', { pool: 9 });
  const r = pkcsReq(d, recipientOf(certs), { challenge: challenge!.value });
  const down = await postPki(s.url, r.der);
  assert.equal(down.status, 503);
  assert.equal((await svc.store.getTransaction(r.transactionId))?.state, 'approved');
  failing.mode = 'works';
  const rep = await send(s.url, r, d, certs);
  assert.equal(rep.status, PkiStatus.SUCCESS, rep.failInfoText);
  assert.equal((await svc.store.getTransaction(r.transactionId))?.state, 'issued');
});

test('auto mode: a store fault while recording a new certificate → 500, the request is kept approved and its retry issues', async (t) => {
  const { s } = await clockServer(t, { mode: 'auto' });
  const store = s.enrollment!.store;
  const certs = await caCerts(s.url);
  const d = device('CN=store-fault,O=Test', { pool: 10 });
  const r = pkcsReq(d, recipientOf(certs));
  const real = store.recordIssued.bind(store);
  store.recordIssued = () => Promise.reject(new Error('disk I/O error'));
  const down = await postPki(s.url, r.der);
  assert.equal(down.status, 500);
  assert.ok(!down.body.toString().includes('disk'), 'no internal detail to the client');
  store.recordIssued = real;
  assert.equal((await store.getTransaction(r.transactionId))?.state, 'approved');
  const rep = await send(s.url, r, d, certs);
  assert.equal(rep.status, PkiStatus.SUCCESS, rep.failInfoText);
  assert.equal((await store.getTransaction(r.transactionId))?.state, 'issued');
});

interface Holder {
  cert: Certificate;
  key: KeyObject;
}

async function renew(
  s: RunningServer,
  certs: Certificate[],
  old: Holder,
  sans: GeneralName[],
  messageType: MessageType = MessageType.RenewalReq,
): Promise<CertRep> {
  const csr = buildCsr({
    subject: old.cert.subjectRaw,
    key: old.key,
    publicKey: createPublicKey(old.key),
    ...(sans.length ? { subjectAltNames: sans } : {}),
  });
  return sendSignedBy(s.url, certs, old, csr, { messageType });
}

for (const approval of ['auto', 'manual'] as const) {
  test(`renewal (${approval} approval): only the old certificate's names; a new SAN → FAILURE naming it; --renewal-any-san allows it`, async (t) => {
    const s = await testServer(t, { lifecycle: { approval: { mode: approval } } });
    const certs = await caCerts(s.url);
    const d = device('CN=renewer,O=Test', { pool: 7 });
    const r = pkcsReq(d, recipientOf(certs), {
      content: csrOf(d, { subjectAltNames: [{ type: 'dns', value: 'renewer.example' }] }),
    });
    const store = s.enrollment!.store;
    let first = await send(s.url, r, d, certs);
    if (approval === 'manual') {
      assert.equal(first.status, PkiStatus.PENDING);
      await store.decide(r.transactionId, 'approved');
      first = await send(s.url, pollOf(d, certs, r.transactionId), d, certs);
    }
    assert.equal(first.status, PkiStatus.SUCCESS, first.failInfoText);
    const old: Holder = { cert: first.certificates[0]!, key: d.key };

    // The same names (DNS case-insensitive), or fewer: renewed without an operator.
    const same = await renew(s, certs, old, [{ type: 'dns', value: 'RENEWER.example' }]);
    assert.equal(same.status, PkiStatus.SUCCESS, same.failInfoText);
    assert.equal((await renew(s, certs, old, [])).status, PkiStatus.SUCCESS);

    for (const [mt, extra] of [
      [MessageType.RenewalReq, { type: 'dns', value: 'login.example' }],
      [MessageType.PKCSReq, upn('administrator@corp.example')],
    ] as const) {
      const rep = await renew(s, certs, old, [{ type: 'dns', value: 'renewer.example' }, extra], mt);
      assert.equal(rep.status, PkiStatus.FAILURE);
      assert.equal(rep.failInfo, FailInfo.badRequest);
      assert.match(rep.failInfoText ?? '', /not allowed: "(dns:login\.example|other:[0-9a-f]+)"/);
    }
    const issued = await store.searchCertificates({ subject: 'renewer' });
    assert.equal(issued.total, 3, 'the first certificate and two renewals, nothing for the refused ones');
  });
}

test('--renewal-any-san: a renewal may request new subjectAltNames', async (t) => {
  const s = await testServer(t, { lifecycle: { renewal: { sameSubjectAltNames: false } } });
  const certs = await caCerts(s.url);
  const d = device('CN=renewer-any,O=Test', { pool: 8 });
  const first = await send(s.url, pkcsReq(d, recipientOf(certs)), d, certs);
  assert.equal(first.status, PkiStatus.SUCCESS);
  const rep = await renew(s, certs, { cert: first.certificates[0]!, key: d.key }, [
    { type: 'dns', value: 'new-name.example' },
  ]);
  assert.equal(rep.status, PkiStatus.SUCCESS, rep.failInfoText);
  assert.deepEqual(sansOf(rep.certificates[0]!), ['dns:new-name.example']);
});
