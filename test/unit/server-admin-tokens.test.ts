/**
 * Named admin tokens (src/server/admin-auth.ts): the tokens file format and its errors (which
 * never quote a secret), every named token authenticating as its own name on every admin
 * route (the name in the request's log line, the secret never), the single legacy token as
 * the admin named `admin`, 401 for anything else.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AdminTokenError,
  bearerTokenAuth,
  parseAdminTokens,
  type AdminToken,
} from '../../src/server/admin-auth.js';
import { SecretMatcher } from '../../src/crypto/secret-match.js';
import { logSink } from '../helpers/log-sink.js';
import { testServer } from '../helpers/scep-server.js';

const ALICE = 'alice-secret-0123456789abcdef';
const BOB = 'bob-secret-0123456789abcdef01';
const LEGACY = 'legacy-token-0123456789abcdef';

test('parseAdminTokens: name/secret lines, comments, errors name the line but never the secret', () => {
  assert.deepEqual(parseAdminTokens(`# operators\n\nalice ${ALICE}\n  bob\t${BOB}  \r\n`), [
    { name: 'alice', secret: ALICE },
    { name: 'bob', secret: BOB },
  ]);
  const bad: Array<[string, RegExp]> = [
    [`alice ${ALICE} extra`, /line 1: expected "name secret"/],
    [`alice`, /line 1/],
    [`alice short`, /at least 16/],
    [`al ice ${ALICE}`, /line 1/],
    [`al/ice ${ALICE}`, /token name "al\/ice"/],
    [`alice ${ALICE}\nalice ${BOB}`, /given twice/],
    [`alice ${ALICE}\nbob ${ALICE}`, /repeats another token/],
  ];
  for (const [text, re] of bad) {
    assert.throws(
      () => parseAdminTokens(text),
      (e: unknown) => e instanceof AdminTokenError && re.test(e.message) && !e.message.includes(ALICE),
      text,
    );
  }
});

test('SecretMatcher.indexOf: the index in the given list (empty entries skipped), -1 otherwise', () => {
  const m = new SecretMatcher(['', 'first-secret', 'second-secret']);
  assert.equal(m.indexOf('second-secret'), 2);
  assert.equal(m.indexOf('first-secret'), 1);
  assert.equal(m.indexOf('first-secreT'), -1);
  assert.equal(m.indexOf(''), -1);
  assert.equal(m.matches('first-secret'), true);
});

test('bearerTokenAuth: the name of the matching token; disabled without tokens', () => {
  const tokens: AdminToken[] = [
    { name: 'alice', secret: ALICE },
    { name: 'bob', secret: BOB },
  ];
  const auth = bearerTokenAuth(tokens);
  const req = (authorization?: string) =>
    ({ headers: authorization === undefined ? {} : { authorization } }) as Parameters<
      typeof auth.authenticate
    >[0];
  assert.equal(auth.enabled, true);
  assert.equal(auth.authenticate(req(`Bearer ${ALICE}`)), 'alice');
  assert.equal(auth.authenticate(req(`bearer ${BOB} `)), 'bob');
  assert.equal(auth.authenticate(req(`Bearer ${ALICE}x`)), null);
  assert.equal(auth.authenticate(req(`Basic ${ALICE}`)), null);
  assert.equal(auth.authenticate(req()), null);
  const off = bearerTokenAuth([]);
  assert.equal(off.enabled, false);
  assert.equal(off.authenticate(req(`Bearer ${ALICE}`)), null);
  assert.throws(() => bearerTokenAuth([{ name: 'x', secret: 'too-short' }]), AdminTokenError);
});

test('server: each named token is its own admin on every admin route; the legacy token is `admin`', async (t) => {
  const log = logSink();
  const s = await testServer(t, {
    adminTokens: [
      { name: 'alice', secret: ALICE },
      { name: 'bob', secret: BOB },
    ],
    challenges: { adminToken: LEGACY },
    logLevel: 'info',
    logStream: log.stream,
  });
  for (const [secret, name] of [
    [ALICE, 'alice'],
    [BOB, 'bob'],
    [LEGACY, 'admin'],
  ] as const) {
    const list = await fetch(`${s.origin}/admin/pending?limit=1`, {
      headers: { authorization: `Bearer ${secret}` },
    });
    assert.equal(list.status, 200, name);
    const mint = await fetch(`${s.origin}/admin/challenge`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secret}` },
    });
    assert.equal(mint.status, 200, name);
    await mint.text();
    await list.text();
    const lines = log.lines().filter((l) => l.admin === name);
    assert.deepEqual(
      lines.map((l) => l.operation),
      ['admin.pending.list', 'AdminChallenge'],
      `log lines of ${name}`,
    );
  }
  const wrong = await fetch(`${s.origin}/admin/pending`, { headers: { authorization: `Bearer ${ALICE}0` } });
  assert.equal(wrong.status, 401);
  await wrong.text();
  const text = log.text();
  for (const secret of [ALICE, BOB, LEGACY]) assert.ok(!text.includes(secret), 'a secret in the log');
});
