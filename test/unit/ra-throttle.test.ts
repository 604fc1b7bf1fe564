/**
 * Challenge-failure throttling (src/ra/throttle.ts) and the client address behind trusted
 * proxies (src/server/client-address.ts): per-source and global budgets, fixed windows,
 * counters shared through the store by several instances, and through a running server:
 * per-address lock, global lock across many addresses, the proxy header honoured only from a
 * trusted peer, and one budget for two servers on one store; the RA asks the throttle only
 * where a challenge is checked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { createPublicKey, randomBytes } from 'node:crypto';
import pg from 'pg';
import {
  buildIssuerAndSubject,
  decodeCertRep,
  encodePkiRequest,
  FailInfo,
  MessageType,
  PkiStatus,
} from '../../src/scep/index.js';
import { buildCsr } from '../../src/pkix/csr.js';
import { THROTTLED_TEXT } from '../../src/ra/challenge.js';
import { FailureThrottle, memoryCounter, sourceKey, storeCounter } from '../../src/ra/throttle.js';
import { clientAddress, normalizeIp, TrustedProxies } from '../../src/server/client-address.js';
import { openStore, type Store } from '../../src/store/index.js';
import type { Certificate } from '../../src/pkix/certificate.js';
import { PG_URL, needPeer, pgReachable } from '../helpers/peers.js';
import {
  caCerts,
  csrOf,
  device,
  openCertRep,
  pkcsReq,
  recipientOf,
  tempDir,
  testServer,
  TEST_CHALLENGE,
  type Device,
} from '../helpers/scep-server.js';
import { testService } from '../helpers/service.js';

const pgAvailable = await pgReachable();
/** A window start, so a test's clock never crosses a window boundary by accident. */
const T0 = 30_000_000 * 60_000;

test('clientAddress: the peer unless it is a trusted proxy; right-most untrusted hop; bounded', () => {
  const trusted = new TrustedProxies(['127.0.0.1', '10.0.0.0/8', 'fd00::/8']);
  const xff = (v: string) => ({ 'x-forwarded-for': v });
  // No trusted proxies, or an untrusted peer: the header is never read.
  assert.equal(clientAddress('127.0.0.1', xff('203.0.113.9'), undefined), '127.0.0.1');
  assert.equal(clientAddress('198.51.100.7', xff('203.0.113.9'), trusted), '198.51.100.7');
  // A trusted peer: the right-most hop that is not a trusted proxy.
  assert.equal(clientAddress('127.0.0.1', xff('203.0.113.9'), trusted), '203.0.113.9');
  assert.equal(
    clientAddress('::ffff:127.0.0.1', xff('1.1.1.1, 203.0.113.9, 10.1.2.3'), trusted),
    '203.0.113.9',
  );
  // A spoofed left-most entry does not win.
  assert.equal(clientAddress('127.0.0.1', xff('6.6.6.6, 203.0.113.9'), trusted), '203.0.113.9');
  // Garbage hop: the walk stops at the last trusted address.
  assert.equal(clientAddress('127.0.0.1', xff('203.0.113.9, not-an-ip'), trusted), '127.0.0.1');
  assert.equal(clientAddress('127.0.0.1', xff('203.0.113.9, not-an-ip, 10.0.0.1'), trusted), '10.0.0.1');
  // Forwarded (RFC 7239) wins over X-Forwarded-For; quoted IPv6 with port, IPv4 with port.
  assert.equal(
    clientAddress(
      '127.0.0.1',
      { forwarded: 'for=6.6.6.6, for="[2001:db8::1]:4711";proto=https', 'x-forwarded-for': '9.9.9.9' },
      trusted,
    ),
    '2001:db8::1',
  );
  assert.equal(
    clientAddress('127.0.0.1', { forwarded: 'for=192.0.2.60:8080;by=10.0.0.1' }, trusted),
    '192.0.2.60',
  );
  assert.equal(clientAddress('127.0.0.1', { forwarded: 'for=unknown' }, trusted), '127.0.0.1');
  // Too long a header is not read.
  const long = Array.from({ length: 400 }, () => '203.0.113.9').join(', ');
  assert.equal(clientAddress('127.0.0.1', xff(long), trusted), '127.0.0.1');
  // Every hop trusted: the left-most examined one.
  assert.equal(clientAddress('127.0.0.1', xff('10.0.0.2, 10.0.0.3'), trusted), '10.0.0.2');
  assert.throws(() => new TrustedProxies(['10.0.0.0/33']), TypeError);
  assert.throws(() => new TrustedProxies(['proxy.example']), TypeError);
  assert.equal(normalizeIp('[::1]'), '::1');
  assert.equal(normalizeIp('::FFFF:192.0.2.1'), '192.0.2.1');
});

