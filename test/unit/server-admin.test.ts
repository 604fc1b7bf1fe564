/**
 * The operator HTTP API under /admin/ (src/server/admin-routes.ts), driven with fetch against
 * startServer: 404 without a configured token and 401 with a missing/wrong one; a manual
 * approval run entirely over HTTP (the ScepClient device gets PENDING, the operator approves,
 * the device's poll gets the certificate; a rejection gives FAILURE with the reason); the
 * certificate search filters; revocation publishing a CRL at once (checked with
 * `openssl crl -text`); 400/404/409/413 answers; one log line per action, never the token.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  ScepClient,
  ScepFailureError,
  type IssuedResult,
  type PendingResult,
} from '../../src/client/index.js';
import { fromPem, parseCertificate } from '../../src/pkix/certificate.js';
import type { RunningServer } from '../../src/server/index.js';
import { logSink } from '../helpers/log-sink.js';
import { hasCommand } from '../helpers/peers.js';
import { pooledRsaKey } from '../helpers/pki.js';
import { testServer, TEST_CHALLENGE } from '../helpers/scep-server.js';

const TOKEN = 'operator-token-0123456789abcdef';
const AUTH = { authorization: `Bearer ${TOKEN}` };

interface Answer {
  status: number;
  json: Record<string, unknown>;
  type: string | null;
}

async function call(
  s: RunningServer,
  method: string,
  path: string,
  o: { body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const r = await fetch(`${s.origin}${path}`, {
    method,
    headers: {
      ...AUTH,
      ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...o.headers,
    },
    ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : o.raw !== undefined ? { body: o.raw } : {}),
  });
  const text = await r.text();
  const type = r.headers.get('content-type');
  let json: Record<string, unknown> = {};
  if (type?.startsWith('application/json')) json = JSON.parse(text) as Record<string, unknown>;
  return { status: r.status, json, type };
}

test('auth: every /admin/* is 404 without a configured token; 401 with a missing or wrong token', async (t) => {
  const off = await testServer(t, { lifecycle: { approval: { mode: 'manual' } } });
  for (const [m, p] of [
    ['GET', '/admin/pending'],
    ['GET', '/admin/certificates'],
    ['POST', '/admin/certificates/01/revoke'],
    ['POST', '/admin/pending/x/approve'],
    ['GET', '/admin/anything'],
  ] as const) {
    const r = await call(off, m, p);
    assert.equal(r.status, 404, `${m} ${p}`);
  }

  const s = await testServer(t, { challenges: { adminToken: TOKEN } });
  for (const headers of [
    { authorization: '' },
    { authorization: 'Bearer wrong-token-0123456789' },
    { authorization: `Basic ${TOKEN}` },
  ]) {
    const r = await fetch(`${s.origin}/admin/pending`, { headers });
    assert.equal(r.status, 401);
    assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="scepter admin"');
    assert.deepEqual(await r.json(), { error: 'unauthorized' });
  }
  // Unauthenticated requests never reach a handler: no body parsing, no existence oracle.
  const unknown = await fetch(`${s.origin}/admin/nope`, { method: 'POST', body: 'x' });
  assert.equal(unknown.status, 401);
  const ok = await call(s, 'GET', '/admin/pending');
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.json, { total: 0, items: [] });
  const other = await call(s, 'GET', '/admin/nope');
  assert.equal(other.status, 404);
  assert.deepEqual(other.json, { error: 'no such admin endpoint' });
});

for (const workers of [1, 2]) {
  test(`manual approval over HTTP (workers ${workers}): PENDING, approve → poll gets the certificate; reject → FAILURE`, async (t) => {
    const log = logSink();
    const s = await testServer(t, {
      workers,
      challenges: { adminToken: TOKEN },
      lifecycle: { approval: { mode: 'manual' } },
      logLevel: 'info',
      logStream: log.stream,
    });
    const c = new ScepClient({ url: s.url });
    const a = (await c.enroll({
      subject: 'CN=approve-me,O=Test',
      sans: 'dns:approve-me.example',
      challenge: TEST_CHALLENGE,
      key: pooledRsaKey(1, 2048),
    })) as PendingResult;
    assert.equal(a.status, 'pending');
    const b = (await c.enroll({
      subject: 'CN=reject-me,O=Test',
      key: pooledRsaKey(2, 2048),
    })) as PendingResult;
    assert.equal(b.status, 'pending');

    const list = await call(s, 'GET', '/admin/pending');
    assert.equal(list.status, 200);
    assert.equal(list.json.total, 2);
    const items = list.json.items as Record<string, unknown>[];
    const ia = items.find((x) => x.transactionId === a.transactionId)!;
    assert.equal(ia.subject, 'CN=approve-me,O=Test');
    assert.deepEqual(ia.sans, ['dns:approve-me.example']);
    assert.equal(ia.keyType, 'rsa');
    assert.equal(ia.keyBits, 2048);
    assert.equal(ia.challenge, 'valid');
    assert.equal(ia.requester, '127.0.0.1');
    assert.ok(typeof ia.createdAt === 'string' && typeof ia.expiresAt === 'string');
    const ib = await call(s, 'GET', `/admin/pending/${encodeURIComponent(b.transactionId)}`);
    assert.equal(ib.json.challenge, 'absent');
    assert.equal(ib.json.state, 'pending');

    assert.equal((await c.poll(a)).status, 'pending');
    const approved = await call(s, 'POST', `/admin/pending/${encodeURIComponent(a.transactionId)}/approve`);
    assert.equal(approved.status, 200);
    assert.equal(approved.json.state, 'approved');
    const issued = (await c.poll(a)) as IssuedResult;
    assert.equal(issued.status, 'issued');

    const rejected = await call(s, 'POST', `/admin/pending/${encodeURIComponent(b.transactionId)}/reject`, {
      body: { reason: 'unknown device' },
    });
    assert.equal(rejected.status, 200);
    assert.equal(rejected.json.state, 'rejected');
    await assert.rejects(
      c.poll(b),
      (e: unknown) =>
        e instanceof ScepFailureError &&
        e.failInfoName === 'badRequest' &&
        /unknown device/.test(e.failInfoText ?? ''),
    );

    // Decided already: 409; unknown: 404; bad input: 400.
    const again = await call(s, 'POST', `/admin/pending/${encodeURIComponent(b.transactionId)}/approve`);
    assert.equal(again.status, 409);
    assert.match(String(again.json.error), /is rejected, not pending/);
    assert.equal((await call(s, 'POST', '/admin/pending/NO-SUCH-ID/approve')).status, 404);
    assert.equal((await call(s, 'GET', '/admin/pending/NO-SUCH-ID')).status, 404);
    assert.equal((await call(s, 'POST', `/admin/pending/${'A'.repeat(300)}/approve`)).status, 400);
    assert.equal(
      (await call(s, 'POST', `/admin/pending/${a.transactionId}/approve`, { body: { reason: 'x' } })).status,
      400,
      'approve takes no reason',
    );
    assert.equal(
      (await call(s, 'POST', '/admin/pending/X/reject', { body: { reason: 'r'.repeat(600) } })).status,
      400,
    );
    assert.equal(
      (await call(s, 'POST', '/admin/pending/X/reject', { body: { reason: 'a\nb' } })).status,
      400,
    );
    assert.equal((await call(s, 'POST', '/admin/pending/X/reject', { raw: '{not json' })).status, 400);
    assert.equal((await call(s, 'POST', '/admin/pending/X/reject', { body: { other: 1 } })).status, 400);
    assert.equal((await call(s, 'POST', '/admin/pending/X/reject', { body: [1] })).status, 400);
    const big = await call(s, 'POST', '/admin/pending/X/reject', {
      raw: JSON.stringify({ reason: 'x'.repeat(40_000) }),
    });
    assert.equal(big.status, 413);
    assert.match(String(big.json.error), /larger than/);
    assert.equal((await call(s, 'GET', '/admin/pending?state=bogus')).status, 400);
    assert.equal((await call(s, 'GET', '/admin/pending?limit=501')).status, 400, 'hard page limit');
    assert.equal((await call(s, 'GET', '/admin/pending?limit=500')).status, 200);
    assert.equal((await call(s, 'GET', '/admin/pending?cursor=bogus')).status, 400);
    assert.equal((await call(s, 'GET', '/admin/pending?since=yesterday')).status, 400);
    assert.equal((await call(s, 'GET', '/admin/pending?order=random')).status, 400);
    assert.equal((await call(s, 'GET', '/admin/pending?limit=1&limit=2')).status, 400);
    assert.equal((await call(s, 'GET', '/admin/pending?foo=1')).status, 400);
    const all = await call(s, 'GET', '/admin/pending?state=all&limit=1');
    assert.equal(all.json.total, 2);
    const first = all.json.items as { transactionId: string }[];
    assert.equal(first.length, 1);
    assert.equal(first[0]!.transactionId, b.transactionId, 'newest first');
    assert.equal(typeof all.json.nextCursor, 'string');
    const second = await call(
      s,
      'GET',
      `/admin/pending?state=all&limit=1&cursor=${encodeURIComponent(String(all.json.nextCursor))}`,
    );
    assert.deepEqual(
      (second.json.items as { transactionId: string }[]).map((x) => x.transactionId),
      [a.transactionId],
    );
    assert.equal(second.json.nextCursor, undefined, 'last page has no cursor');
    const oldest = await call(s, 'GET', '/admin/pending?state=all&limit=1&order=oldest');
    assert.equal((oldest.json.items as { transactionId: string }[])[0]!.transactionId, a.transactionId);
    const bySubject = await call(s, 'GET', '/admin/pending?state=all&subject=REJECT-me');
    assert.equal(bySubject.json.total, 1);
    const future = await call(s, 'GET', '/admin/pending?state=all&since=2999-01-01');
    assert.equal(future.json.total, 0);
    const past = await call(s, 'GET', '/admin/pending?state=all&until=2000-01-01T00:00Z');
    assert.equal(past.json.total, 0);
    for (const it of [...(list.json.items as Record<string, unknown>[])])
      assert.ok(!('csr' in it), 'summaries carry no CSR');

    // One line per action with the transactionID and outcome; never the token.
    const lines = log.lines();
    const approveLine = lines.find((l) => l.operation === 'admin.pending.approve' && l.status === 200);
    assert.equal(approveLine?.transactionId, a.transactionId);
    assert.equal(approveLine?.outcome, 'SUCCESS');
    const conflict = lines.find((l) => l.operation === 'admin.pending.approve' && l.status === 409);
    assert.equal(conflict?.transactionId, b.transactionId);
    assert.equal(conflict?.outcome, 'rejected');
    assert.ok(!log.text().includes(TOKEN), 'the token is never logged');
    assert.ok(!log.text().includes(TEST_CHALLENGE), 'the challenge is never logged');
  });
}

test('certificates: search filters, show with PEM, revoke publishes the CRL at once, 404/409/400', async (t) => {
  const log = logSink();
  const s = await testServer(t, {
    challenges: { adminToken: TOKEN },
    logLevel: 'info',
    logStream: log.stream,
  });
  const c = new ScepClient({ url: s.url });
  const issued: IssuedResult[] = [];
  for (const [i, cn] of ['alpha', 'beta', 'gamma'].entries()) {
    issued.push(
      (await c.enroll({
        subject: `CN=${cn},O=Search`,
        sans: `dns:${cn}.example`,
        challenge: TEST_CHALLENGE,
        key: pooledRsaKey(3 + i, 2048),
      })) as IssuedResult,
    );
  }
  const [alpha, beta] = issued.map((r) => r.certificate.serialHex);

  const q = async (query: string) => {
    const r = await call(s, 'GET', `/admin/certificates${query}`);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    return r.json as { total: number; items: { serial: string; commonName: string; status: string }[] };
  };
  assert.equal((await q('')).total, 3);
  assert.deepEqual(
    (await q('?cn=ALP')).items.map((x) => x.serial),
    [alpha],
  );
  assert.equal((await q('?subject=o%3Dsearch')).total, 3);
  assert.deepEqual(
    (await q('?san=dns:beta.example')).items.map((x) => x.serial),
    [beta],
  );
  assert.deepEqual(
    (await q('?san=beta.example')).items.map((x) => x.serial),
    [beta],
  );
  assert.deepEqual(
    (await q(`?serial=${alpha!.toUpperCase()}`)).items.map((x) => x.commonName),
    ['alpha'],
  );
  assert.equal((await q('?expiringDays=36500')).total, 3);
  assert.equal((await q('?expiringDays=0')).total, 0);
  const page1 = (await q('?limit=2')) as { total: number; items: unknown[]; nextCursor?: string };
  assert.equal(page1.items.length, 2);
  assert.ok(page1.nextCursor);
  const page = (await q(`?limit=2&cursor=${page1.nextCursor}`)) as {
    total: number;
    items: unknown[];
    nextCursor?: string;
  };
  assert.equal(page.total, 3);
  assert.equal(page.items.length, 1);
  assert.equal(page.nextCursor, undefined);
  assert.equal((await q('?since=2999-01-01')).total, 0);
  assert.equal((await q('?until=2999-01-01')).total, 3);
  for (const bad of [
    '?status=maybe',
    '?serial=xyz',
    '?limit=0',
    '?limit=5000',
    '?expiringDays=-1',
    `?subject=${'s'.repeat(300)}`,
    '?offset=2',
    '?cursor=2',
    '?limit=501',
    '?since=tomorrow',
  ])
    assert.equal((await call(s, 'GET', `/admin/certificates${bad}`)).status, 400, bad);

  const shown = await call(s, 'GET', `/admin/certificates/${alpha}`);
  assert.equal(shown.status, 200);
  assert.equal(shown.json.status, 'valid');
  assert.ok(fromPem(String(shown.json.pem))[0]!.equals(issued[0]!.certificate.der));
  assert.equal((await call(s, 'GET', '/admin/certificates/00ffee1234')).status, 404);
  assert.equal((await call(s, 'GET', '/admin/certificates/not-hex')).status, 400);

  // Revoke: bad reason 400, unknown 404, success publishes, again 409.
  assert.equal(
    (await call(s, 'POST', `/admin/certificates/${alpha}/revoke`, { body: { reason: 'because' } })).status,
    400,
  );
  assert.equal(
    (await call(s, 'POST', `/admin/certificates/${alpha}/revoke`, { body: { reason: true } })).status,
    400,
  );
  assert.equal(
    (await call(s, 'POST', '/admin/certificates/0abc/revoke', { body: { reason: 'keyCompromise' } })).status,
    404,
  );
  assert.equal((await call(s, 'POST', '/admin/certificates/zz/revoke')).status, 400);
  const before = await s.enrollment!.store.latestCrl(s.lifecycle!.crls.currentIssuer);
  const rv = await call(s, 'POST', `/admin/certificates/${alpha}/revoke`, {
    body: { reason: 'keyCompromise' },
  });
  assert.equal(rv.status, 200, JSON.stringify(rv.json));
  assert.equal(rv.json.status, 'revoked');
  assert.equal(rv.json.revocationReason, 'keyCompromise');
  const crlInfo = rv.json.crl as { crlNumber: string };
  assert.ok(BigInt(crlInfo.crlNumber) > (before?.crlNumber ?? 0n));
  const again = await call(s, 'POST', `/admin/certificates/${alpha}/revoke`, { body: { reason: 1 } });
  assert.equal(again.status, 409);
  assert.match(String(again.json.error), /already revoked/);
  assert.deepEqual(
    (await q('?status=revoked')).items.map((x) => x.serial),
    [alpha],
  );
  assert.equal((await q('?status=valid')).total, 2);

  const crl = await fetch(`${s.origin}/crl`);
  assert.equal(crl.status, 200);
  const der = Buffer.from(await crl.arrayBuffer());
  if (hasCommand('openssl')) {
    const o = spawnSync('openssl', ['crl', '-inform', 'DER', '-noout', '-text'], {
      input: der,
      encoding: 'utf8',
    });
    assert.equal(o.status, 0, o.stderr);
    assert.match(o.stdout, new RegExp(`Serial Number: ${alpha!.toUpperCase()}`));
    assert.match(o.stdout, /Key Compromise/);
    assert.ok(!o.stdout.includes(`Serial Number: ${beta!.toUpperCase()}`));
  } else {
    t.diagnostic('SKIP: openssl is not available; CRL checked by parsing only');
  }
  // The revoked certificate is still parseable and the CRL came from the store.
  assert.ok(parseCertificate(issued[0]!.certificate.der));

  const revokeLine = log.lines().find((l) => l.operation === 'admin.certificates.revoke' && l.status === 200);
  assert.equal(revokeLine?.serial, alpha);
  assert.equal(revokeLine?.outcome, 'SUCCESS');
  assert.ok(!log.text().includes(TOKEN));
});

test('admin filters ?profile= and ?ca=; a serial two CAs issued needs ?ca= to show or revoke', async (t) => {
  const s = await testServer(t, {
    challenges: { adminToken: TOKEN },
    lifecycle: { approval: { mode: 'challenge-or-manual' } },
  });
  const c = new ScepClient({ url: s.url });
  const issued = (await c.enroll({
    subject: 'CN=laptop,O=Profiles',
    challenge: TEST_CHALLENGE,
    key: pooledRsaKey(6, 2048),
  })) as IssuedResult;
  const pending = (await c.enroll({
    subject: 'CN=router,O=Profiles',
    key: pooledRsaKey(7, 2048),
  })) as PendingResult;
  assert.equal(pending.status, 'pending');
  const store = s.enrollment!.store;
  const serial = issued.certificate.serialHex;
  const rec = (await store.getCertificate(serial))!;
  // Another CA's certificate under the same serial, issued under profile `edge`.
  await store.insertCertificate({
    ...rec,
    issuer: 'c'.repeat(64),
    transactionId: null,
    ca: 'routers',
    profile: 'edge',
  });
  await store.beginTransaction({
    transactionId: 'edge-1',
    signerKeyHash: 'ab',
    messageType: 19,
    state: 'pending',
    subject: 'CN=edge-router',
    ca: 'routers',
    profile: 'edge',
  });

  const get = async (path: string) => {
    const r = await call(s, 'GET', path);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    return r.json as { total: number; items: Array<{ ca: string; profile: string; subject: string }> };
  };
  assert.equal((await get('/admin/certificates')).total, 2);
  assert.deepEqual(
    (await get('/admin/certificates?profile=edge')).items.map((x) => [x.ca, x.profile]),
    [['routers', 'edge']],
  );
  assert.deepEqual(
    (await get('/admin/certificates?ca=default')).items.map((x) => [x.ca, x.profile]),
    [['default', 'default']],
  );
  assert.deepEqual(
    (await get('/admin/pending?profile=edge')).items.map((x) => x.subject),
    ['CN=edge-router'],
  );
  assert.deepEqual(
    (await get('/admin/pending?profile=default')).items.map((x) => x.subject),
    ['CN=router,O=Profiles'],
  );
  assert.equal((await get('/admin/pending?ca=routers')).total, 1);
  assert.equal((await call(s, 'GET', '/admin/certificates?profile=%2A')).status, 400);

  // The serial is ambiguous without ?ca=.
  const show = await call(s, 'GET', `/admin/certificates/${serial}`);
  assert.equal(show.status, 400);
  assert.match(String(show.json.error), /several CAs \(.*routers.*\)/);
  const mine = await call(s, 'GET', `/admin/certificates/${serial}?ca=routers`);
  assert.equal(mine.status, 200);
  assert.equal(mine.json.profile, 'edge');
  assert.equal((await call(s, 'POST', `/admin/certificates/${serial}/revoke`, { body: {} })).status, 400);
  // This server holds only the default CA: the routers CA's certificate cannot be revoked here.
  assert.equal(
    (await call(s, 'POST', `/admin/certificates/${serial}/revoke?ca=routers`, { body: {} })).status,
    409,
  );
  const revoked = await call(s, 'POST', `/admin/certificates/${serial}/revoke?ca=default`, {
    body: { reason: 'keyCompromise' },
  });
  assert.equal(revoked.status, 200, JSON.stringify(revoked.json));
  assert.equal((await store.getCertificate(serial))?.status, 'revoked');
  assert.equal((await store.getCertificate(serial, 'routers'))?.status, 'valid');
});
