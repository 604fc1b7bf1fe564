/**
 * One-time challenges and challenge-failure throttling (docs/conformance.md §5.1, cases 31–34, 39):
 * a one-time challenge enrolls exactly one device (also under concurrency, across workers and
 * across two instances on one SQLite file), a resend of that transaction gets the same
 * certificate, reuse and expiry fail badRequest, manual approval binds the challenge to the
 * pending request, the admin endpoint mints challenges only with the right bearer token, the
 * CLI mints working challenges, failures are throttled per source address, and no challenge
 * value (nor the admin token) ever reaches the log.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPublicKey } from 'node:crypto';
import { buildCsr } from '../../src/pkix/csr.js';
import { decodeCertRep, encodePkiRequest, FailInfo, MessageType, PkiStatus } from '../../src/scep/index.js';
import { OneTimeChallenges, ONE_TIME_CHALLENGE_LENGTH } from '../../src/ra/one-time-challenge.js';
import { FailureThrottle } from '../../src/ra/throttle.js';
import { THROTTLED_TEXT } from '../../src/ra/challenge.js';
import type { Certificate } from '../../src/pkix/certificate.js';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { logSink } from '../helpers/log-sink.js';
import {
  seedCa,
  caCerts,
  device,
  openCertRep,
  pkcsReq,
  postPki,
  recipientOf,
  tempDir,
  testServer,
  TEST_CHALLENGE,
  type Device,
} from '../helpers/scep-server.js';

const ROOT = join(import.meta.dirname, '..', '..');
const ADMIN_TOKEN = 'admin-token-0123456789abcdef';

/** Mints one-time challenges straight into a running server's store. */
async function mint(s: RunningServer, n = 1, ttlSeconds = 3600, now?: Date): Promise<string[]> {
  const ot = new OneTimeChallenges(s.dataDir!.challengeKey);
  const c = await ot.mint(s.enrollment!.store, {
    ttlSeconds,
    count: n,
    actor: 'test',
    ...(now ? { now } : {}),
  });
  return c.map((x) => x.value);
}

interface Enrolled {
  status: PkiStatus;
  failInfo: FailInfo | undefined;
  text: string | undefined;
  serial: string | undefined;
  cert: Certificate | undefined;
}

/** One PKCSReq from `d` with `challenge` (optionally a fixed transactionID and source address). */
async function enroll(
  url: string,
  certs: Certificate[],
  d: Device,
  challenge: string,
  o: { transactionId?: string; from?: string } = {},
): Promise<Enrolled & { transactionId: string }> {
  const r = pkcsReq(d, recipientOf(certs), {
    challenge,
    ...(o.transactionId ? { transactionId: o.transactionId } : {}),
  });
  const a = o.from ? await postFrom(url, r.der, o.from) : await postPki(url, r.der);
  assert.equal(a.status, 200, a.body.toString());
  const rep = openCertRep(a.body, r, d, certs);
  return {
    transactionId: r.transactionId,
    status: rep.status,
    failInfo: rep.failInfo,
    text: rep.failInfoText,
    serial: rep.certificates[0]?.serialHex,
    cert: rep.certificates[0],
  };
}

