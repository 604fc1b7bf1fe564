/**
 * External validation webhook (src/ra/validation.ts, docs/server.md "External validation"):
 * a loopback validator decides initial enrollments — allow issues, deny fails with its reason,
 * any other answer (500, garbage, no answer within the timeout) fails closed — in mode
 * `challenge` instead of the local challenge and in mode `always` after it; resends of an
 * issued transaction never reach it; neither the token nor the challenge reaches the server
 * log. In-process and with `workers: 2` (the config crosses workerData).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash, createPublicKey } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { FailInfo, PkiStatus } from '../../src/scep/index.js';
import type { Certificate } from '../../src/pkix/certificate.js';
import type { ValidationConfig } from '../../src/ra/validation.js';
import type { RunningServer } from '../../src/server/index.js';
import { logSink } from '../helpers/log-sink.js';
import {
  caCerts,
  device,
  openCertRep,
  pkcsReq,
  postPki,
  recipientOf,
  testServer,
  TEST_CHALLENGE,
  type Device,
} from '../helpers/scep-server.js';

const TOKEN = 'validator-token-5f1d2c3b4a';
/**
 * The webhook timeout of the test servers: long enough that a prompt answer from the local
 * validator is never late on a busy machine (a 300 ms limit failed there), short enough that
 * the "hang" case ends the wait soon.
 */
const VALIDATION_TIMEOUT_MS = 5_000;
const DYNAMIC = 'mdm-dynamic-challenge-7f3e9a';

type Behaviour = 'allow' | 'deny' | 'deny-long' | '500' | 'garbage' | 'hang';

interface Validator {
  url: string;
  calls: { headers: IncomingMessage['headers']; body: Record<string, unknown> }[];
  behaviour: Behaviour;
}

