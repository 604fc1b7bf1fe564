/**
 * One Store suite run against both adapters: SQLite (temp files) and PostgreSQL (a fresh
 * schema per database, dropped at the end; skipped with a reason when PostgreSQL is absent,
 * failing in CI where SCEPTER_REQUIRE_PEERS=1).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AlreadyIssuedError,
  DuplicateKeyError,
  SerialConflictError,
  TransactionExistsError,
  TransactionStateError,
  normalizeSerial,
  openStore,
  type NewCertificate,
  type Store,
} from '../../src/store/index.js';
import { MIGRATIONS } from '../../src/store/schema.js';
import { PG_URL, needPeer } from '../helpers/peers.js';
import { postgresBackend, sqliteBackend, type Backend, type Db } from '../helpers/store-backends.js';

const STORE_MODULE = fileURLToPath(new URL('../../src/store/index.ts', import.meta.url));
const DAY = 86_400_000;

const hex = (n: number): string => randomBytes(n).toString('hex');

/** A certificate record with random identity; der is opaque to the store. */
function cert(over: Partial<NewCertificate> = {}): NewCertificate {
  const now = Date.now();
  const cn = `device-${hex(4)}`;
  return {
    serial: '7f' + hex(9),
    issuer: 'a'.repeat(64),
    subject: `CN=${cn},O=Example`,
    commonName: cn,
    sans: [`dns:${cn}.example.com`],
    der: randomBytes(64),
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 365 * DAY),
    keyHash: hex(32),
    transactionId: null,
    ...over,
  };
}

async function withStores(db: Db, n: number, fn: (...s: Store[]) => Promise<void>): Promise<void> {
  const stores: Store[] = [];
  try {
    for (let i = 0; i < n; i++) stores.push(await openStore(db.url, db.opts));
    await fn(...stores);
  } finally {
    for (const s of stores) await s.close();
  }
}

function sorted(a: Iterable<string>): string[] {
  return [...a].sort();
}

/** Opens the store in a separate Node process (real concurrency for SQLite's synchronous open). */
function openInChild(db: Db): Promise<string> {
  const code = `const { openStore } = await import(${JSON.stringify(STORE_MODULE)});
    const s = await openStore(process.argv[1], JSON.parse(process.argv[2]));
    const r = await s.beginTransaction({ transactionId: 'child-' + process.pid, signerKeyHash: 'ab', messageType: 19, state: 'pending' });
    await s.close(); console.log(r.created ? 'ok' : 'not-created');`;
  return new Promise((resolve, reject) => {
    const p = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', code, db.url, JSON.stringify(db.opts)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) =>
      code === 0 ? resolve(out.trim()) : reject(new Error(`child exited ${code}: ${err}`)),
    );
  });
}

