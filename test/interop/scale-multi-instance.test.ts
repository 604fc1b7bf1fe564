/**
 * Several scepter instances on one PostgreSQL database (issue 6): two servers share one CA
 * data directory and one fresh schema, as they would behind a load balancer. Instance B runs
 * two enrollment worker threads, so the worker pool is covered against PostgreSQL too.
 * Checked: concurrent enrollments across both succeed with distinct serials, a transactionID
 * resent to the other instance gets the byte-identical certificate, a transactionID raced on
 * both at once is issued once, CRL numbers stay strictly increasing and a one-time secret is
 * consumed once across instances, and the store passes its integrity check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import type { Certificate } from '../../src/pkix/certificate.js';
import { PG_URL, needPeer, pgReachable } from '../helpers/peers.js';
import { seeded } from '../helpers/scep-server.js';
import {
  checkReply,
  generateRsaKeys,
  makeEnrollment,
  postPkiMessage,
  type PreparedEnrollment,
} from '../helpers/enrollment.js';

const CHALLENGE = 'multi-instance-challenge-17';

/** Runs `fns` with at most `limit` in flight. */
async function limited<T>(fns: Array<() => Promise<T>>, limit: number): Promise<T[]> {
  const out = new Array<T>(fns.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      for (let i = next++; i < fns.length; i = next++) out[i] = await (fns[i] as () => Promise<T>)();
    }),
  );
  return out;
}

async function enroll(server: RunningServer, e: PreparedEnrollment, ca: Certificate) {
  const r = await postPkiMessage(server.url, e.der);
  const c = checkReply(r.status, r.body, e, [ca]);
  if (!c.ok) assert.fail(`${e.cn} via ${server.url}: ${c.reason}`);
  return c;
}

test('two instances on one PostgreSQL stay consistent under concurrent load', async (t) => {
  if (!needPeer(t, await pgReachable(), `PostgreSQL at ${PG_URL}`)) return;
  const schema = `scepter_multi_${randomBytes(6).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), 'scepter-multi-'));
  const stores: Store[] = [];
  const servers: RunningServer[] = [];
  try {
    for (let i = 0; i < 2; i++) stores.push(await openStore(PG_URL, { schema, poolSize: 4 }));
    const [storeA, storeB] = stores as [Store, Store];
    const common = {
      dataDir: dir,
      keySize: 2048 as const,
      challenge: CHALLENGE,
      logLevel: 'silent' as const,
    };
    const a = await startServer(seeded({ ...common, store: storeA }));
    servers.push(a);
    const b = await startServer({ ...common, store: storeB, workers: 2 });
    servers.push(b);
    const ca = a.dataDir!.loaded.caCert;
    assert.ok(b.dataDir!.loaded.caCert.der.equals(ca.der), 'both instances serve the same CA');

    const keys = await generateRsaKeys(6);
    const make = (i: number, cn: string) =>
      makeEnrollment({ key: keys[i % keys.length]!, recipient: ca, challenge: CHALLENGE, cn });

    // 1. Concurrent enrollments spread over both instances.
    const batch = Array.from({ length: 40 }, (_, i) => make(i, `multi-${i}`));
    const results = await limited(
      batch.map((e, i) => () => enroll(i % 2 === 0 ? a : b, e, ca)),
      12,
    );
    const serials = results.map((r) => r.serial);
    assert.equal(new Set(serials).size, serials.length, 'zero duplicate serials');

    // 2. A resend to the other instance: the byte-identical certificate, nothing new issued.
    const first = batch[0]!;
    const again = await enroll(b, first, ca);
    assert.ok(again.certDer.equals(results[0]!.certDer), 'same bytes resent to B → same certificate');
    const renewedNonce = makeEnrollment({
      key: first.key,
      recipient: ca,
      challenge: CHALLENGE,
      cn: first.cn,
      transactionId: first.transactionId,
    });
    const again2 = await enroll(b, renewedNonce, ca);
    assert.ok(
      again2.certDer.equals(results[0]!.certDer),
      'new message, same transactionID → same certificate',
    );
    const fromOdd = await enroll(a, batch[1]!, ca);
    assert.ok(
      fromOdd.certDer.equals(results[1]!.certDer),
      'B-issued transaction resent to A → same certificate',
    );

    // 3. One transactionID raced on both instances at once: issued exactly once.
    const raced = Array.from({ length: 6 }, (_, i) => make(i, `raced-${i}`));
    const pairs = await Promise.all(raced.map((e) => Promise.all([enroll(a, e, ca), enroll(b, e, ca)])));
    for (const [x, y] of pairs)
      assert.ok(x.certDer.equals(y.certDer), 'both instances answer the race alike');
    for (const e of raced) {
      const page = await storeA.searchCertificates({ transactionId: e.transactionId });
      assert.equal(page.total, 1, `one certificate for ${e.transactionId}`);
    }
    const all = await storeB.searchCertificates({ issuer: ca.fingerprint, limit: 1000 });
    assert.equal(all.total, 46, 'exactly one certificate per transaction');
    assert.equal(new Set(all.items.map((c) => c.serial)).size, 46);

    // 4. CRL numbers strictly increasing and one-time secrets consumed once, across instances.
    const numbers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? storeA : storeB).nextCrlNumber(ca.fingerprint)),
    );
    assert.deepEqual(
      numbers.map(Number).sort((x, y) => x - y),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    const hash = randomBytes(32).toString('hex');
    await storeA.addSecret(hash, new Date(Date.now() + 60_000));
    const consumed = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? storeA : storeB).consumeSecret(hash, new Date())),
    );
    assert.equal(consumed.filter(Boolean).length, 1, 'a one-time secret is consumed exactly once');

    const report = await storeA.integrityCheck();
    assert.ok(report.ok, report.problems.join('; '));
  } finally {
    for (const s of servers) await s.close();
    for (const s of stores) await s.close();
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect().catch(() => undefined);
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await c.end().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
});
