/**
 * The audit trail in the store (src/store/audit-chain.ts), on SQLite and PostgreSQL: appends
 * chain rows 1, 2, 3, …; listing filters; `recordIssued` appends its record in the same
 * transaction (and not when it fails); the triggers refuse UPDATE/DELETE; after an attacker
 * drops them, an edited, deleted, reordered or inserted row is found by the verifier at that
 * row; concurrent appenders from two store connections never fork the chain, nor do appends
 * by another connection between ours (SQLite keeps the head in memory while no other
 * connection commits) or a write that fails in the same batch as appends.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { AuditChainVerifier, canonicalJson } from '../../src/store/audit-chain.js';
import {
  openStore,
  TransactionStateError,
  type AuditRow,
  type NewCertificate,
  type Store,
} from '../../src/store/index.js';
import { PG_URL, needPeer } from '../helpers/peers.js';
import { postgresBackend, sqliteBackend, type Backend, type Db } from '../helpers/store-backends.js';

/** Verifies the whole chain in pages of 3 (so paging is exercised). */
async function verify(s: Store): Promise<AuditChainVerifier> {
  const v = new AuditChainVerifier();
  let after = 0;
  for (;;) {
    const rows: AuditRow[] = await s.readAuditChain(after, 3);
    if (rows.length === 0 || !v.feed(rows)) return v;
    after = rows[rows.length - 1]!.seq;
  }
}

function cert(transactionId: string): NewCertificate {
  const now = Date.now();
  return {
    serial: randomBytes(16).toString('hex').replace(/^./, '1'),
    issuer: 'aa'.repeat(32),
    subject: 'CN=audit',
    commonName: 'audit',
    sans: [],
    der: randomBytes(64),
    notBefore: new Date(now),
    notAfter: new Date(now + 86_400_000),
    keyHash: randomBytes(32).toString('hex'),
    transactionId,
  };
}

/** Drops the append-only triggers, as an attacker with write access to the database can. */
async function dropTriggers(db: Db, kind: 'sqlite' | 'postgres'): Promise<void> {
  if (kind === 'sqlite') {
    await db.raw('DROP TRIGGER audit_log_no_update');
    await db.raw('DROP TRIGGER audit_log_no_delete');
  } else {
    await db.raw('DROP TRIGGER audit_log_no_change ON audit_log');
  }
}