async function suite(t: TestContext, b: Backend): Promise<void> {
  await t.test('certificates: insert, get, every search filter, paging', async () => {
    await withStores(b.fresh(), 1, async (s) => {
      const issuerA = 'a1'.repeat(32);
      const issuerB = 'b2'.repeat(32);
      const now = new Date();
      const certs: NewCertificate[] = [
        cert({ issuer: issuerA, subject: 'CN=Printer-7,OU=Floor 3,O=Acme', commonName: 'Printer-7' }),
        cert({
          issuer: issuerA,
          subject: 'CN=laptop-42,O=Acme',
          commonName: 'laptop-42',
          sans: ['dns:laptop-42.acme.test', 'email:Ops@Acme.test'],
        }),
        cert({
          issuer: issuerB,
          subject: 'CN=phone_1,O=Other',
          commonName: 'phone_1',
          sans: ['ip:10.0.0.7', 'dns:phone.acme.test'],
        }),
        cert({
          issuer: issuerB,
          notAfter: new Date(now.getTime() + 5 * DAY),
          subject: 'CN=soon,O=Acme',
          commonName: 'soon',
        }),
        cert({
          issuer: issuerB,
          notAfter: new Date(now.getTime() + 20 * DAY),
          subject: 'CN=later,O=Acme',
          commonName: 'later',
        }),
        cert({
          issuer: issuerA,
          notAfter: new Date(now.getTime() - DAY),
          subject: 'CN=expired,O=Acme',
          commonName: 'expired',
        }),
      ];
      // distinct createdAt so the newest-first order is defined
      certs.forEach((c, i) => (c.createdAt = new Date(now.getTime() - (certs.length - i) * 1000)));
      const shared = hex(32);
      (certs[0] as NewCertificate).keyHash = shared;
      (certs[4] as NewCertificate).keyHash = shared;
      for (const c of certs) await s.insertCertificate(c);

      const first = certs[1] as NewCertificate;
      const got = await s.getCertificate(first.serial.toUpperCase().replace(/^/, '00'));
      assert.ok(got, 'found by a non-canonical serial');
      assert.equal(got.serial, normalizeSerial(first.serial));
      assert.deepEqual(got.der, first.der);
      assert.deepEqual(got.sans, first.sans);
      assert.equal(got.notAfter.getTime(), first.notAfter.getTime());
      assert.equal(got.status, 'valid');
      assert.equal(got.revokedAt, null);
      assert.equal(await s.getCertificate('0123456789'), null);

      const serialsOf = async (q: Parameters<Store['searchCertificates']>[0]) => {
        const page = await s.searchCertificates(q);
        assert.equal(page.total, page.items.length, 'total matches the unpaged result');
        return sorted(page.items.map((c) => c.serial));
      };
      const expect = (pred: (c: NewCertificate) => boolean) =>
        sorted(certs.filter(pred).map((c) => c.serial));

      assert.deepEqual(await serialsOf({ serial: first.serial }), [first.serial]);
      assert.deepEqual(
        await serialsOf({ subject: 'o=acme' }),
        expect((c) => c.subject.toLowerCase().includes('o=acme')),
      );
      assert.deepEqual(
        await serialsOf({ subject: 'floor 3' }),
        expect((c) => c.subject.includes('Floor 3')),
      );
      // LIKE wildcards in the needle are literal
      assert.deepEqual(
        await serialsOf({ commonName: 'e_1' }),
        expect((c) => c.commonName === 'phone_1'),
      );
      assert.deepEqual(await serialsOf({ commonName: '%' }), []);
      assert.deepEqual(
        await serialsOf({ commonName: 'LAPTOP' }),
        expect((c) => c.commonName === 'laptop-42'),
      );
      assert.deepEqual(
        await serialsOf({ san: 'ops@acme.test' }),
        expect((c) => c.commonName === 'laptop-42'),
      );
      assert.deepEqual(
        await serialsOf({ san: 'EMAIL:ops@acme.test' }),
        expect((c) => c.commonName === 'laptop-42'),
      );
      assert.deepEqual(await serialsOf({ san: 'dns:ops@acme.test' }), [], 'type must match when given');
      assert.deepEqual(
        await serialsOf({ san: 'ip:10.0.0.7' }),
        expect((c) => c.commonName === 'phone_1'),
      );
      assert.deepEqual(await serialsOf({ san: 'acme.test' }), [], 'SAN search is exact, not substring');
      assert.deepEqual(
        await serialsOf({ issuer: issuerB }),
        expect((c) => c.issuer === issuerB),
      );
      assert.deepEqual(
        await serialsOf({ keyHash: shared.toUpperCase() }),
        expect((c) => c.keyHash === shared),
      );
      assert.deepEqual(
        await serialsOf({ expiringWithinDays: 10, now }),
        expect((c) => c.notAfter >= now && c.notAfter.getTime() <= now.getTime() + 10 * DAY),
      );
      assert.deepEqual(
        await serialsOf({ expiringWithinDays: 30, now, issuer: issuerB }),
        expect(
          (c) =>
            c.issuer === issuerB && c.notAfter >= now && c.notAfter.getTime() <= now.getTime() + 30 * DAY,
        ),
      );
      assert.deepEqual(await serialsOf({ status: 'revoked' }), []);

      // paging: newest first, total ignores limit/offset
      const all = certs.map((c) => normalizeSerial(c.serial)).reverse();
      const p1 = await s.searchCertificates({ limit: 4 });
      const p2 = await s.searchCertificates({ limit: 4, offset: 4 });
      assert.equal(p1.total, certs.length);
      assert.equal(p2.total, certs.length);
      assert.deepEqual(
        [...p1.items, ...p2.items].map((c) => c.serial),
        all,
      );

      // serial uniqueness, also across spellings
      const dup = cert({ serial: '00' + first.serial.toUpperCase() });
      await assert.rejects(s.insertCertificate(dup), (e: unknown) => {
        assert.ok(e instanceof SerialConflictError);
        assert.equal(e.serial, normalizeSerial(first.serial));
        return true;
      });
      assert.equal(
        (await s.searchCertificates({})).total,
        certs.length,
        'the conflicting insert left nothing',
      );
    });
  });

  await t.test('revocation, listRevoked, CRL numbers and CRL storage', async () => {
    await withStores(b.fresh(), 1, async (s) => {
      const issuer = 'c3'.repeat(32);
      const certs = [cert({ issuer }), cert({ issuer }), cert({ issuer }), cert({ issuer: 'd4'.repeat(32) })];
      for (const c of certs) await s.insertCertificate(c);
      const at = new Date(Date.now() - 60_000);
      const [c0, c1, , c3] = certs as [NewCertificate, NewCertificate, NewCertificate, NewCertificate];
      assert.equal(await s.revoke(c0.serial, 1, at), true);
      assert.equal(await s.revoke(c0.serial, 4, new Date()), false, 'second revoke changes nothing');
      assert.equal(await s.revoke(c1.serial, 4, at), true);
      assert.equal(await s.revoke(c3.serial, 0, at), true);
      assert.equal(await s.revoke('beef', 0, at), false, 'unknown serial');
      const r0 = await s.getCertificate(c0.serial);
      assert.equal(r0?.status, 'revoked');
      assert.equal(r0?.revocationReason, 1, 'first reason stays');
      assert.equal(r0?.revokedAt?.getTime(), at.getTime());
      const revoked = await s.listRevoked(issuer);
      assert.deepEqual(
        revoked.map((r) => r.serial),
        sorted([c0.serial, c1.serial].map(normalizeSerial)),
      );
      assert.deepEqual(sorted(revoked.map((r) => String(r.reason))), ['1', '4']);
      assert.equal((await s.searchCertificates({ status: 'revoked', issuer })).total, 2);
      assert.equal((await s.searchCertificates({ status: 'valid', issuer })).total, 1);

      assert.equal(await s.latestCrl(issuer), null);
      const n1 = await s.nextCrlNumber(issuer);
      const n2 = await s.nextCrlNumber(issuer);
      assert.equal(n1, 1n);
      assert.equal(n2, 2n);
      assert.equal(await s.nextCrlNumber('d4'.repeat(32)), 1n, 'counters are per issuer');
      const crl = {
        issuer,
        crlNumber: n2,
        der: randomBytes(100),
        thisUpdate: new Date(),
        nextUpdate: new Date(Date.now() + DAY),
      };
      assert.equal(await s.saveCrl(crl), true);
      assert.equal(
        await s.saveCrl({ ...crl, crlNumber: n1, der: randomBytes(10) }),
        false,
        'older CRL never replaces newer',
      );
      const latest = await s.latestCrl(issuer);
      assert.equal(latest?.crlNumber, 2n);
      assert.deepEqual(latest?.der, crl.der);
      assert.equal(latest?.nextUpdate.getTime(), crl.nextUpdate.getTime());
    });
  });

  await t.test('transactions: begin, resend, issue, conflicts, decide, fail, expire', async () => {
    await withStores(b.fresh(), 1, async (s) => {
      const csr = randomBytes(300);
      const begun = await s.beginTransaction({
        transactionId: 'tx-1',
        signerKeyHash: 'AB'.repeat(32),
        messageType: 19,
        state: 'approved',
        csr,
        subject: 'CN=dev',
        requester: '192.0.2.1',
        meta: { profile: 'default', n: 1 },
      });
      assert.equal(begun.created, true);
      const again = await s.beginTransaction({
        transactionId: 'tx-1',
        signerKeyHash: 'cd'.repeat(32),
        messageType: 19,
        state: 'pending',
      });
      assert.equal(again.created, false);
      assert.ok(!again.created);
      assert.equal(again.existing.signerKeyHash, 'ab'.repeat(32), 'the original signer is kept');
      assert.equal(again.existing.state, 'approved');
      assert.deepEqual(again.existing.csr, csr);
      assert.deepEqual(again.existing.meta, { profile: 'default', n: 1 });

      // serial conflict leaves the transaction issuable; a retry with a new serial works
      const taken = cert();
      await s.insertCertificate(taken);
      await assert.rejects(
        s.recordIssued({ transactionId: 'tx-1', cert: cert({ serial: taken.serial }) }),
        SerialConflictError,
      );
      assert.equal((await s.getTransaction('tx-1'))?.state, 'approved');
      const good = cert();
      await s.recordIssued({ transactionId: 'tx-1', cert: good });
      const tx = await s.getTransaction('tx-1');
      assert.equal(tx?.state, 'issued');
      assert.equal(tx?.certSerial, normalizeSerial(good.serial));
      const byTx = await s.searchCertificates({ transactionId: 'tx-1' });
      assert.deepEqual(
        byTx.items.map((c) => c.serial),
        [normalizeSerial(good.serial)],
      );
      await assert.rejects(s.recordIssued({ transactionId: 'tx-1', cert: cert() }), (e: unknown) => {
        assert.ok(e instanceof AlreadyIssuedError);
        assert.equal(e.serial, normalizeSerial(good.serial));
        return true;
      });
      await assert.rejects(s.recordIssued({ transactionId: 'nope', cert: cert() }), (e: unknown) => {
        assert.ok(e instanceof TransactionStateError);
        assert.equal(e.state, null);
        return true;
      });

      // pending → decide
      const exp = new Date(Date.now() + 3_600_000);
      await s.beginTransaction({
        transactionId: 'p-1',
        signerKeyHash: 'ab',
        messageType: 19,
        state: 'pending',
        expiresAt: exp,
      });
      await s.beginTransaction({
        transactionId: 'p-2',
        signerKeyHash: 'ab',
        messageType: 19,
        state: 'pending',
        expiresAt: exp,
      });
      await s.beginTransaction({
        transactionId: 'p-3',
        signerKeyHash: 'ab',
        messageType: 17,
        state: 'pending',
        expiresAt: exp,
      });
      const pending = await s.listTransactions({ state: 'pending' });
      assert.deepEqual(
        pending.items.map((x) => x.transactionId),
        ['p-1', 'p-2', 'p-3'],
      );
      assert.equal(pending.total, 3);
      assert.equal(
        (await s.listTransactions({ state: 'pending', limit: 1, offset: 1 })).items[0]?.transactionId,
        'p-2',
      );
      assert.equal(await s.decide('p-1', 'rejected', 'not ours'), true);
      assert.equal(await s.decide('p-1', 'approved'), false, 'decisions only from pending');
      const rej = await s.getTransaction('p-1');
      assert.equal(rej?.state, 'rejected');
      assert.equal(rej?.failText, 'not ours');
      await assert.rejects(s.recordIssued({ transactionId: 'p-1', cert: cert() }), (e: unknown) => {
        assert.ok(e instanceof TransactionStateError);
        assert.equal(e.state, 'rejected');
        return true;
      });
      assert.equal(await s.fail('p-2', 'failed', 2, 'CA signing failed'), true);
      assert.equal(await s.fail('p-2', 'failed', 2, 'again'), false);
      assert.equal((await s.getTransaction('p-2'))?.failInfo, 2);
      // expiry: only pending ones past expiresAt
      assert.equal(await s.expirePending(new Date()), 0);
      assert.equal(await s.expirePending(new Date(exp.getTime() + 1)), 1);
      assert.equal((await s.getTransaction('p-3'))?.state, 'expired');
      assert.equal((await s.listTransactions({ state: 'pending' })).total, 0);
      assert.equal(await s.decide('p-3', 'approved'), false);
    });
  });

  await t.test('secrets and settings', async () => {
    await withStores(b.fresh(), 1, async (s) => {
      const now = new Date();
      await s.addSecret('AA11', new Date(now.getTime() + 60_000), { purpose: 'challenge' });
      await assert.rejects(s.addSecret('aa11', new Date(now.getTime() + 60_000)), DuplicateKeyError);
      await s.addSecret('bb22', new Date(now.getTime() - 1));
      assert.equal(await s.consumeSecret('bb22', now), false, 'expired');
      assert.equal(await s.consumeSecret('cc33', now), false, 'unknown');
      assert.equal(await s.consumeSecret('aa11', now), true);
      assert.equal(await s.consumeSecret('aa11', now), false, 'only once');
      assert.equal(await s.pruneSecrets(now), 1);
      assert.equal(await s.consumeSecret('bb22', new Date(0)), false, 'pruned');

      assert.equal(await s.getSetting('ca.state'), null);
      await s.setSetting('ca.state', 'staged');
      await s.setSetting('ca.state', 'active');
      assert.equal(await s.getSetting('ca.state'), 'active');
    });
  });

  await t.test(
    '50 concurrent recordIssued for one transaction (two instances) commit one certificate',
    async () => {
      await withStores(b.fresh(), 2, async (s1, s2) => {
        const s1s = s1 as Store;
        const s2s = s2 as Store;
        await s1s.beginTransaction({
          transactionId: 'race',
          signerKeyHash: 'ab',
          messageType: 19,
          state: 'approved',
        });
        const attempts = Array.from({ length: 50 }, () => cert());
        const results = await Promise.allSettled(
          attempts.map((c, i) => (i % 2 ? s2s : s1s).recordIssued({ transactionId: 'race', cert: c })),
        );
        const won = results.filter((r) => r.status === 'fulfilled');
        assert.equal(won.length, 1, 'exactly one issuance');
        const tx = await s2s.getTransaction('race');
        assert.equal(tx?.state, 'issued');
        for (const r of results) {
          if (r.status === 'rejected') {
            assert.ok(r.reason instanceof AlreadyIssuedError, String(r.reason));
            assert.equal(r.reason.serial, tx?.certSerial);
          }
        }
        const certs = await s1s.searchCertificates({ transactionId: 'race' });
        assert.equal(certs.total, 1);
        assert.equal(certs.items[0]?.serial, tx?.certSerial);
        assert.equal((await s1s.searchCertificates({})).total, 1, 'no stray certificate');
      });
    },
  );

  await t.test(
    'recordIssued with open: one write opens and issues; an existing transactionID writes nothing',
    async () => {
      await withStores(b.fresh(), 2, async (s1, s2) => {
        const a = s1 as Store;
        const c = s2 as Store;
        const open = (id: string) =>
          ({
            transactionId: id,
            signerKeyHash: 'AB',
            messageType: 19,
            state: 'approved',
            csr: Buffer.from('csr'),
            subject: 'CN=one',
            requester: '127.0.0.9',
            meta: { challenge: 'static' },
          }) as const;
        assert.equal(await a.transactionExists('one'), false);
        const first = cert();
        await a.recordIssued({
          transactionId: 'one',
          cert: first,
          open: open('one'),
          audit: {
            actor: 'device',
            action: 'enroll.issued',
            target: 'one',
            details: { serial: first.serial },
          },
        });
        assert.equal(await c.transactionExists('one'), true);
        const tx = await c.getTransaction('one');
        assert.equal(tx?.state, 'issued');
        assert.equal(tx?.certSerial, normalizeSerial(first.serial));
        assert.equal(tx?.signerKeyHash, 'ab');
        assert.deepEqual(tx?.meta, { challenge: 'static' });
        assert.equal(tx?.requester, '127.0.0.9');
        assert.equal((await c.getCertificate(first.serial))?.transactionId, 'one');
        const chain = await c.readAuditChain(0, 100);
        assert.deepEqual(
          chain.map((r) => [r.action, r.target]),
          [['enroll.issued', 'one']],
        );
        // The same transactionID again (another instance): refused, nothing written.
        await assert.rejects(
          c.recordIssued({ transactionId: 'one', cert: cert(), open: open('one') }),
          TransactionExistsError,
        );
        assert.equal((await a.searchCertificates({})).total, 1, 'no second certificate');
        assert.equal((await a.readAuditChain(0, 100)).length, 1, 'no second audit record');
        assert.equal((await a.getTransaction('one'))?.certSerial, normalizeSerial(first.serial));
        // Racing opens of one new transactionID from two instances: exactly one issues.
        const results = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) =>
            (i % 2 ? a : c).recordIssued({ transactionId: 'race', cert: cert(), open: open('race') }),
          ),
        );
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'exactly one issuance');
        for (const r of results)
          if (r.status === 'rejected')
            assert.ok(r.reason instanceof TransactionExistsError, String(r.reason));
        assert.equal((await a.searchCertificates({ transactionId: 'race' })).total, 1);
        // A mismatched open is refused before anything is written.
        await assert.rejects(
          a.recordIssued({ transactionId: 'two', cert: cert(), open: open('other') }),
          /another transactionID/,
        );
        assert.equal(await a.transactionExists('two'), false);
        assert.equal(await a.transactionExists('other'), false);
        const report = await a.integrityCheck();
        assert.deepEqual(report.problems, []);
      });
    },
  );

  await t.test('200 concurrent recordIssued for distinct transactions are all durable', async () => {
    const db = b.fresh();
    const issuer = 'e5'.repeat(32);
    const serials: string[] = [];
    await withStores(db, 1, async (s) => {
      const ids = Array.from({ length: 200 }, (_, i) => `bulk-${i}`);
      await Promise.all(
        ids.map((id) =>
          s.beginTransaction({ transactionId: id, signerKeyHash: 'ab', messageType: 19, state: 'approved' }),
        ),
      );
      const before = s.stats();
      const t0 = performance.now();
      await Promise.all(
        ids.map((id) => {
          const c = cert({ issuer });
          serials.push(normalizeSerial(c.serial));
          return s.recordIssued({ transactionId: id, cert: c });
        }),
      );
      const ms = performance.now() - t0;
      const after = s.stats();
      const commits = after.commits - before.commits;
      console.log(`# ${b.name}: 200 concurrent recordIssued in ${ms.toFixed(1)} ms, ${commits} commits`);
      if (b.name === 'sqlite')
        assert.ok(commits < 200, `group commit shared commits (${commits} for 200 writes)`);
    });
    // a new instance (as after a restart) sees every one
    await withStores(db, 1, async (s) => {
      const page = await s.searchCertificates({ issuer, limit: 1000 });
      assert.equal(page.total, 200);
      assert.deepEqual(sorted(page.items.map((c) => c.serial)), sorted(serials));
      assert.equal((await s.listTransactions({ state: 'issued' })).total, 200);
      const report = await s.integrityCheck();
      assert.deepEqual(report, { ok: true, problems: [] });
    });
  });

  await t.test('a failing write is undone alone; the writes sharing its commit stay', async () => {
    await withStores(b.fresh(), 1, async (s) => {
      const issuer = 'ee'.repeat(32);
      const existing = cert({ issuer });
      await s.insertCertificate(existing);
      const before = s.stats();
      const good1 = cert({ issuer });
      const good2 = cert({ issuer });
      const partial = [cert({ issuer }), cert({ issuer }), { ...existing }]; // fails on its third row
      // all submitted in the same tick, so SQLite runs them in one BEGIN … COMMIT
      const results = await Promise.allSettled([
        s.insertCertificate(good1),
        s.bulkInsertCertificates(partial),
        s.recordIssued({ transactionId: 'missing', cert: cert({ issuer }) }),
        s.insertCertificate(good2),
      ]);
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'rejected', 'rejected', 'fulfilled'],
      );
      assert.ok(results[1]?.status === 'rejected' && results[1].reason instanceof SerialConflictError);
      assert.ok(results[2]?.status === 'rejected' && results[2].reason instanceof TransactionStateError);
      const stored = await s.searchCertificates({ issuer });
      assert.deepEqual(
        sorted(stored.items.map((c) => c.serial)),
        sorted([existing, good1, good2].map((c) => normalizeSerial(c.serial))),
      );
      const after = s.stats();
      if (b.name === 'sqlite') assert.equal(after.commits - before.commits, 1, 'one shared commit');
    });
  });

  await t.test('nextCrlNumber is strictly increasing under concurrency across instances', async () => {
    await withStores(b.fresh(), 2, async (s1, s2) => {
      const issuer = 'f6'.repeat(32);
      const got = await Promise.all(
        Array.from({ length: 60 }, (_, i) => ((i % 2 ? s1 : s2) as Store).nextCrlNumber(issuer)),
      );
      const nums = got.map(Number).sort((a, b) => a - b);
      assert.deepEqual(
        nums,
        Array.from({ length: 60 }, (_, i) => i + 1),
        'no gaps, no duplicates',
      );
      // sequential calls from alternating instances keep increasing
      let last = 60n;
      for (let i = 0; i < 6; i++) {
        const n = await ((i % 2 ? s1 : s2) as Store).nextCrlNumber(issuer);
        assert.ok(n > last);
        last = n;
      }
    });
  });

  await t.test('consumeSecret succeeds exactly once across two instances', async () => {
    await withStores(b.fresh(), 2, async (s1, s2) => {
      const now = new Date();
      for (let round = 0; round < 5; round++) {
        const h = hex(32);
        await (s1 as Store).addSecret(h, new Date(now.getTime() + 60_000));
        const got = await Promise.all(
          Array.from({ length: 20 }, (_, i) => ((i % 2 ? s1 : s2) as Store).consumeSecret(h, now)),
        );
        assert.equal(got.filter(Boolean).length, 1, `round ${round}`);
      }
    });
  });

  await t.test('a decision taken by a second instance (operator CLI) is seen by the first', async () => {
    await withStores(b.fresh(), 2, async (server, cli) => {
      const srv = server as Store;
      const op = cli as Store;
      await srv.beginTransaction({
        transactionId: 'wait-1',
        signerKeyHash: 'ab',
        messageType: 19,
        state: 'pending',
        subject: 'CN=w',
      });
      const listed = await op.listTransactions({ state: 'pending' });
      assert.deepEqual(
        listed.items.map((x) => x.transactionId),
        ['wait-1'],
      );
      assert.equal(await op.decide('wait-1', 'approved'), true);
      assert.equal((await srv.getTransaction('wait-1'))?.state, 'approved');
      await srv.recordIssued({ transactionId: 'wait-1', cert: cert() });
      assert.equal((await op.getTransaction('wait-1'))?.state, 'issued');
      assert.equal(await op.decide('wait-1', 'rejected'), false);
    });
  });

  await t.test('migrations: idempotent, and safe with concurrent opens in separate processes', async () => {
    const db = b.fresh();
    const outs = await Promise.all([openInChild(db), openInChild(db), openInChild(db)]);
    assert.deepEqual(outs, ['ok', 'ok', 'ok']);
    await withStores(db, 2, async (s1, s2) => {
      assert.equal((await (s1 as Store).listTransactions({ state: 'pending' })).total, 3);
      assert.equal((await (s2 as Store).integrityCheck()).ok, true);
    });
    const rows = await db.raw('SELECT version FROM schema_migrations ORDER BY version');
    assert.deepEqual(
      rows.map((r) => Number(r.version)),
      MIGRATIONS.map((m) => m.version),
    );
  });

  await t.test('integrityCheck passes on a good store and reports planted problems', async () => {
    const db = b.fresh();
    await withStores(db, 1, async (s) => {
      await s.beginTransaction({
        transactionId: 'ok-1',
        signerKeyHash: 'ab',
        messageType: 19,
        state: 'approved',
      });
      await s.recordIssued({ transactionId: 'ok-1', cert: cert() });
      await s.beginTransaction({
        transactionId: 'bad-1',
        signerKeyHash: 'ab',
        messageType: 19,
        state: 'approved',
      });
      assert.deepEqual(await s.integrityCheck(), { ok: true, problems: [] });
      // an "issued" transaction whose certificate is missing (a lost write)
      await db.raw(
        "UPDATE transactions SET state = 'issued', cert_serial = 'dead' WHERE transaction_id = 'bad-1'",
      );
      const report = await s.integrityCheck();
      assert.equal(report.ok, false);
      assert.ok(
        report.problems.some((p) => p.includes('bad-1')),
        report.problems.join('; '),
      );
      // a guarantee-carrying index dropped
      await db.raw('DROP INDEX certificates_transaction_id_key');
      assert.ok(
        (await s.integrityCheck()).problems.some((p) => p.includes('certificates_transaction_id_key')),
      );
    });
  });

  await t.test('several CAs: (ca, serial) is the key; CA and profile recorded and filtered', async () => {
    await withStores(b.fresh(), 1, async (s) => {
      const serial = '7f' + hex(9);
      // The same serial in two CAs: both stored, each found under its CA, neither collides.
      await s.insertCertificate(cert({ serial, issuer: 'b'.repeat(64) }));
      await s.insertCertificate(cert({ serial, issuer: 'c'.repeat(64), ca: 'routers', profile: 'routers' }));
      await assert.rejects(s.insertCertificate(cert({ serial, ca: 'routers' })), SerialConflictError);
      const def = await s.getCertificate(serial);
      const routers = await s.getCertificate(serial, 'routers');
      assert.equal(def?.ca, 'default');
      assert.equal(def?.profile, 'default');
      assert.equal(def?.issuer, 'b'.repeat(64));
      assert.equal(routers?.ca, 'routers');
      assert.equal(routers?.profile, 'routers');
      assert.equal(routers?.issuer, 'c'.repeat(64));
      assert.equal(await s.getCertificate(serial, 'nowhere'), null);
      assert.equal((await s.searchCertificates({ serial })).total, 2);
      assert.equal((await s.searchCertificates({ serial, ca: 'routers' })).items[0]?.issuer, 'c'.repeat(64));
      assert.equal((await s.searchCertificates({ profile: 'routers' })).total, 1);
      // A SAN search finds each CA's certificate once, with its own CA.
      const san = routers!.sans[0]!;
      const bySan = await s.searchCertificates({ san });
      assert.deepEqual(
        bySan.items.map((c) => c.ca),
        ['routers'],
      );
      // Revoking in one CA leaves the other CA's certificate with that serial valid.
      assert.equal(await s.revoke(serial, 1, new Date(), 'routers'), true);
      assert.equal((await s.getCertificate(serial))?.status, 'valid');
      assert.equal((await s.getCertificate(serial, 'routers'))?.status, 'revoked');
      assert.deepEqual(await s.listRevoked('b'.repeat(64)), []);
      assert.deepEqual(
        (await s.listRevoked('c'.repeat(64))).map((r) => r.serial),
        [serial],
      );

      // recordIssued files the certificate under the transaction's CA and profile.
      await s.beginTransaction({
        transactionId: 'cas-1',
        signerKeyHash: 'ab',
        messageType: 19,
        state: 'approved',
        ca: 'routers',
        profile: 'edge',
      });
      const tx = await s.getTransaction('cas-1');
      assert.equal(tx?.ca, 'routers');
      assert.equal(tx?.profile, 'edge');
      const serial2 = '7f' + hex(9);
      await s.recordIssued({ transactionId: 'cas-1', cert: cert({ serial: serial2 }) });
      const issued = await s.getCertificate(serial2, 'routers');
      assert.equal(issued?.profile, 'edge');
      assert.equal(await s.getCertificate(serial2), null);
      // Same serial as another CA's: no conflict inside recordIssued either.
      await s.beginTransaction({
        transactionId: 'cas-2',
        signerKeyHash: 'ab',
        messageType: 19,
        state: 'approved',
      });
      await s.recordIssued({ transactionId: 'cas-2', cert: cert({ serial: serial2 }) });
      assert.equal((await s.getCertificate(serial2))?.transactionId, 'cas-2');
      await s.beginTransaction({
        transactionId: 'cas-3',
        signerKeyHash: 'ab',
        messageType: 19,
        state: 'pending',
      });
      assert.equal((await s.listTransactions({ profile: 'edge' })).total, 1);
      assert.equal((await s.listTransactions({ ca: 'routers' })).items[0]?.transactionId, 'cas-1');
      assert.equal((await s.listTransactions({ state: 'pending', profile: 'default' })).total, 1);
      assert.deepEqual(await s.integrityCheck(), { ok: true, problems: [] });
    });
  });

  await t.test('the CA and profile migration files existing rows under `default`', async () => {
    const db = b.fresh();
    const dialect = b.name === 'sqlite' ? 'sqlite' : 'postgres';
    // The schema just before the CA and profile migration, whatever its number.
    const caMigration = MIGRATIONS.find((m) => m.name === 'CA and profile')!;
    const old = MIGRATIONS.filter((m) => m.version < caMigration.version);
    await db.script(
      old.map((m) => m[dialect]).join('\n') +
        `;CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);
        INSERT INTO schema_migrations VALUES ${old.map((m) => `(${m.version}, '${m.name}', 'x')`).join(', ')};`,
    );
    const ts = b.name === 'sqlite' ? String(Date.now()) : 'now()';
    const der = b.name === 'sqlite' ? "x'3000'" : "'\\x3000'::bytea";
    await db.script(`
      INSERT INTO certificates (serial, issuer, subject, common_name, sans, not_before, not_after, key_hash,
        transaction_id, status, created_at, der)
      VALUES ('0a', '${'d'.repeat(64)}', 'CN=old', 'old', '["dns:old.example"]', ${ts}, ${ts}, 'kh', 'old-1', 'valid', ${ts}, ${der});
      INSERT INTO certificate_sans (value, type, serial) VALUES ('old.example', 'dns', '0a');
      INSERT INTO transactions (transaction_id, signer_key_hash, message_type, state, created_at, updated_at, cert_serial)
      VALUES ('old-1', 'ab', 19, 'issued', ${ts}, ${ts}, '0a');`);
    await withStores(db, 1, async (s) => {
      const c = await s.getCertificate('0a');
      assert.equal(c?.ca, 'default');
      assert.equal(c?.profile, 'default');
      assert.equal(c?.subject, 'CN=old');
      assert.equal((await s.searchCertificates({ san: 'dns:old.example' })).items[0]?.serial, '0a');
      const t = await s.getTransaction('old-1');
      assert.equal(t?.ca, 'default');
      assert.equal(t?.profile, 'default');
      assert.deepEqual(await s.integrityCheck(), { ok: true, problems: [] });
      // the old unique guarantees still hold on the rebuilt table
      await assert.rejects(s.insertCertificate(cert({ serial: '0a' })), SerialConflictError);
      await s.insertCertificate(cert({ serial: '0a', ca: 'other' }));
    });
  });

  if (b.name === 'postgres') {
    await t.test('postgres: ?schema= in the URL selects the schema', async () => {
      const db = b.fresh();
      const url = `${db.url}${db.url.includes('?') ? '&' : '?'}schema=${String(db.opts.schema)}`;
      const s = await openStore(url);
      try {
        await s.setSetting('where', 'here');
      } finally {
        await s.close();
      }
      assert.deepEqual(await db.raw("SELECT value FROM settings WHERE key = 'where'"), [{ value: 'here' }]);
    });
  }

  await t.test('bulk insert of 100k certificates, then searches still answer right', async () => {
    await withStores(b.fresh(), 1, async (s) => {
      const issuer = '99'.repeat(32);
      const now = Date.now();
      const der = randomBytes(600);
      const rows: NewCertificate[] = [];
      for (let i = 0; i < 100_000; i++) {
        rows.push({
          serial: (0x10000000 + i).toString(16) + hex(8),
          issuer,
          subject: `CN=bulk-${i},O=Fleet`,
          commonName: `bulk-${i}`,
          sans: [`dns:bulk-${i}.fleet.test`],
          der,
          notBefore: new Date(now - DAY),
          notAfter: new Date(now + (i % 400) * DAY),
          keyHash: hex(32),
          transactionId: null,
          createdAt: new Date(now - 100_000 + i),
        });
      }
      const t0 = performance.now();
      let inserted = 0;
      for (let i = 0; i < rows.length; i += 20_000)
        inserted += await s.bulkInsertCertificates(rows.slice(i, i + 20_000));
      const sec = (performance.now() - t0) / 1000;
      console.log(
        `# ${b.name}: bulk insert ${inserted} rows in ${sec.toFixed(2)} s = ${Math.round(inserted / sec)} rows/s`,
      );
      assert.equal(inserted, 100_000);

      const pick = rows[54_321] as NewCertificate;
      assert.equal((await s.getCertificate(pick.serial))?.commonName, 'bulk-54321');
      assert.deepEqual(
        (await s.searchCertificates({ san: 'bulk-54321.fleet.test' })).items.map((c) => c.serial),
        [normalizeSerial(pick.serial)],
      );
      assert.deepEqual(
        (await s.searchCertificates({ keyHash: pick.keyHash })).items.map((c) => c.serial),
        [normalizeSerial(pick.serial)],
      );
      const within = await s.searchCertificates({ expiringWithinDays: 3, now: new Date(now), limit: 10 });
      const expected = rows.filter(
        (r) => r.notAfter.getTime() >= now && r.notAfter.getTime() <= now + 3 * DAY,
      ).length;
      assert.equal(within.total, expected);
      assert.equal(within.items.length, 10);
      assert.equal(
        (await s.searchCertificates({ commonName: 'bulk-9999' })).total,
        rows.filter((r) => r.commonName?.includes('bulk-9999')).length,
      );
      const newest = await s.searchCertificates({ limit: 2 });
      assert.equal(newest.total, 100_000);
      assert.deepEqual(
        newest.items.map((c) => c.commonName),
        ['bulk-99999', 'bulk-99998'],
      );
      // a duplicate inside a bulk batch rolls the whole batch back
      await assert.rejects(s.bulkInsertCertificates([cert({ issuer }), { ...pick }]), SerialConflictError);
      assert.equal((await s.searchCertificates({ issuer, limit: 0 })).total, 100_000);
    });
  });
}