test('sourceKey: IPv4 as is, IPv4-mapped IPv6 as IPv4, IPv6 by its /64', () => {
  assert.equal(sourceKey('192.0.2.1'), '192.0.2.1');
  assert.equal(sourceKey('::ffff:192.0.2.1'), '192.0.2.1');
  assert.equal(sourceKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(sourceKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
  assert.equal(sourceKey('2001:db8::1'), '2001:db8:0:0::/64');
  assert.equal(sourceKey('::1'), '0:0:0:0::/64');
  assert.equal(sourceKey(undefined), 'unknown');
  assert.equal(sourceKey('garbage'), 'unknown');
});

test('FailureThrottle: global budget locks every source once many addresses spent it', async () => {
  let now = T0;
  const th = new FailureThrottle(
    { maxFailures: 10, maxGlobalFailures: 100, windowSeconds: 900, now: () => now },
    memoryCounter(),
  );
  // 60 addresses × 8 guesses = 480: no single address reaches 10.
  let refusedAt = -1;
  for (let i = 0; i < 480 && refusedAt < 0; i++) {
    const a = `127.0.1.${i % 60}`;
    if (await th.blocked(a)) refusedAt = i;
    else await th.fail(a);
  }
  assert.equal(refusedAt, 100, 'the 101st guess is refused');
  assert.equal(await th.state('192.0.2.200'), 'global', 'a fresh address is locked too');
  now = T0 + 900_000; // next window
  assert.equal(await th.blocked('192.0.2.200'), false);
});

/** Two throttles on two connections to one store: one budget. */
async function sharedBudget(open: () => Promise<Store>): Promise<void> {
  const a = await open();
  const b = await open();
  try {
    const now = () => T0 + 5_000;
    const o = { maxFailures: 4, maxGlobalFailures: 0, windowSeconds: 60, now };
    const th1 = new FailureThrottle(o, storeCounter(a));
    const th2 = new FailureThrottle(o, storeCounter(b));
    await th1.fail('198.51.100.1');
    await th2.fail('198.51.100.1');
    await th1.fail('198.51.100.1');
    assert.equal(await th2.blocked('198.51.100.1'), false);
    await th2.fail('198.51.100.1');
    assert.equal(await th1.blocked('198.51.100.1'), true, 'instance 1 sees instance 2 failures');
    assert.equal(await th2.blocked('198.51.100.1'), true);
    assert.deepEqual(await a.readCounters(['challenge-failure:198.51.100.1', 'none'], T0), [4, 0]);
    // Counters are atomic under concurrency.
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).incrementCounter('race', T0)));
    assert.equal((await b.readCounters(['race'], T0))[0], 20);
    assert.equal(await a.pruneCounters(T0 + 1), 2);
    assert.deepEqual(await b.readCounters(['race'], T0), [0]);
  } finally {
    await a.close();
    await b.close();
  }
}

test('store counters: two instances on one SQLite file share the budget', async (t) => {
  const path = join(tempDir(t, 'scepter-throttle-'), 'db.sqlite');
  await sharedBudget(() => openStore(`sqlite:${path}`));
});

test('store counters: two instances on one PostgreSQL schema share the budget', async (t) => {
  if (!needPeer(t, pgAvailable, `PostgreSQL at ${PG_URL}`)) return;
  const schema = `scepter_throttle_${randomBytes(6).toString('hex')}`;
  t.after(async () => {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    try {
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    } finally {
      await c.end();
    }
  });
  await sharedBudget(() => openStore(PG_URL, { schema }));
});

// ---- through a running server ----

interface Reply {
  status: PkiStatus;
  failInfo: FailInfo | undefined;
  text: string | undefined;
}

