/**
 * The audit trail end to end through a running server (src/ra/audit.ts): a real ScepClient
 * enrollment is `enroll.issued` (actor device, the source address, the serial), a wrong
 * challenge is `enroll.refused` with its reason, failInfo and transactionID (and is what
 * `GET /admin/failures` lists); the admin API's approve, reject, revoke and challenge minting
 * name the admin token's name as actor; `GET /admin/audit` filters and pages; the chain
 * verifies; no challenge (static or minted) and no token is ever in the store's audit rows.
 * With `--workers 2` enrollments in worker threads are recorded too (through the store RPC).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ScepClient,
  ScepFailureError,
  type IssuedResult,
  type PendingResult,
} from '../../src/client/index.js';
import { verifyAuditTrail } from '../../src/ra/audit.js';
import type { RunningServer } from '../../src/server/index.js';
import { pooledRsaKey } from '../helpers/pki.js';
import { testServer, TEST_CHALLENGE } from '../helpers/scep-server.js';

const ALICE = 'alice-secret-0123456789abcdef';
const BOB = 'bob-secret-0123456789abcdef01';

async function api(
  s: RunningServer,
  method: string,
  path: string,
  o: { secret?: string; body?: unknown } = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(`${s.origin}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${o.secret ?? ALICE}`,
      ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
  });
  const text = await r.text();
  return {
    status: r.status,
    json: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : {},
  };
}

type Item = Record<string, unknown> & { details?: Record<string, unknown> | null };

for (const workers of [1, 2]) {
  test(`audit trail through the server (workers ${workers})`, async (t) => {
    const s = await testServer(t, {
      workers,
      adminTokens: [
        { name: 'alice', secret: ALICE },
        { name: 'bob', secret: BOB },
      ],
      lifecycle: { approval: { mode: 'challenge-or-manual' } },
    });
    const c = new ScepClient({ url: s.url });

    // Issued at once with the challenge (actor device).
    const ok = (await c.enroll({
      subject: 'CN=audited-ok,O=Test',
      challenge: TEST_CHALLENGE,
      key: pooledRsaKey(1, 2048),
    })) as IssuedResult;
    assert.equal(ok.status, 'issued');
    // Without a challenge (challenge-or-manual): queued for an operator.
    const pending = (await c.enroll({
      subject: 'CN=audited-queued',
      key: pooledRsaKey(2, 2048),
    })) as PendingResult;
    assert.equal(pending.status, 'pending');
    const toReject = (await c.enroll({
      subject: 'CN=audited-reject',
      key: pooledRsaKey(3, 2048),
    })) as PendingResult;

    assert.equal(
      (await api(s, 'POST', `/admin/pending/${encodeURIComponent(pending.transactionId)}/approve`)).status,
      200,
    );
    assert.equal(
      (
        await api(s, 'POST', `/admin/pending/${encodeURIComponent(toReject.transactionId)}/reject`, {
          secret: BOB,
          body: { reason: 'unknown device' },
        })
      ).status,
      200,
    );
    // The rejected device polls: a signed FAILURE with the operator's reason → enroll.refused.
    await assert.rejects(c.poll(toReject), (e: unknown) => e instanceof ScepFailureError);
    // The approved device polls: issued (actor device).
    const approved = (await c.poll(pending)) as IssuedResult;
    assert.equal(approved.status, 'issued');

    const serial = ok.certificate.serialHex;
    assert.equal(
      (await api(s, 'POST', `/admin/certificates/${serial}/revoke`, { body: { reason: 'keyCompromise' } }))
        .status,
      200,
    );
    const minted = await fetch(`${s.origin}/admin/challenge?format=json`, {
      method: 'POST',
      headers: { authorization: `Bearer ${BOB}` },
    });
    const { challenge } = (await minted.json()) as { challenge: string };

    const audit = await api(s, 'GET', '/admin/audit?limit=50');
    assert.equal(audit.status, 200);
    const items = audit.json.items as Item[];
    const by = (action: string) => items.filter((i) => i.action === action);
    assert.deepEqual(
      by('enroll.issued').map((i) => [i.actor, i.details?.subject, i.details?.source]),
      [
        ['device', 'CN=audited-queued', '127.0.0.1'],
        ['device', 'CN=audited-ok,O=Test', '127.0.0.1'],
      ],
    );
    assert.equal(by('enroll.issued')[1]!.details?.serial, serial);
    assert.deepEqual(
      by('request.approved').map((i) => [i.actor, i.target]),
      [['alice', pending.transactionId]],
    );
    assert.deepEqual(
      by('request.rejected').map((i) => [i.actor, i.target, i.details?.reason]),
      [['bob', toReject.transactionId, 'unknown device']],
    );
    assert.deepEqual(
      by('certificate.revoked').map((i) => [i.actor, i.target, i.details?.reason]),
      [['alice', serial, 'keyCompromise']],
    );
    assert.deepEqual(
      by('challenge.minted').map((i) => [i.actor, i.details?.count, i.details?.source]),
      [['bob', 1, 'admin-api']],
    );
    const refused = by('enroll.refused');
    assert.equal(refused.length, 1);
    assert.equal(refused[0]!.target, toReject.transactionId);
    assert.equal(refused[0]!.details?.failInfo, 'badRequest');
    assert.match(String(refused[0]!.details?.reason), /rejected: unknown device/);
    assert.equal(refused[0]!.details?.messageType, 'CertPoll');

    // Filters and paging.
    const enroll = await api(s, 'GET', '/admin/audit?action=enroll.&limit=2');
    assert.deepEqual(
      (enroll.json.items as Item[]).map((i) => i.action),
      ['enroll.issued', 'enroll.refused'],
    );
    const next = await api(s, 'GET', `/admin/audit?action=enroll.&before=${String(enroll.json.nextBefore)}`);
    assert.deepEqual(
      (next.json.items as Item[]).map((i) => i.action),
      ['enroll.issued'],
    );
    assert.equal((await api(s, 'GET', '/admin/audit?action=nope')).status, 400);
    assert.equal((await api(s, 'GET', '/admin/audit?limit=501')).status, 400);
    assert.equal((await api(s, 'GET', '/admin/audit?since=yesterday')).status, 400);

    // Recent failures for the console.
    const failures = await api(s, 'GET', '/admin/failures?limit=10');
    assert.equal(failures.status, 200);
    assert.deepEqual(
      (failures.json.items as Item[]).map((f) => [
        f.transactionId,
        f.failInfo,
        f.source,
        f.messageType,
        f.profile,
      ]),
      [[toReject.transactionId, 'badRequest', '127.0.0.1', 'CertPoll', 'default']],
    );

    // The chain verifies; no secret is in any row.
    const store = s.enrollment!.store;
    const v = await verifyAuditTrail(store);
    assert.equal(v.ok, true);
    assert.equal(v.rows, items.length);
    const raw = JSON.stringify(await store.readAuditChain(0, 1000));
    for (const secret of [TEST_CHALLENGE, challenge, ALICE, BOB])
      assert.ok(!raw.includes(secret), 'a secret in the audit trail');
  });
}