async function suite(t: TestContext, backend: Backend): Promise<void> {
  await t.test('append, list, filters, verify', async () => {
    const db = backend.fresh();
    const s = await openStore(db.url, db.opts);
    try {
      assert.equal((await verify(s)).head.seq, 0);
      await s.appendAudit([
        { actor: 'alice', action: 'request.approved', target: 'tx-1' },
        {
          actor: 'cli:root',
          action: 'certificate.revoked',
          target: 'ab',
          details: { reason: 'keyCompromise' },
        },
      ]);
      await s.appendAudit([
        {
          actor: 'device',
          action: 'enroll.refused',
          target: 'tx-2',
          details: { z: 1, a: { y: 'é', b: [1, null] }, failInfo: 'badRequest' },
        },
      ]);
      await s.appendAudit([]);
      const all = await s.listAudit({});
      assert.deepEqual(
        all.map((r) => [r.seq, r.actor, r.action, r.target]),
        [
          [3, 'device', 'enroll.refused', 'tx-2'],
          [2, 'cli:root', 'certificate.revoked', 'ab'],
          [1, 'alice', 'request.approved', 'tx-1'],
        ],
      );
      assert.deepEqual(all[0]!.details, { z: 1, a: { y: 'é', b: [1, null] }, failInfo: 'badRequest' });
      assert.equal(all[2]!.prevHash, '0'.repeat(64));
      assert.equal(all[1]!.prevHash, all[2]!.hash);
      assert.deepEqual(
        (await s.listAudit({ action: 'enroll.' })).map((r) => r.seq),
        [3],
      );
      assert.deepEqual(
        (await s.listAudit({ action: 'certificate.revoked' })).map((r) => r.seq),
        [2],
      );
      assert.deepEqual(
        (await s.listAudit({ action: 'enroll' })).map((r) => r.seq),
        [],
        'no prefix without the dot',
      );
      assert.deepEqual(
        (await s.listAudit({ beforeSeq: 3, limit: 1 })).map((r) => r.seq),
        [2],
      );
      assert.deepEqual(
        (await s.listAudit({ since: new Date(Date.now() + 60_000) })).map((r) => r.seq),
        [],
      );
      const raw = await s.readAuditChain(0, 10);
      assert.equal(
        raw[2]!.details,
        canonicalJson({ z: 1, a: { y: 'é', b: [1, null] }, failInfo: 'badRequest' }),
      );
      const v = await verify(s);
      assert.equal(v.broken, undefined);
      assert.deepEqual(v.head, { seq: 3, hash: all[0]!.hash });
      await assert.rejects(s.appendAudit([{ actor: '', action: 'x' }]), RangeError);
      await assert.rejects(
        s.appendAudit([{ actor: 'a', action: 'x', details: { big: 'x'.repeat(9000) } }]),
        RangeError,
      );
    } finally {
      await s.close();
    }
  });

  await t.test('recordIssued appends its audit record in the same transaction', async () => {
    const db = backend.fresh();
    const s = await openStore(db.url, db.opts);
    try {
      await s.beginTransaction({
        transactionId: 't1',
        signerKeyHash: 'ab'.repeat(32),
        messageType: 19,
        state: 'approved',
      });
      const c = cert('t1');
      await s.recordIssued({
        transactionId: 't1',
        cert: c,
        audit: { actor: 'device', action: 'enroll.issued', target: 't1', details: { serial: c.serial } },
      });
      // A refused recordIssued (unknown transaction) appends nothing.
      await assert.rejects(
        s.recordIssued({
          transactionId: 'nope',
          cert: cert('nope'),
          audit: { actor: 'device', action: 'enroll.issued' },
        }),
        TransactionStateError,
      );
      const rows = await s.listAudit({});
      assert.deepEqual(
        rows.map((r) => [r.action, r.target, r.details?.serial]),
        [['enroll.issued', 't1', c.serial]],
      );
      assert.equal((await verify(s)).broken, undefined);
    } finally {
      await s.close();
    }
  });

  await t.test('append-only triggers; tampering is found at the row', async () => {
    const db = backend.fresh();
    const s = await openStore(db.url, db.opts);
    try {
      await s.appendAudit(
        Array.from({ length: 6 }, (_, i) => ({
          actor: 'alice',
          action: 'request.approved',
          target: `tx-${i + 1}`,
        })),
      );
      await assert.rejects(db.raw("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2"), /append-only/);
      await assert.rejects(db.raw('DELETE FROM audit_log WHERE seq = 2'), /append-only/);
      assert.equal((await verify(s)).broken, undefined);

      await dropTriggers(db, backend.name);
      // Altered content (the actor of row 2).
      await db.raw("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2");
      let v = await verify(s);
      assert.equal(v.broken?.seq, 2);
      assert.match(v.broken!.problem, /altered/);
      await db.raw("UPDATE audit_log SET actor = 'alice' WHERE seq = 2");
      assert.equal((await verify(s)).broken, undefined);

      // Altered with its hash recomputed: the next row's previous hash no longer matches.
      const rows = await s.readAuditChain(0, 10);
      const { auditContent, auditHash } = await import('../../src/store/audit-chain.js');
      const forged = { ...rows[2]!, actor: 'mallory' };
      await db.raw('UPDATE audit_log SET actor = ?, hash = ? WHERE seq = 3', [
        'mallory',
        auditHash(forged.prevHash, auditContent(forged)),
      ]);
      v = await verify(s);
      assert.equal(v.broken?.seq, 4);
      assert.match(v.broken!.problem, /previous hash/);
      await db.raw('UPDATE audit_log SET actor = ?, hash = ? WHERE seq = 3', ['alice', rows[2]!.hash]);

      // Reordered: rows 4 and 5 swap their content.
      const swap = async (a: AuditRow, b: AuditRow) => {
        await db.raw('UPDATE audit_log SET target = ? WHERE seq = ?', [b.target, a.seq]);
        await db.raw('UPDATE audit_log SET target = ? WHERE seq = ?', [a.target, b.seq]);
      };
      await swap(rows[3]!, rows[4]!);
      v = await verify(s);
      assert.equal(v.broken?.seq, 4);
      for (const r of [rows[3]!, rows[4]!])
        await db.raw('UPDATE audit_log SET target = ? WHERE seq = ?', [r.target, r.seq]);
      assert.equal((await verify(s)).broken, undefined);

      // Deleted row 3: rows 3 is missing.
      await db.raw('DELETE FROM audit_log WHERE seq = 3');
      v = await verify(s);
      assert.equal(v.broken?.seq, 4);
      assert.match(v.broken!.problem, /row 3 before it is missing/);
      assert.equal(v.head.seq, 2);
    } finally {
      await s.close();
    }
  });

  await t.test('appends by another connection in between are chained on, not forked', async () => {
    // The operator CLI appends through its own connection while the server's store is open.
    const db = backend.fresh();
    const server = await openStore(db.url, db.opts);
    const cli = await openStore(db.url, db.opts);
    try {
      const order: string[] = [];
      for (let i = 0; i < 4; i++) {
        for (const [who, s] of [
          ['server', server],
          ['cli', cli],
        ] as const) {
          await s.appendAudit([{ actor: who, action: 'challenge.minted', target: `${who}-${i}` }]);
          order.push(`${who}-${i}`);
        }
      }
      await server.beginTransaction({
        transactionId: 'x1',
        signerKeyHash: 'ab'.repeat(32),
        messageType: 19,
        state: 'approved',
      });
      await server.recordIssued({
        transactionId: 'x1',
        cert: cert('x1'),
        audit: { actor: 'device', action: 'enroll.issued', target: 'x1' },
      });
      order.push('x1');
      await cli.appendAudit([{ actor: 'cli', action: 'challenge.minted', target: 'cli-last' }]);
      order.push('cli-last');
      for (const s of [server, cli]) {
        const v = await verify(s);
        assert.equal(v.broken, undefined);
        assert.equal(v.head.seq, order.length);
      }
      const rows = await server.readAuditChain(0, 100);
      assert.deepEqual(
        rows.map((r) => r.target),
        order,
      );
    } finally {
      await server.close();
      await cli.close();
    }
  });

  await t.test('a write that fails next to audit appends leaves the chain whole', async () => {
    // In one SQLite batch: the failing recordIssued makes the batch run again (each write in its
    // own savepoint); what the first attempt appended is rolled back and appended once.
    const db = backend.fresh();
    const s = await openStore(db.url, db.opts);
    try {
      const settled = await Promise.allSettled([
        s.appendAudit([{ actor: 'a', action: 'challenge.minted', target: 'first' }]),
        s.recordIssued({
          transactionId: 'nope',
          cert: cert('nope'),
          audit: { actor: 'device', action: 'enroll.issued', target: 'nope' },
        }),
        s.appendAudit([{ actor: 'a', action: 'challenge.minted', target: 'second' }]),
      ]);
      assert.deepEqual(
        settled.map((r) => r.status),
        ['fulfilled', 'rejected', 'fulfilled'],
      );
      await s.appendAudit([{ actor: 'a', action: 'challenge.minted', target: 'third' }]);
      const v = await verify(s);
      assert.equal(v.broken, undefined);
      assert.deepEqual(
        (await s.readAuditChain(0, 10)).map((r) => [r.seq, r.target]),
        [
          [1, 'first'],
          [2, 'second'],
          [3, 'third'],
        ],
      );
    } finally {
      await s.close();
    }
  });

  await t.test('concurrent appenders on two connections never fork the chain', async () => {
    const db = backend.fresh();
    const a = await openStore(db.url, db.opts);
    const b = await openStore(db.url, db.opts);
    try {
      const one = (s: Store, who: string, i: number) =>
        s.appendAudit([
          { actor: who, action: 'challenge.minted', target: `${who}-${i}` },
          { actor: who, action: 'challenge.minted', target: `${who}-${i}b` },
        ]);
      await Promise.all(Array.from({ length: 20 }, (_, i) => [one(a, 'a', i), one(b, 'b', i)]).flat());
      const v = await verify(a);
      assert.equal(v.broken, undefined);
      assert.equal(v.head.seq, 80);
      // Each append's two rows are adjacent (one transaction).
      const rows = await a.readAuditChain(0, 100);
      for (let i = 0; i < rows.length; i += 2) assert.equal(rows[i + 1]!.target, `${rows[i]!.target}b`);
    } finally {
      await a.close();
      await b.close();
    }
  });
}

for (const backend of [sqliteBackend(), postgresBackend()]) {
  test(`audit trail (${backend.name})`, async (t) => {
    if (!needPeer(t, backend.available(), backend.name === 'postgres' ? `PostgreSQL at ${PG_URL}` : 'SQLite'))
      return;
    try {
      await suite(t, backend);
    } finally {
      await backend.cleanup();
    }
  });
}