/** POSTs a pkiMessage from a given loopback source address (127.0.0.x). */
function postFrom(url: string, der: Buffer, localAddress: string): Promise<{ status: number; body: Buffer }> {
  const u = new URL(url);
  u.searchParams.set('operation', 'PKIOperation');
  return new Promise((resolve, reject) => {
    const req = request(
      u,
      { method: 'POST', localAddress, headers: { 'content-length': der.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    req.end(der);
  });
}

test('one-time token: authentic, expired, forged and foreign candidates', () => {
  const key = Buffer.alloc(32, 7);
  const ot = new OneTimeChallenges(key);
  const now = new Date('2030-01-01T00:00:00Z');
  const c = ot.create(new Date(now.getTime() + 60_000));
  assert.equal(c.value.length, ONE_TIME_CHALLENGE_LENGTH);
  // PrintableString-safe (Windows clients), never starting with '-': lowercase hex.
  assert.match(c.value, /^[0-9a-f]{64}$/);
  const ok = ot.check(c.value, now);
  assert.equal(ok.kind, 'one-time');
  assert.equal(ok.kind === 'one-time' && ok.hash, ot.hash(c.value));
  assert.notEqual(ot.hash(c.value), ot.hash(ot.create(c.expiresAt).value), 'fresh randomness each time');
  assert.equal(ot.check(c.value, new Date(now.getTime() + 60_000)).kind, 'expired');
  // Flip one character of the random part: the tag no longer matches.
  const flipped = (c.value[0] === '0' ? '1' : '0') + c.value.slice(1);
  assert.equal(ot.check(flipped, now).kind, 'foreign');
  assert.equal(new OneTimeChallenges(Buffer.alloc(32, 8)).check(c.value, now).kind, 'foreign', 'other key');
  assert.equal(ot.check(c.value.toUpperCase(), now).kind, 'foreign', 'one spelling only');
  assert.equal(ot.check('short', now).kind, 'foreign');
  assert.equal(ot.check(undefined, now).kind, 'foreign');
  assert.throws(() => new OneTimeChallenges(Buffer.alloc(16)), RangeError);
});

test('FailureThrottle: blocks after K failures in the window, releases when the window ends', async () => {
  let now = 1_000_000 * 60_000; // a window start
  const th = new FailureThrottle({ maxFailures: 3, windowSeconds: 60, maxGlobalFailures: 0, now: () => now });
  await th.fail('127.0.0.1');
  await th.fail('127.0.0.1');
  assert.equal(await th.blocked('127.0.0.1'), false);
  now += 10_000;
  await th.fail('127.0.0.1');
  assert.equal(await th.blocked('127.0.0.1'), true);
  assert.equal(await th.blocked('127.0.0.2'), false, 'other sources are unaffected');
  now += 49_999;
  assert.equal(await th.blocked('127.0.0.1'), true, 'locked until the window ends');
  now += 1; // the next window
  assert.equal(await th.blocked('127.0.0.1'), false);
  assert.equal(new FailureThrottle({ maxFailures: 0 }).enabled, false);
});

test('one-time challenge (2 workers, static disabled): enrolls once, resend replays, reuse and expiry fail, nothing logged', async (t) => {
  const log = logSink();
  const s = await testServer(t, {
    workers: 2,
    challenges: { static: false },
    logLevel: 'info',
    logStream: log.stream,
  });
  const certs = await caCerts(s.url);
  const [c1, c2] = await mint(s, 2);
  const [expired] = await mint(s, 1, 10, new Date(Date.now() - 60_000));

  const d1 = device('CN=otc-1,O=Test', { pool: 1 });
  const first = await enroll(s.url, certs, d1, c1!);
  assert.equal(first.status, PkiStatus.SUCCESS);
  const tx = await s.enrollment!.store.getTransaction(first.transactionId);
  assert.equal(tx?.meta?.challenge, 'one-time', 'the transaction records how it was authorized');

  // The same device resends its request (same transactionID + key): the same certificate.
  const resend = await enroll(s.url, certs, d1, c1!, { transactionId: first.transactionId });
  assert.equal(resend.status, PkiStatus.SUCCESS);
  assert.equal(resend.serial, first.serial);

  // A second device with the same challenge: refused.
  const d2 = device('CN=otc-2,O=Test', { pool: 2 });
  const reuse = await enroll(s.url, certs, d2, c1!);
  assert.equal(reuse.status, PkiStatus.FAILURE);
  assert.equal(reuse.failInfo, FailInfo.badRequest);
  assert.match(reuse.text ?? '', /already been used/);
  // The first device again, with a NEW transaction: the challenge is spent.
  const again = await enroll(s.url, certs, d1, c1!);
  assert.equal(again.status, PkiStatus.FAILURE);

  const exp = await enroll(s.url, certs, d2, expired!);
  assert.equal(exp.status, PkiStatus.FAILURE);
  assert.equal(exp.failInfo, FailInfo.badRequest);
  assert.match(exp.text ?? '', /expired/);

  const stat = await enroll(s.url, certs, d2, TEST_CHALLENGE);
  assert.equal(stat.status, PkiStatus.FAILURE, 'no static challenge with static: false');
  assert.equal((await enroll(s.url, certs, d2, c2!)).status, PkiStatus.SUCCESS);

  const found = await s.enrollment!.store.searchCertificates({ subject: 'otc-1' });
  assert.equal(found.total, 1, 'one certificate for otc-1');

  await s.close();
  const text = log.text();
  assert.match(text, /one-time challenge presented again/, 'reuse is logged as a warning');
  assert.match(
    text,
    new RegExp(`"transactionId":"${reuse.transactionId}"[^\\n]*one-time challenge presented again`),
  );
  for (const v of [c1!, c2!, expired!]) assert.ok(!text.includes(v), 'no challenge value in the log');
});

test('one challenge raced by 8 devices, and by two instances on one SQLite file: exactly one certificate', async (t) => {
  const s = await testServer(t, { workers: 2 });
  const certs = await caCerts(s.url);
  const [c] = await mint(s);
  const devices = Array.from({ length: 8 }, (_, i) => device(`CN=race-${i},O=Test`, { pool: i }));
  const results = await Promise.all(devices.map((d) => enroll(s.url, certs, d, c!)));
  assert.equal(results.filter((r) => r.status === PkiStatus.SUCCESS).length, 1);
  assert.ok(results.every((r) => r.status === PkiStatus.SUCCESS || r.failInfo === FailInfo.badRequest));
  assert.equal((await s.enrollment!.store.searchCertificates({ subject: 'race-' })).total, 1);

  // A second instance on the same data directory and SQLite file.
  const other = await startServer({
    dataDir: s.dataDir!.dataDir,
    keySize: 2048,
    challenge: TEST_CHALLENGE,
    logLevel: 'silent',
  });
  t.after(() => other.close());
  for (let round = 0; round < 3; round++) {
    const [c2] = await mint(s);
    const a = device(`CN=inst-a-${round},O=Test`, { pool: 1 });
    const b = device(`CN=inst-b-${round},O=Test`, { pool: 2 });
    const [ra, rb] = await Promise.all([enroll(s.url, certs, a, c2!), enroll(other.url, certs, b, c2!)]);
    assert.equal(
      [ra, rb].filter((r) => r.status === PkiStatus.SUCCESS).length,
      1,
      `round ${round}: one instance wins`,
    );
  }
});

test('manual approval: a one-time challenge is bound to the pending request; challenge-or-manual issues at once', async (t) => {
  const s = await testServer(t, { lifecycle: { approval: { mode: 'manual' } } });
  const certs = await caCerts(s.url);
  const [c] = await mint(s);
  const d1 = device('CN=manual-otc-1,O=Test', { pool: 1 });
  const p1 = await enroll(s.url, certs, d1, c!);
  assert.equal(p1.status, PkiStatus.PENDING);
  const store = s.enrollment!.store;
  const tx = await store.getTransaction(p1.transactionId);
  assert.equal(tx?.meta?.challenge, 'valid');
  assert.equal(tx?.meta?.challengeKind, 'one-time');

  // While pending, nobody else can use the challenge.
  const d2 = device('CN=manual-otc-2,O=Test', { pool: 2 });
  const p2 = await enroll(s.url, certs, d2, c!);
  assert.equal(p2.status, PkiStatus.FAILURE);
  assert.equal(p2.failInfo, FailInfo.badRequest);

  // The device's resend stays PENDING (no challenge needed again); after approval it gets its certificate.
  assert.equal(
    (await enroll(s.url, certs, d1, c!, { transactionId: p1.transactionId })).status,
    PkiStatus.PENDING,
  );
  assert.equal(await store.decide(p1.transactionId, 'approved'), true);
  const done = await enroll(s.url, certs, d1, c!, { transactionId: p1.transactionId });
  assert.equal(done.status, PkiStatus.SUCCESS);
  const again = await enroll(s.url, certs, d1, c!, { transactionId: p1.transactionId });
  assert.equal(again.serial, done.serial);

  const s2 = await testServer(t, { lifecycle: { approval: { mode: 'challenge-or-manual' } } });
  const certs2 = await caCerts(s2.url);
  const [c2] = await mint(s2);
  assert.equal((await enroll(s2.url, certs2, d1, c2!)).status, PkiStatus.SUCCESS);
  assert.equal((await enroll(s2.url, certs2, d2, c2!)).status, PkiStatus.FAILURE, 'spent');
});

test('admin endpoint: 404 without a configured token, 401 without/with a wrong token, mints with the right one', async (t) => {
  const off = await testServer(t);
  const r0 = await fetch(`${off.origin}/admin/challenge`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  assert.equal(r0.status, 404, 'never enabled without a token');

  const log = logSink();
  const s = await testServer(t, {
    challenges: { adminToken: ADMIN_TOKEN, ttlSeconds: 600 },
    logLevel: 'info',
    logStream: log.stream,
  });
  const url = `${s.origin}/admin/challenge`;
  assert.equal((await fetch(url, { method: 'POST' })).status, 401);
  const wrong = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}x` } });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.headers.get('www-authenticate'), 'Bearer realm="scepter admin"');
  assert.equal((await fetch(url, { method: 'POST', headers: { authorization: 'Basic abc' } })).status, 401);

  const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const plain = await fetch(url, { method: 'POST', headers: auth });
  assert.equal(plain.status, 200);
  assert.match(plain.headers.get('content-type') ?? '', /^text\/plain/);
  assert.equal(plain.headers.get('cache-control'), 'no-store');
  const c1 = (await plain.text()).trim();
  const before = Date.now();
  const js = await fetch(`${url}?ttl=120`, {
    method: 'POST',
    headers: { ...auth, accept: 'application/json' },
  });
  const body = (await js.json()) as { challenge: string; expiresAt: string };
  // Bracketed by the clock before and after the request (second precision), however long it took.
  const expires = Date.parse(body.expiresAt);
  assert.ok(
    expires >= before + 119_000 && expires <= Date.now() + 121_000,
    `ttl honoured (expires ${body.expiresAt}, asked at ${new Date(before).toISOString()})`,
  );
  assert.equal((await fetch(`${url}?ttl=1`, { method: 'POST', headers: auth })).status, 400);

  const certs = await caCerts(s.url);
  const d = device('CN=admin-otc,O=Test', { pool: 3 });
  assert.equal((await enroll(s.url, certs, d, c1)).status, PkiStatus.SUCCESS);
  assert.equal((await enroll(s.url, certs, d, body.challenge)).status, PkiStatus.SUCCESS);
  assert.equal(
    (await enroll(s.url, certs, device('CN=x,O=Test', { pool: 4 }), c1)).status,
    PkiStatus.FAILURE,
  );
  await s.close();
  const text = log.text();
  for (const v of [c1, body.challenge, ADMIN_TOKEN]) assert.ok(!text.includes(v), 'no secret in the log');
});

test('throttling: K challenge failures block a source until the window passes; other sources and renewals unaffected', async (t) => {
  let now = Date.now();
  const s = await testServer(t, {
    workers: 2,
    challenges: { throttle: { maxFailures: 3, windowSeconds: 60, now: () => now } },
  });
  const certs = await caCerts(s.url);
  const d = device('CN=throttle,O=Test', { pool: 5 });
  // A missing challenge and other failures do not count; wrong challenges do.
  assert.equal((await enroll(s.url, certs, d, '')).status, PkiStatus.FAILURE);
  for (let i = 0; i < 3; i++) {
    const r = await enroll(s.url, certs, d, `wrong-${i}`);
    assert.equal(r.status, PkiStatus.FAILURE);
    assert.match(r.text ?? '', /not valid/);
  }
  const blocked = await enroll(s.url, certs, d, TEST_CHALLENGE);
  assert.equal(blocked.status, PkiStatus.FAILURE, 'a correct challenge is refused unchecked');
  assert.equal(blocked.failInfo, FailInfo.badRequest);
  assert.equal(blocked.text, THROTTLED_TEXT);
  // Another source address is unaffected.
  const fromOther = await enroll(s.url, certs, d, TEST_CHALLENGE, { from: '127.0.0.2' });
  assert.equal(fromOther.status, PkiStatus.SUCCESS);
  // A renewal from the blocked source (signed by the certificate just issued) needs no challenge: not throttled.
  const issued = fromOther.cert!;
  const renewTx = `renew-${fromOther.transactionId}`;
  const m = encodePkiRequest({
    messageType: MessageType.RenewalReq,
    transactionId: renewTx,
    signerCert: issued,
    signerKey: d.key,
    digest: 'sha256',
    recipient: recipientOf(certs),
    cipher: 'aes128',
    content: buildCsr({ subject: issued.subjectRaw, key: d.key, publicKey: createPublicKey(d.key) }),
  });
  const renewed = decodeCertRep((await postPki(s.url, m.der)).body, {
    transactionId: renewTx,
    senderNonce: m.senderNonce,
    trustedSigners: certs,
    decrypt: { cert: issued, key: d.key },
  });
  assert.equal(renewed.status, PkiStatus.SUCCESS, renewed.failInfoText);
  now += 61_000;
  assert.equal((await enroll(s.url, certs, d, TEST_CHALLENGE)).status, PkiStatus.SUCCESS, 'released');
});

test('CLI: `scepter serve --no-static-challenge --admin-token-file` and `scepter challenge new` mint working challenges', async (t) => {
  const data = tempDir(t, 'scepter-otc-cli-');
  const tokenFile = join(data, '..', `${data.split('/').pop()}-token`);
  writeFileSync(tokenFile, ADMIN_TOKEN + '\n', { mode: 0o600 });
  t.after(() => rmSync(tokenFile, { force: true }));
  seedCa(data); // a fixture CA: serve would otherwise generate a 3072-bit key first
  const cli = ['--import', 'tsx', join(ROOT, 'src/cli/main.ts')];
  const proc = spawn(
    process.execPath,
    [
      ...cli,
      'serve',
      '--data',
      data,
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--workers',
      '2',
      '--no-static-challenge',
      '--admin-token-file',
      tokenFile,
      '--challenge-max-failures',
      '5',
      '--challenge-window',
      '1m',
    ],
    { cwd: ROOT },
  );
  t.after(() => proc.kill('SIGKILL'));
  let out = '';
  proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${out}`)), 60_000);
    // The banner is on stderr (log lines on stdout).
    proc.stderr.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /SCEP server listening on (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.on('exit', (code) => reject(new Error(`serve exited (${code}):\n${out}`)));
  });
  assert.match(out, /static challenge disabled/);
  assert.match(out, /challenge failures throttled: 5 per 1m/);

  const minted = spawnSync(
    process.execPath,
    [...cli, 'challenge', 'new', '--data', data, '--count', '2', '--json', '--ttl', '10m'],
    {
      cwd: ROOT,
      encoding: 'utf8',
    },
  );
  assert.equal(minted.status, 0, minted.stderr);
  const j = JSON.parse(minted.stdout) as { expiresAt: string; challenges: string[] };
  assert.equal(j.challenges.length, 2);
  const textOut = spawnSync(process.execPath, [...cli, 'challenge', 'new', '--data', data], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  assert.equal(textOut.status, 0, textOut.stderr);
  const c3 = textOut.stdout.trim();
  assert.equal(c3.length, ONE_TIME_CHALLENGE_LENGTH);

  const origin = new URL(url).origin;
  const api = await fetch(`${origin}/admin/challenge`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  assert.equal(api.status, 200);
  const c4 = (await api.text()).trim();

  const certs = await caCerts(url);
  for (const [i, c] of [...j.challenges, c3, c4].entries()) {
    const r = await enroll(url, certs, device(`CN=cli-otc-${i},O=Test`, { pool: i }), c);
    assert.equal(r.status, PkiStatus.SUCCESS, `challenge ${i}: ${r.text ?? ''}`);
  }
  const reuse = await enroll(url, certs, device('CN=cli-otc-x,O=Test', { pool: 6 }), c3);
  assert.equal(reuse.status, PkiStatus.FAILURE);
  proc.kill('SIGTERM');
  await new Promise((r) => proc.once('exit', r));
  for (const v of [...j.challenges, c3, c4, ADMIN_TOKEN])
    assert.ok(!out.includes(v), 'no secret in the server output');
});