/** A loopback validation service whose answer the test switches. */
async function validator(t: TestContext): Promise<Validator> {
  const v: Validator = { url: '', calls: [], behaviour: 'allow' };
  const hanging: ServerResponse[] = [];
  const srv = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      v.calls.push({
        headers: req.headers,
        body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>,
      });
      const json = (status: number, body: string) =>
        res.writeHead(status, { 'content-type': 'application/json' }).end(body);
      switch (v.behaviour) {
        case 'allow':
          return json(200, JSON.stringify({ allow: true }));
        case 'deny':
          return json(200, JSON.stringify({ allow: false, reason: 'device not enrolled in the MDM' }));
        case 'deny-long':
          return json(200, JSON.stringify({ allow: false, reason: 'x'.repeat(500) }));
        case '500':
          return json(500, JSON.stringify({ allow: true }));
        case 'garbage':
          return json(200, '<html>allow</html>');
        case 'hang':
          hanging.push(res);
          return;
      }
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const r of hanging) r.destroy();
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  });
  v.url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/validate`;
  return v;
}

async function server(
  t: TestContext,
  v: Validator,
  o: { workers?: number; mode?: ValidationConfig['mode'] } = {},
): Promise<{ s: RunningServer; certs: Certificate[]; log: () => string }> {
  const sink = logSink();
  const s = await testServer(t, {
    logLevel: 'info',
    logStream: sink.stream,
    ...(o.workers ? { workers: o.workers } : {}),
    enrollment: {
      validation: {
        url: v.url,
        token: TOKEN,
        timeoutMs: VALIDATION_TIMEOUT_MS,
        ...(o.mode ? { mode: o.mode } : {}),
      },
    },
  });
  return { s, certs: await caCerts(s.url), log: sink.text };
}

async function enroll(
  s: RunningServer,
  certs: Certificate[],
  d: Device,
  challenge: string,
  transactionId?: string,
): Promise<{
  status: PkiStatus;
  failInfo?: FailInfo;
  text?: string;
  serial?: string;
  transactionId: string;
}> {
  const r = pkcsReq(d, recipientOf(certs), { challenge, ...(transactionId ? { transactionId } : {}) });
  const a = await postPki(s.url, r.der);
  assert.equal(a.status, 200, a.body.toString());
  const rep = openCertRep(a.body, r, d, certs);
  return {
    status: rep.status,
    ...(rep.failInfo !== undefined ? { failInfo: rep.failInfo } : {}),
    ...(rep.failInfoText !== undefined ? { text: rep.failInfoText } : {}),
    ...(rep.certificates[0] ? { serial: rep.certificates[0].serialHex } : {}),
    transactionId: r.transactionId,
  };
}

for (const workers of [1, 2]) {
  test(`validation webhook, mode challenge (workers ${workers}): allow, deny, fail closed, resends, no secrets logged`, async (t) => {
    const v = await validator(t);
    const { s, certs, log } = await server(t, v, { workers });
    const d = device('CN=validated-device,O=Test', { pool: 1 });

    // Allow: issued with a challenge the local check would refuse (the validator decides).
    const ok = await enroll(s, certs, d, DYNAMIC);
    assert.equal(ok.status, PkiStatus.SUCCESS, ok.text);
    assert.equal(v.calls.length, 1);
    const call = v.calls[0]!;
    assert.equal(call.headers.authorization, `Bearer ${TOKEN}`);
    assert.match(String(call.headers['content-type']), /^application\/json/);
    const b = call.body;
    assert.equal(b.transactionId, ok.transactionId);
    assert.equal(b.messageType, 'PKCSReq');
    assert.equal(b.renewal, false);
    assert.equal(b.subject, 'CN=validated-device,O=Test');
    assert.deepEqual(b.subjectAltNames, []);
    assert.equal(b.keyType, 'rsa');
    assert.equal(b.keyBits, 2048);
    assert.equal(b.challengePassword, DYNAMIC);
    assert.equal(b.remoteAddress, '127.0.0.1');
    const spki = createPublicKey(d.key).export({ type: 'spki', format: 'der' });
    assert.equal(b.keyHash, createHash('sha256').update(spki).digest('hex'));
    assert.equal(typeof b.csr, 'string');
    assert.ok(Buffer.from(b.csr as string, 'base64').length > 200, 'the CSR DER');

    // A resend of the issued transaction: the same certificate, the validator not asked again.
    const again = await enroll(s, certs, d, DYNAMIC, ok.transactionId);
    assert.equal(again.status, PkiStatus.SUCCESS);
    assert.equal(again.serial, ok.serial);
    assert.equal(v.calls.length, 1, 'no second webhook call for a resend');

    // Deny with a reason, then a long reason (truncated to 200 characters).
    v.behaviour = 'deny';
    const no = await enroll(s, certs, device('CN=denied', { pool: 2 }), DYNAMIC);
    assert.equal(no.status, PkiStatus.FAILURE);
    assert.equal(no.failInfo, FailInfo.badRequest);
    assert.equal(no.text, 'rejected by the validation service: device not enrolled in the MDM');
    v.behaviour = 'deny-long';
    const long = await enroll(s, certs, device('CN=denied', { pool: 2 }), DYNAMIC);
    assert.equal(long.text, `rejected by the validation service: ${'x'.repeat(200)}`);

    // Fail closed: 500, garbage, no answer within the timeout.
    for (const behaviour of ['500', 'garbage', 'hang'] as const) {
      v.behaviour = behaviour;
      // 'hang' never answers: that enroll() returns at all proves the timeout ends the wait.
      const r = await enroll(s, certs, device('CN=unlucky', { pool: 3 }), DYNAMIC);
      assert.equal(r.status, PkiStatus.FAILURE, behaviour);
      assert.equal(r.failInfo, FailInfo.badRequest, behaviour);
      assert.equal(r.text, 'the validation service is unavailable', behaviour);
    }
    // The server still answers, and enrolls again once the validator does.
    v.behaviour = 'allow';
    const after = await enroll(s, certs, device('CN=after', { pool: 4 }), DYNAMIC);
    assert.equal(after.status, PkiStatus.SUCCESS, after.text);

    await s.close();
    const text = log();
    assert.match(text, /validation service unavailable/, 'the fail-closed warning is logged');
    assert.ok(!text.includes(TOKEN), 'the token is not logged');
    assert.ok(!text.includes(DYNAMIC), 'the challenge is not logged');
  });
}

test('validation webhook, mode always: the local challenge first, then the validator', async (t) => {
  const v = await validator(t);
  const { s, certs } = await server(t, v, { mode: 'always', workers: 2 });

  const wrong = await enroll(s, certs, device('CN=wrong', { pool: 1 }), DYNAMIC);
  assert.equal(wrong.status, PkiStatus.FAILURE);
  assert.equal(wrong.failInfo, FailInfo.badRequest);
  assert.equal(wrong.text, 'the challengePassword is not valid');
  assert.equal(v.calls.length, 0, 'a wrong local challenge never reaches the validator');

  v.behaviour = 'deny';
  const denied = await enroll(s, certs, device('CN=denied', { pool: 2 }), TEST_CHALLENGE);
  assert.equal(denied.status, PkiStatus.FAILURE);
  assert.match(denied.text ?? '', /^rejected by the validation service/);
  assert.equal(v.calls.length, 1);
  assert.equal(v.calls[0]!.body.challengePassword, TEST_CHALLENGE);

  v.behaviour = 'allow';
  const d = device('CN=allowed', { pool: 3 });
  const ok = await enroll(s, certs, d, TEST_CHALLENGE);
  assert.equal(ok.status, PkiStatus.SUCCESS, ok.text);
  assert.equal(v.calls.length, 2);
  const again = await enroll(s, certs, d, TEST_CHALLENGE, ok.transactionId);
  assert.equal(again.serial, ok.serial);
  assert.equal(v.calls.length, 2, 'no webhook call for a resend');
});

test('validation webhook with manual approval: a denial fails, an allow waits for the operator', async (t) => {
  const v = await validator(t);
  const sink = logSink();
  const s = await testServer(t, {
    logStream: sink.stream,
    lifecycle: { approval: { mode: 'manual' } },
    enrollment: { validation: { url: v.url, timeoutMs: VALIDATION_TIMEOUT_MS } },
  });
  const certs = await caCerts(s.url);
  v.behaviour = 'deny';
  const no = await enroll(s, certs, device('CN=m-denied', { pool: 1 }), DYNAMIC);
  assert.equal(no.status, PkiStatus.FAILURE);
  assert.equal(v.calls[0]!.headers.authorization, undefined, 'no token configured, none sent');
  v.behaviour = 'allow';
  const d = device('CN=m-allowed', { pool: 2 });
  const held = await enroll(s, certs, d, DYNAMIC);
  assert.equal(held.status, PkiStatus.PENDING);
  const tx = await s.enrollment!.store.getTransaction(held.transactionId);
  assert.equal(tx?.state, 'pending');
  assert.equal(tx?.meta?.challengeKind, 'external');
  const poll = await enroll(s, certs, d, DYNAMIC, held.transactionId);
  assert.equal(poll.status, PkiStatus.PENDING);
  assert.equal(v.calls.length, 2, 'a resend of a pending transaction is not validated again');
});