/** One PKCSReq over real HTTP from a loopback source address, optionally with X-Forwarded-For. */
async function enroll(
  url: string,
  certs: Certificate[],
  d: Device,
  challenge: string,
  o: { from?: string; xff?: string } = {},
): Promise<Reply> {
  const r = pkcsReq(d, recipientOf(certs), { challenge });
  const u = new URL(url);
  u.searchParams.set('operation', 'PKIOperation');
  const body = await new Promise<Buffer>((resolve, reject) => {
    const req = request(
      u,
      {
        method: 'POST',
        localAddress: o.from ?? '127.0.0.1',
        headers: { 'content-length': r.der.length, ...(o.xff ? { 'x-forwarded-for': o.xff } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          res.statusCode === 200
            ? resolve(Buffer.concat(chunks))
            : reject(new Error(`HTTP ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(r.der);
  });
  const rep = openCertRep(body, r, d, certs);
  return { status: rep.status, failInfo: rep.failInfo, text: rep.failInfoText };
}

const throttled = (r: Reply) =>
  r.status === PkiStatus.FAILURE && r.failInfo === FailInfo.badRequest && r.text === THROTTLED_TEXT;

test('HTTP: per-address lock via a trusted proxy header; the header of an untrusted peer is ignored', async (t) => {
  const s = await testServer(t, {
    trustedProxies: ['127.0.0.1'],
    challenges: {
      throttle: { maxFailures: 3, maxGlobalFailures: 0, windowSeconds: 60, now: () => T0 + 1_000 },
    },
  });
  const certs = await caCerts(s.url);
  const d = device('CN=throttle-http,O=Test', { pool: 6 });
  const client = '203.0.113.7';
  for (let i = 0; i < 3; i++) {
    const r = await enroll(s.url, certs, d, `wrong-${i}`, { xff: client });
    assert.match(r.text ?? '', /not valid/);
  }
  // The client named by the trusted proxy is locked, its correct challenge refused unchecked.
  assert.ok(throttled(await enroll(s.url, certs, d, TEST_CHALLENGE, { xff: client })));
  // Another client behind the same proxy is not.
  assert.equal(
    (await enroll(s.url, certs, d, TEST_CHALLENGE, { xff: '203.0.113.8' })).status,
    PkiStatus.SUCCESS,
  );
  // The proxy's own address was never counted: without a header it is not locked.
  assert.equal((await enroll(s.url, certs, d, TEST_CHALLENGE)).status, PkiStatus.SUCCESS);
  // From an untrusted peer the same header is ignored: keyed on the peer (not locked).
  assert.equal(
    (await enroll(s.url, certs, d, TEST_CHALLENGE, { from: '127.0.0.2', xff: client })).status,
    PkiStatus.SUCCESS,
  );
  // ... and that peer's failures lock the peer, whatever header it sends.
  for (let i = 0; i < 3; i++)
    await enroll(s.url, certs, d, `bad-${i}`, { from: '127.0.0.3', xff: `198.51.100.${i}` });
  assert.ok(
    throttled(await enroll(s.url, certs, d, TEST_CHALLENGE, { from: '127.0.0.3', xff: '198.51.100.99' })),
  );
});

test('HTTP: the global budget locks every address once guesses spread over many were spent', async (t) => {
  const s = await testServer(t, {
    trustedProxies: ['127.0.0.1'],
    challenges: {
      throttle: { maxFailures: 10, maxGlobalFailures: 12, windowSeconds: 60, now: () => T0 + 2_000 },
    },
  });
  const certs = await caCerts(s.url);
  const d = device('CN=throttle-global,O=Test', { pool: 7 });
  for (let i = 0; i < 12; i++) {
    const r = await enroll(s.url, certs, d, `guess-${i}`, { xff: `192.0.2.${i % 6}` });
    assert.match(r.text ?? '', /not valid/, `guess ${i} was checked`);
  }
  assert.ok(
    throttled(await enroll(s.url, certs, d, TEST_CHALLENGE, { xff: '192.0.2.200' })),
    'a fresh address',
  );
  assert.ok(throttled(await enroll(s.url, certs, d, TEST_CHALLENGE, { from: '127.0.0.4' })), 'any peer');
});

test('HTTP: two servers on one store share one budget', async (t) => {
  const dataDir = tempDir(t);
  const o = {
    dataDir,
    challenges: {
      throttle: { maxFailures: 4, maxGlobalFailures: 0, windowSeconds: 60, now: () => T0 + 3_000 },
    },
  };
  const s1 = await testServer(t, o);
  const s2 = await testServer(t, o);
  const certs = await caCerts(s1.url);
  const d = device('CN=throttle-shared,O=Test', { pool: 8 });
  const from = '127.0.0.5';
  await enroll(s1.url, certs, d, 'x1', { from });
  await enroll(s2.url, certs, d, 'x2', { from });
  await enroll(s1.url, certs, d, 'x3', { from });
  assert.equal((await enroll(s2.url, certs, d, TEST_CHALLENGE, { from })).status, PkiStatus.SUCCESS);
  await enroll(s2.url, certs, d, 'x4', { from });
  assert.ok(throttled(await enroll(s1.url, certs, d, TEST_CHALLENGE, { from })), 'server 1 counts server 2');
  assert.ok(throttled(await enroll(s2.url, certs, d, TEST_CHALLENGE, { from })));
});

test('the RA asks the throttle only where a challenge is checked: not for polls, renewals or requests refused earlier', async (t) => {
  const asked: Array<string | undefined> = [];
  let locked = false;
  const s = await testService(t, {
    challengeLock: async (address) => {
      asked.push(address);
      return locked;
    },
  });
  const ctx = { remoteAddress: '198.51.100.9' };
  const d = device('CN=lock-1,O=Test', { pool: 7 });
  const m = pkcsReq(d, s.ca.cert);
  const first = openCertRep((await s.svc.pkiOperation(m.der, ctx)).body, m, d, [s.ca.cert]);
  assert.equal(first.status, PkiStatus.SUCCESS);
  assert.deepEqual(asked, ['198.51.100.9'], 'an initial enrollment asks once, with the client address');

  // A CertPoll of the issued transaction and a renewal signed by the issued certificate: no challenge, not asked.
  const issued = first.certificates[0]!;
  const poll = encodePkiRequest({
    messageType: MessageType.CertPoll,
    transactionId: m.transactionId,
    signerCert: d.signer.cert,
    signerKey: d.key,
    digest: 'sha256',
    recipient: s.ca.cert,
    cipher: 'aes128',
    content: buildIssuerAndSubject({ issuerRaw: s.ca.cert.subjectRaw, subjectRaw: issued.subjectRaw }),
  });
  const polled = openCertRep(
    (await s.svc.pkiOperation(poll.der, ctx)).body,
    { ...poll, transactionId: m.transactionId },
    d,
    [s.ca.cert],
  );
  assert.equal(polled.status, PkiStatus.SUCCESS);
  const renew = encodePkiRequest({
    messageType: MessageType.RenewalReq,
    transactionId: `renew-${m.transactionId}`,
    signerCert: issued,
    signerKey: d.key,
    digest: 'sha256',
    recipient: s.ca.cert,
    cipher: 'aes128',
    content: buildCsr({ subject: issued.subjectRaw, key: d.key, publicKey: createPublicKey(d.key) }),
  });
  const renewed = decodeCertRep((await s.svc.pkiOperation(renew.der, ctx)).body, {
    transactionId: `renew-${m.transactionId}`,
    senderNonce: renew.senderNonce,
    trustedSigners: [s.ca.cert],
    decrypt: { cert: issued, key: d.key },
  });
  assert.equal(renewed.status, PkiStatus.SUCCESS, renewed.failInfoText);
  // An initial enrollment refused by a policy before the challenge (signer key ≠ CSR key).
  const other = device('CN=lock-1,O=Test', { pool: 8 });
  const mismatch = pkcsReq(d, s.ca.cert, { content: csrOf(other) });
  const refused = openCertRep((await s.svc.pkiOperation(mismatch.der, ctx)).body, mismatch, d, [s.ca.cert]);
  assert.equal(refused.status, PkiStatus.FAILURE);
  assert.equal(asked.length, 1, 'nothing but the initial enrollment asked');

  // Locked: refused unchecked, with the throttled text, even with the right challenge.
  locked = true;
  const d2 = device('CN=lock-2,O=Test', { pool: 9 });
  const m2 = pkcsReq(d2, s.ca.cert);
  const a2 = await s.svc.pkiOperation(m2.der, ctx);
  const r2 = openCertRep(a2.body, m2, d2, [s.ca.cert]);
  assert.equal(r2.status, PkiStatus.FAILURE);
  assert.equal(r2.failInfoText, THROTTLED_TEXT);
  assert.equal(a2.log.limit, 'challenge-throttle');
  assert.equal(asked.length, 2);
});
