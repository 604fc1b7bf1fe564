/**
 * The web console's server side (src/server/console-routes.ts, console-session.ts) over HTTP:
 * 404 without an admin credential; security headers; login by bearer token → HttpOnly,
 * SameSite=Strict session cookie; the admin API accepts the session, state changes only with
 * its CSRF token; forged or expired sessions are refused; logout; sessions work across
 * instances sharing the data directory (one with worker threads); `GET /admin/dashboard`.
 * The browser itself is tested in test/interop/console-chromium.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import type { FastifyRequest } from 'fastify';
import { ConsoleSessions, CSRF_HEADER, SESSION_COOKIE } from '../../src/server/console-session.js';
import { CONSOLE_CSP } from '../../src/server/console-routes.js';
import { ensureConsoleBuilt } from '../helpers/build.js';
import { logSink } from '../helpers/log-sink.js';
import { makeSelfSigned, pooledRsaKey } from '../helpers/pki.js';
import { tempDir, testServer } from '../helpers/scep-server.js';
import { ScepClient, type PendingResult } from '../../src/client/index.js';

const TOKEN = 'unit-console-token-0123456789';
const BOB = 'bobs-console-token-9876543210';

interface Login {
  cookie: string;
  setCookie: string;
  csrf: string;
  admin: string;
}

async function login(origin: string, token = TOKEN): Promise<Login> {
  const r = await fetch(`${origin}/ui/api/login`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(r.status, 200, await r.clone().text());
  const setCookie = r.headers.get('set-cookie') ?? '';
  const body = (await r.json()) as { csrfToken: string; admin: string };
  return { cookie: setCookie.split(';')[0]!, setCookie, csrf: body.csrfToken, admin: body.admin };
}

test('without an admin credential the console and the admin API answer 404', async (t) => {
  const s = await testServer(t, { console: { dir: ensureConsoleBuilt() } });
  for (const [method, path] of [
    ['GET', '/ui/'],
    ['GET', '/ui/assets/app.js'],
    ['POST', '/ui/api/login'],
    ['GET', '/admin/dashboard'],
  ] as const) {
    const r = await fetch(`${s.origin}${path}`, { method });
    assert.equal(r.status, 404, `${method} ${path}`);
  }
});

test('console: headers, login, session on the admin API, CSRF, forgery, logout, named admins', async (t) => {
  const log = logSink();
  const s = await testServer(t, {
    challenges: { adminToken: TOKEN },
    adminTokens: [{ name: 'bob', secret: BOB }],
    console: { dir: ensureConsoleBuilt() },
    logLevel: 'info',
    logStream: log.stream,
  });
  const o = s.origin;

  const page = await fetch(`${o}/ui/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
  assert.equal(page.headers.get('content-security-policy'), CONSOLE_CSP);
  assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(page.headers.get('x-frame-options'), 'DENY');
  const html = await page.text();
  assert.doesNotMatch(html, /<script>|<style|\sstyle=|\son[a-z]+=/i, 'no inline script or style');
  assert.doesNotMatch(html, /https?:\/\//, 'no other host');
  const js = await fetch(`${o}/ui/assets/app.js`);
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
  assert.equal((await fetch(`${o}/ui/assets/..%2fconsole-session.key`)).status, 404);
  assert.equal((await fetch(`${o}/ui/assets/nope.js`)).status, 404);

  // Login: only with a right bearer token.
  assert.equal((await fetch(`${o}/ui/api/login`, { method: 'POST' })).status, 401);
  const wrong = await fetch(`${o}/ui/api/login`, {
    method: 'POST',
    headers: { authorization: 'Bearer wrong-token-wrong-token' },
  });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.headers.get('set-cookie'), null);
  const a = await login(o);
  assert.equal(a.admin, 'admin');
  assert.match(a.setCookie, new RegExp(`^${SESSION_COOKIE}=`));
  assert.match(a.setCookie, /; HttpOnly/i);
  assert.match(a.setCookie, /; SameSite=Strict/i);
  assert.match(a.setCookie, /; Path=\//i);
  assert.doesNotMatch(a.setCookie, /; Secure/i, 'plain HTTP: no Secure attribute');
  assert.equal((await login(o, BOB)).admin, 'bob', 'the session carries the named token');

  // Reads with the session alone; no session → 401.
  const dash = await fetch(`${o}/admin/dashboard`, { headers: { cookie: a.cookie } });
  assert.equal(dash.status, 200);
  const d = (await dash.json()) as {
    pending: number;
    cas: Array<{ ca: string; current: boolean; crl: unknown }>;
    issuedPerDay: unknown[];
  };
  assert.equal(d.pending, 0);
  assert.equal(d.issuedPerDay.length, 14);
  assert.deepEqual(
    d.cas.filter((c) => c.current).map((c) => c.ca),
    ['default'],
  );
  assert.equal((await fetch(`${o}/admin/dashboard`)).status, 401);
  assert.equal((await fetch(`${o}/ui/api/session`)).status, 401);
  const renewed = await fetch(`${o}/ui/api/session`, { headers: { cookie: a.cookie } });
  assert.equal(renewed.status, 200);
  assert.match(renewed.headers.get('set-cookie') ?? '', /HttpOnly/i, 'the session is renewed');

  // State changes: the session only with its CSRF token.
  const mint = (headers: Record<string, string>) =>
    fetch(`${o}/admin/challenge?format=json`, { method: 'POST', headers });
  assert.equal((await mint({ cookie: a.cookie })).status, 401, 'no CSRF token');
  assert.equal(
    (await mint({ cookie: a.cookie, [CSRF_HEADER]: 'A'.repeat(43) })).status,
    401,
    'wrong CSRF token',
  );
  const b = await login(o, BOB);
  assert.equal(
    (await mint({ cookie: a.cookie, [CSRF_HEADER]: b.csrf })).status,
    401,
    "another session's token",
  );
  const ok = await mint({ cookie: a.cookie, [CSRF_HEADER]: a.csrf });
  assert.equal(ok.status, 200);
  assert.match(((await ok.json()) as { challenge: string }).challenge, /^[A-Za-z0-9]+$/);
  const revoke = await fetch(`${o}/admin/certificates/01/revoke`, {
    method: 'POST',
    headers: { cookie: a.cookie },
  });
  assert.equal(revoke.status, 401, 'revocation without the CSRF token');
  // The audit trail names the session's admin (bob's session mints one challenge).
  const byBob = await mint({ cookie: b.cookie, [CSRF_HEADER]: b.csrf });
  assert.equal(byBob.status, 200);
  const audit = await fetch(`${o}/admin/audit?action=challenge.minted`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(audit.status, 200);
  const actors = ((await audit.json()) as { items: Array<{ actor: string }> }).items
    .map((x) => x.actor)
    .sort();
  assert.deepEqual(actors, ['admin', 'bob'], 'one minted by the admin session, one by bob’s');

  // Forged cookies: another MAC, another admin name, another expiry.
  const [, value] = a.cookie.split('=');
  const parts = value!.split('.');
  const forge = (i: number, v: string) => {
    const p = [...parts];
    p[i] = v;
    return `${SESSION_COOKIE}=${p.join('.')}`;
  };
  const mac = parts[5]!;
  for (const cookie of [
    forge(5, (mac[0] === 'A' ? 'B' : 'A') + mac.slice(1)),
    forge(4, Buffer.from('bob').toString('base64url')),
    forge(1, String(Number(parts[1]) + 3600)),
    `${SESSION_COOKIE}=x`,
  ])
    assert.equal((await fetch(`${o}/admin/dashboard`, { headers: { cookie } })).status, 401, cookie);

  // Logout needs the CSRF token, then the session is dead here.
  assert.equal(
    (await fetch(`${o}/ui/api/logout`, { method: 'POST', headers: { cookie: a.cookie } })).status,
    403,
  );
  const out = await fetch(`${o}/ui/api/logout`, {
    method: 'POST',
    headers: { cookie: a.cookie, [CSRF_HEADER]: a.csrf },
  });
  assert.equal(out.status, 200);
  assert.match(out.headers.get('set-cookie') ?? '', /Max-Age=0/i);
  assert.equal((await fetch(`${o}/admin/dashboard`, { headers: { cookie: a.cookie } })).status, 401);

  // The log names the admin of console actions and never holds a token or a cookie.
  const text = log.text();
  for (const secret of [TOKEN, BOB, value!, a.csrf])
    assert.ok(!text.includes(secret), 'no secret in the log');
  assert.ok(
    log
      .lines()
      .some((l) => l.operation === 'AdminChallenge' && l.admin === 'admin' && l.outcome === 'SUCCESS'),
  );
});

test('sessions work across instances sharing the data directory, worker threads included', async (t) => {
  const dataDir = tempDir(t);
  const dir = ensureConsoleBuilt();
  const a = await testServer(t, { dataDir, challenges: { adminToken: TOKEN }, console: { dir } });
  const b = await testServer(t, { dataDir, challenges: { adminToken: TOKEN }, console: { dir }, workers: 2 });
  const l = await login(a.origin);
  const r = await fetch(`${b.origin}/admin/dashboard`, { headers: { cookie: l.cookie } });
  assert.equal(r.status, 200);
  const m = await fetch(`${b.origin}/admin/challenge?format=json`, {
    method: 'POST',
    headers: { cookie: l.cookie, [CSRF_HEADER]: l.csrf },
  });
  assert.equal(m.status, 200);
  // Another data directory (another key): the session means nothing there.
  const c = await testServer(t, { challenges: { adminToken: TOKEN }, console: { dir } });
  assert.equal((await fetch(`${c.origin}/admin/dashboard`, { headers: { cookie: l.cookie } })).status, 401);
});

test('pending requests show the first and the last poll (worker threads: the poll is recorded through the store RPC)', async (t) => {
  const s = await testServer(t, {
    workers: 2,
    challenges: { adminToken: TOKEN },
    lifecycle: { approval: { mode: 'manual' } },
  });
  const c = new ScepClient({ url: s.url });
  const p = (await c.enroll({ subject: 'CN=poller,O=Test', key: pooledRsaKey(3, 2048) })) as PendingResult;
  assert.equal(p.status, 'pending');
  const show = async () => {
    const r = await fetch(`${s.origin}/admin/pending/${encodeURIComponent(p.transactionId)}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    return (await r.json()) as { createdAt: string; lastPollAt: string | null };
  };
  assert.equal((await show()).lastPollAt, null, 'not polled yet');
  assert.equal((await c.poll(p)).status, 'pending');
  const v = await show();
  assert.ok(v.lastPollAt !== null && Date.parse(v.lastPollAt) >= Date.parse(v.createdAt), JSON.stringify(v));
});

test('under HTTPS the session cookie is Secure', async (t) => {
  const tlsCert = makeSelfSigned({ subject: 'CN=127.0.0.1', key: pooledRsaKey(4), days: 1 });
  const s = await testServer(t, {
    tls: { cert: tlsCert.certPem, key: tlsCert.keyPem },
    challenges: { adminToken: TOKEN },
    console: { dir: ensureConsoleBuilt() },
  });
  const setCookie = await new Promise<string>((resolve, reject) => {
    const req = httpsRequest(
      `${s.origin}/ui/api/login`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}` },
        ca: tlsCert.certPem,
        checkServerIdentity: () => undefined,
      },
      (r) => {
        r.resume();
        r.on('end', () => resolve(String(r.headers['set-cookie'] ?? '')));
      },
    );
    req.on('error', reject);
    req.end();
  });
  assert.match(setCookie, new RegExp(`^${SESSION_COOKIE}=`));
  assert.match(setCookie, /; Secure/i);
  assert.match(setCookie, /; HttpOnly/i);
  assert.match(setCookie, /; SameSite=Strict/i);
});

test('session expiry: idle timeout, absolute lifetime; cookie attributes', () => {
  let now = 1_000_000;
  const sessions = new ConsoleSessions({
    key: randomBytes(32),
    secure: true,
    idleSeconds: 600,
    maxSeconds: 3600,
    now: () => now,
  });
  const req = (cookie: string, method = 'GET') =>
    ({ method, headers: {}, cookies: { [SESSION_COOKIE]: cookie } }) as unknown as FastifyRequest;
  let s = sessions.create('admin');
  assert.equal(sessions.check(req(sessions.encode(s))).kind, 'ok');
  assert.equal(sessions.check(req(sessions.encode(s), 'POST')).kind, 'csrf');
  now += 599;
  s = sessions.renew(s);
  now += 599;
  assert.equal(sessions.check(req(sessions.encode(s))).kind, 'ok', 'renewed within the idle timeout');
  now += 601;
  assert.equal(sessions.check(req(sessions.encode(s))).kind, 'none', 'idle too long');
  // Renewals never pass the absolute lifetime.
  now = 2_000_000;
  s = sessions.create('admin');
  for (let i = 0; i < 10; i++) {
    now += 500;
    s = sessions.renew(s);
  }
  assert.equal(s.expiresAt, s.issuedAt + 3600);
  now = s.issuedAt + 3600;
  assert.equal(sessions.check(req(sessions.encode(s))).kind, 'none', 'past the absolute lifetime');
  assert.equal(sessions.cookieOptions(10).secure, true);
  assert.equal(sessions.cookieOptions(10).httpOnly, true);
  assert.equal(sessions.cookieOptions(10).sameSite, 'strict');
});
