/**
 * The audit trail in the store (src/store/audit-chain.ts), on SQLite and PostgreSQL: appends
 * chain rows 1, 2, 3, …; listing filters; `recordIssued` appends its record in the same
 * transaction (and not when it fails); the triggers refuse UPDATE/DELETE; after an attacker
 * drops them, an edited, deleted, reordered or inserted row is found by the verifier at that
 * row; concurrent appenders from two store connections never fork the chain, nor do appends
 * by another connection between ours (SQLite keeps the head in memory while no other
 * connection commits) or a write that fails in the same batch as appends; concurrent
 * audited issuances share one commit per store (PostgreSQL: src/store/pg-batch.ts), the same
 * transactions issued from two stores at once (in opposite orders) are issued and recorded
 * once each, a member that fails rejects alone, and a batch that cannot append its records
 * commits nothing.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { AuditChainVerifier, canonicalJson } from '../../src/store/audit-chain.js';
import {
  AlreadyIssuedError,
  openStore,
  SerialConflictError,
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

/** `n` approved transactions `PREFIX-0` … on `s`. */
async function approved(s: Store, prefix: string, n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
  for (const id of ids)
    await s.beginTransaction({
      transactionId: id,
      signerKeyHash: 'ab'.repeat(32),
      messageType: 19,
      state: 'approved',
    });
  return ids;
}

/** recordIssued with its `enroll.issued` record (the serial in the details). */
function issue(s: Store, id: string, c: NewCertificate = cert(id)): Promise<void> {
  return s.recordIssued({
    transactionId: id,
    cert: c,
    audit: { actor: 'device', action: 'enroll.issued', target: id, details: { serial: c.serial } },
  });
}