for (const backend of [sqliteBackend(), postgresBackend()]) {
  test(`store (${backend.name})`, async (t) => {
    if (!needPeer(t, backend.available(), backend.name === 'postgres' ? `PostgreSQL at ${PG_URL}` : 'SQLite'))
      return;
    try {
      await suite(t, backend);
    } finally {
      await backend.cleanup();
    }
  });
}

test('normalizeSerial: the pkix serialToHex form from any common spelling', () => {
  assert.equal(normalizeSerial('00:AB'), 'ab');
  assert.equal(normalizeSerial('0x0ABC'), '0abc');
  assert.equal(normalizeSerial('ABC'), '0abc');
  assert.equal(normalizeSerial('0000'), '00');
  assert.equal(normalizeSerial('0'), '00');
  assert.equal(normalizeSerial('00 80 01'), '8001');
  assert.throws(() => normalizeSerial('xyz'), TypeError);
  assert.throws(() => normalizeSerial(''), TypeError);
});

test('openStore: sqlite:PATH, sqlite://PATH, a plain path and :memory: open SQLite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'scepter-store-url-'));
  try {
    const urls = [
      `sqlite:${join(dir, 'a.db')}`,
      `sqlite://${join(dir, 'b.db')}`,
      join(dir, 'sub', 'c.db'),
      ':memory:',
    ];
    for (const url of urls) {
      const s = await openStore(url);
      try {
        assert.equal(s.kind, 'sqlite');
        await s.setSetting('k', url);
        assert.equal(await s.getSetting('k'), url);
      } finally {
        await s.close();
      }
    }
    // the file-backed ones kept their data on disk
    for (const url of urls.slice(0, 3)) {
      const s = await openStore(url);
      assert.equal(await s.getSetting('k'), url);
      await s.close();
    }
    await assert.rejects(openStore('sqlite:'), TypeError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a new SQLite store file is readable by its owner only', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'scepter-store-mode-'));
  try {
    const file = join(dir, 'scepter.db');
    const s = await openStore(file);
    await s.setSetting('k', 'v');
    await s.close();
    assert.equal(statSync(file).mode & 0o777, 0o600);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