/** target → serial of every `enroll.issued` row; fails on a target recorded twice. */
async function issuedRecords(s: Store): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const r of await s.listAudit({ action: 'enroll.issued', limit: 1000 })) {
    assert.ok(!out.has(r.target!), `${r.target} recorded twice`);
    out.set(r.target!, r.details?.serial as string);
  }
  return out;
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

  await t.test(
    'concurrent audited issuances from two stores: one commit per store, chain verifies',
    async () => {
      const db = backend.fresh();
      const a = await openStore(db.url, db.opts);
      const b = await openStore(db.url, db.opts);
      try {
        const idsA = await approved(a, 'a', 20);
        const idsB = await approved(b, 'b', 20);
        const before = [a.stats().commits, b.stats().commits];
        // Submitted in one event-loop turn: each store puts its 20 into one transaction.
        const serials = new Map<string, string>();
        const all = [...idsA.map((id) => [a, id] as const), ...idsB.map((id) => [b, id] as const)].map(
          ([s, id]) => {
            const c = cert(id);
            serials.set(id, c.serial);
            return issue(s, id, c);
          },
        );
        await Promise.all(all);
        assert.equal(a.stats().commits - before[0]!, 1, 'store a: one commit for its 20 issuances');
        assert.equal(b.stats().commits - before[1]!, 1, 'store b: one commit for its 20 issuances');
        for (const id of [...idsA, ...idsB]) {
          const tx = await a.getTransaction(id);
          assert.equal(tx?.state, 'issued');
          assert.equal(tx?.certSerial, serials.get(id));
        }
        assert.deepEqual(await issuedRecords(a), serials);
        const v = await verify(b);
        assert.equal(v.broken, undefined);
        assert.equal(v.head.seq, 40);
        assert.deepEqual(await a.integrityCheck(), { ok: true, problems: [] });
      } finally {
        await a.close();
        await b.close();
      }
    },
  );

  await t.test(
    'the same transactions issued from two stores at once: each once, with one record',
    async () => {
      const db = backend.fresh();
      const a = await openStore(db.url, db.opts);
      const b = await openStore(db.url, db.opts);
      try {
        const ids = await approved(a, 'd', 12);
        // Store b takes them in the opposite order (members lock their rows in transactionID order).
        const results = await Promise.allSettled([
          ...ids.map((id) => issue(a, id)),
          ...[...ids].reverse().map((id) => issue(b, id)),
          a.appendAudit([{ actor: 'cli:root', action: 'request.approved', target: 'd-0' }]),
        ]);
        const winners = new Map<string, number>();
        for (const [i, r] of results.slice(0, 24).entries()) {
          const id = i < 12 ? ids[i]! : ids[23 - i]!;
          if (r.status === 'fulfilled') winners.set(id, (winners.get(id) ?? 0) + 1);
          else assert.ok(r.reason instanceof AlreadyIssuedError, String(r.reason));
        }
        assert.equal(results[24]!.status, 'fulfilled');
        assert.deepEqual([...winners.keys()].sort(), [...ids].sort());
        assert.ok([...winners.values()].every((n) => n === 1));
        const records = await issuedRecords(a);
        for (const id of ids) assert.equal(records.get(id), (await a.getTransaction(id))?.certSerial);
        const v = await verify(b);
        assert.equal(v.broken, undefined);
        assert.equal(v.head.seq, 13);
        assert.deepEqual(await a.integrityCheck(), { ok: true, problems: [] });
      } finally {
        await a.close();
        await b.close();
      }
    },
  );

  await t.test(
    'a failing member of a batch rejects alone; the others commit with their records',
    async () => {
      const db = backend.fresh();
      const s = await openStore(db.url, db.opts);
      try {
        const ids = await approved(s, 'm', 6);
        const taken = cert('m-0');
        await issue(s, 'm-0', taken); // m-0 is issued before the batch
        const before = s.stats().commits;
        const conflicting = { ...cert('m-2'), serial: taken.serial };
        const certs = new Map(ids.map((id) => [id, cert(id)]));
        const results = await Promise.allSettled([
          issue(s, 'm-0'), // already issued
          issue(s, 'm-1', certs.get('m-1')),
          issue(s, 'm-2', conflicting), // serial taken: the transaction stays issuable
          issue(s, 'nope'), // no such transaction
          issue(s, 'm-3', certs.get('m-3')),
          issue(s, 'm-3'), // the same transaction twice in one batch: the second loses
          issue(s, 'm-4', certs.get('m-4')),
        ]);
        assert.equal(s.stats().commits - before, 1, 'one commit for the whole batch');
        const reason = (i: number) => (results[i] as PromiseRejectedResult).reason as unknown;
        assert.ok(reason(0) instanceof AlreadyIssuedError);
        assert.equal((reason(0) as AlreadyIssuedError).serial, taken.serial);
        assert.ok(reason(2) instanceof SerialConflictError);
        assert.ok(reason(3) instanceof TransactionStateError);
        assert.ok(reason(5) instanceof AlreadyIssuedError);
        assert.equal((reason(5) as AlreadyIssuedError).serial, certs.get('m-3')!.serial);
        for (const i of [1, 4, 6]) assert.equal(results[i]!.status, 'fulfilled');
        assert.equal((await s.getTransaction('m-2'))?.state, 'approved');
        assert.deepEqual(
          await issuedRecords(s),
          new Map([
            ['m-0', taken.serial],
            ['m-1', certs.get('m-1')!.serial],
            ['m-3', certs.get('m-3')!.serial],
            ['m-4', certs.get('m-4')!.serial],
          ]),
        );
        for (const id of ['m-1', 'm-3', 'm-4'])
          assert.equal((await s.getCertificate(certs.get(id)!.serial))?.transactionId, id);
        // The refused one is issued by a retry with a fresh serial.
        await issue(s, 'm-2');
        assert.equal((await s.getTransaction('m-2'))?.state, 'issued');
        const v = await verify(s);
        assert.equal(v.broken, undefined);
        assert.equal(v.head.seq, 5);
        assert.deepEqual(await s.integrityCheck(), { ok: true, problems: [] });
      } finally {
        await s.close();
      }
    },
  );

  await t.test('when the records cannot be appended, no certificate of the batch exists', async () => {
    const db = backend.fresh();
    const s = await openStore(db.url, db.opts);
    try {
      const ids = await approved(s, 'f', 4);
      // A fault at the audit INSERT (as a full disk or a lost connection would be).
      if (backend.name === 'sqlite')
        await db.raw(
          "CREATE TRIGGER audit_fault BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit fault'); END",
        );
      else {
        await db.raw(
          "CREATE FUNCTION audit_fault() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RAISE EXCEPTION ''audit fault''; END'",
        );
        await db.raw(
          'CREATE TRIGGER audit_fault BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_fault()',
        );
      }
      const certs = ids.map((id) => cert(id));
      const results = await Promise.allSettled(ids.map((id, i) => issue(s, id, certs[i])));
      for (const r of results) {
        assert.equal(r.status, 'rejected');
        assert.match(String((r as PromiseRejectedResult).reason), /audit fault/);
      }
      for (const [i, id] of ids.entries()) {
        assert.equal((await s.getTransaction(id))?.state, 'approved');
        assert.equal(await s.getCertificate(certs[i]!.serial), null);
      }
      assert.equal((await s.listAudit({})).length, 0);
      await db.raw(
        backend.name === 'sqlite' ? 'DROP TRIGGER audit_fault' : 'DROP TRIGGER audit_fault ON audit_log',
      );
      await Promise.all(ids.map((id) => issue(s, id)));
      assert.equal((await verify(s)).head.seq, 4);
      assert.deepEqual(await s.integrityCheck(), { ok: true, problems: [] });
    } finally {
      await s.close();
    }
  });

  if (backend.name === 'postgres')
    await t.test(
      'batches are bounded: 10 audited issuances with auditBatchMax 4 take 3 commits',
      async () => {
        const db = backend.fresh();
        const s = await openStore(db.url, { ...db.opts, auditBatchMax: 4 });
        try {
          const ids = await approved(s, 'x', 10);
          const before = s.stats().commits;
          await Promise.all(ids.map((id) => issue(s, id)));
          assert.equal(s.stats().commits - before, 3);
          // Oldest first, 4 + 4 + 2: each batch's records are adjacent and in submission
          // order (the batches run on separate connections and may commit in any order).
          const chain = (await s.readAuditChain(0, 20)).map((r) => r.target).join();
          const batches = [ids.slice(0, 4), ids.slice(4, 8), ids.slice(8)].map((b) => b.join());
          for (const b of batches) assert.ok(chain.includes(b), `${b} adjacent in ${chain}`);
          assert.equal((await verify(s)).broken, undefined);
        } finally {
          await s.close();
        }
      },
    );
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
