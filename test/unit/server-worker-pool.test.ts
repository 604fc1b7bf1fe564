/**
 * The worker pool (`--workers N`): store calls cross the thread boundary intact (Buffers,
 * Dates, bigints, the store's error classes; Buffer views moved as exact copies), and a server
 * with two engines (the HTTP thread + one worker thread) enrolls, answers
 * resends and concurrent duplicates with one certificate, and keeps everything in one store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel, type Worker } from 'node:worker_threads';
import { startServer } from '../../src/server/index.js';
import {
  RemoteStore,
  revive,
  runStoreCall,
  transferable,
  type StoreCall,
  type StoreResult,
} from '../../src/server/store-rpc.js';
import type { WorkerPoolService } from '../../src/server/worker-pool.js';
import { MessageBatcher, unbatch, type Batch } from '../../src/server/message-batch.js';
import {
  AlreadyIssuedError,
  SerialConflictError,
  openStore,
  type NewCertificate,
} from '../../src/store/index.js';
import { checkReply, generateRsaKeys, makeEnrollment, postPkiMessage } from '../helpers/enrollment.js';
import { seeded } from '../helpers/scep-server.js';

function cert(serial: string, transactionId: string | null): NewCertificate {
  return {
    serial,
    issuer: 'ab'.repeat(32),
    subject: 'CN=rpc',
    commonName: 'rpc',
    sans: ['dns:rpc.test'],
    der: randomBytes(64),
    notBefore: new Date(1_700_000_000_000),
    notAfter: new Date(1_800_000_000_000),
    keyHash: 'cd'.repeat(32),
    transactionId,
  };
}

test('RemoteStore over a MessageChannel: values and store errors survive structured clone', async (t) => {
  const store = await openStore(':memory:');
  const { port1, port2 } = new MessageChannel();
  t.after(async () => {
    port1.close();
    await store.close();
  });
  port2.on('message', (call: StoreCall) => {
    void runStoreCall(store, call).then((r) => port2.postMessage(r));
  });
  const remote = new RemoteStore('sqlite', (call) => port1.postMessage(call));
  port1.on('message', (r: StoreResult) => remote.settle(r));

  const csr = randomBytes(40);
  const begun = await remote.beginTransaction({
    transactionId: 'rpc-1',
    signerKeyHash: 'ef'.repeat(32),
    messageType: 19,
    state: 'approved',
    csr,
  });
  assert.equal(begun.created, true);
  assert.ok(begun.created && Buffer.isBuffer(begun.record.csr) && begun.record.csr.equals(csr));
  assert.ok(begun.created && begun.record.createdAt instanceof Date);

  const c = cert('0a11', 'rpc-1');
  await remote.recordIssued({ transactionId: 'rpc-1', cert: c });
  const got = await remote.getCertificate('0a11');
  assert.ok(got && Buffer.isBuffer(got.der) && got.der.equals(c.der), 'der comes back as the same Buffer');
  assert.deepEqual(got.sans, ['dns:rpc.test']);

  await assert.rejects(remote.recordIssued({ transactionId: 'rpc-1', cert: cert('0b22', 'rpc-1') }), (e) => {
    assert.ok(e instanceof AlreadyIssuedError);
    assert.equal(e.serial, '0a11');
    return true;
  });
  await assert.rejects(remote.insertCertificate(cert('0a11', null)), SerialConflictError);
  assert.equal(await remote.nextCrlNumber('ab'.repeat(32)), 1n);
  assert.equal(await remote.nextCrlNumber('ab'.repeat(32)), 2n);
  assert.deepEqual(await remote.integrityCheck(), { ok: true, problems: [] });
});

test('transferable: views become exact copies that are moved; the caller keeps its values', async () => {
  const slab = Buffer.alloc(8192, 7);
  const view = slab.subarray(100, 200);
  const own = new Uint8Array(16).fill(3);
  const arg = { der: view, nested: [{ csr: view }, own], when: new Date(5), n: 1n, s: 'x' };
  const list: ArrayBuffer[] = [];
  const out = transferable(arg, list);
  assert.equal(list.length, 2, 'one moved copy per view');
  assert.notEqual(out, arg);
  assert.equal(out.der.byteLength, 100);
  assert.equal(out.der.buffer.byteLength, 100, 'an exact copy, not the 8 KiB slab');
  assert.equal(out.nested[1], own, 'a Buffer owning its ArrayBuffer is left to the clone');
  const { port1, port2 } = new MessageChannel();
  const got = new Promise<unknown>((resolve) => port2.once('message', resolve));
  port1.postMessage(out, list);
  const received = revive((await got) as typeof arg);
  port1.close();
  assert.ok(Buffer.isBuffer(received.der) && received.der.equals(view));
  assert.ok((received.nested[0] as { csr: Buffer }).csr.equals(view));
  assert.deepEqual(received.when, new Date(5));
  assert.equal(received.n, 1n);
  // The caller's own objects and Buffers are untouched (nothing of theirs was detached).
  assert.equal(arg.der, view);
  assert.equal(view.byteLength, 100);
  assert.equal(view[0], 7);
  assert.equal(list[0]!.byteLength, 0, 'the moved copies are detached on the sending side');
});

test('MessageBatcher: one postMessage per event-loop turn, in order, transfer lists joined', async () => {
  const { port1, port2 } = new MessageChannel();
  const posts: Array<{ batch: Batch<{ n: number; b?: Uint8Array }>; transfer: ArrayBuffer[] }> = [];
  const out = new MessageBatcher<{ n: number; b?: Uint8Array }>((batch, transfer) => {
    posts.push({ batch, transfer });
    port1.postMessage(batch, transfer);
  });
  const received: Array<{ n: number; b?: Uint8Array }> = [];
  let events = 0;
  const got = new Promise<void>((resolve) =>
    port2.on('message', (data: { n: number } | Batch<{ n: number }>) => {
      events++;
      received.push(...unbatch(data));
      if (received.length === 5) resolve();
    }),
  );
  const a = new Uint8Array([1, 2, 3]);
  const b = new Uint8Array([4, 5]);
  out.send({ n: 1, b: a }, [a.buffer as ArrayBuffer]);
  out.send({ n: 2 });
  await Promise.resolve(); // microtasks of the same turn still join the batch
  out.send({ n: 3, b }, [b.buffer as ArrayBuffer]);
  assert.equal(posts.length, 0, 'nothing leaves before the turn ends');
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(posts.length, 1, 'three messages of one turn: one postMessage');
  assert.equal(posts[0]!.transfer.length, 2);
  out.send({ n: 4 });
  out.flush();
  assert.equal(posts.length, 2, 'flush posts at once');
  out.flush();
  assert.equal(posts.length, 2, 'an empty queue posts nothing');
  port1.postMessage({ n: 5 }); // a message posted directly (ready / init-failed)
  await got;
  port1.close();
  assert.deepEqual(
    received.map((m) => m.n),
    [1, 2, 3, 4, 5],
  );
  assert.deepEqual([...received[0]!.b!], [1, 2, 3]);
  assert.deepEqual([...received[2]!.b!], [4, 5]);
  assert.equal(a.byteLength, 0, 'transferred, not cloned');
  assert.equal(events, 3);
});

test('a two-worker server: concurrent enrollments, resends and duplicates share one store', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'scepter-pool-'));
  const challenge = 'pool-challenge-3';
  const server = await startServer(
    seeded({
      dataDir: dir,
      keySize: 2048,
      challenge,
      workers: 2,
      logLevel: 'silent',
      enrollment: { allowSingleDes: true },
    }),
  );
  t.after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  // Two engines: the HTTP thread and one worker thread.
  assert.equal((server.service as WorkerPoolService).size, 1);
  const ca = server.dataDir!.loaded.caCert;
  const keys = await generateRsaKeys(4);
  const reqs = Array.from({ length: 16 }, (_, i) =>
    makeEnrollment({ key: keys[i % 4]!, recipient: ca, challenge, cn: `pool-${i}` }),
  );
  const send = async (e: (typeof reqs)[number]) => {
    const r = await postPkiMessage(server.url, e.der);
    const c = checkReply(r.status, r.body, e, [ca]);
    assert.ok(c.ok, c.ok ? '' : c.reason);
    return c;
  };
  const first = await Promise.all(reqs.map(send));
  assert.equal(new Set(first.map((c) => c.serial)).size, reqs.length, 'distinct serials');

  // The same request four times at once (spread over both workers) and a later resend.
  const dup = makeEnrollment({ key: keys[0]!, recipient: ca, challenge, cn: 'pool-dup' });
  const dups = await Promise.all([send(dup), send(dup), send(dup), send(dup)]);
  for (const d of dups) assert.ok(d.certDer.equals(dups[0]!.certDer), 'one certificate for one transaction');
  const resend = await send(reqs[3]!);
  assert.ok(resend.certDer.equals(first[3]!.certDer));

  // A wrong challenge is a signed FAILURE from the worker, not an HTTP error.
  const bad = makeEnrollment({ key: keys[1]!, recipient: ca, challenge: 'wrong', cn: 'pool-bad' });
  const r = await postPkiMessage(server.url, bad.der);
  assert.equal(r.status, 200);
  const c = checkReply(r.status, r.body, bad, [ca]);
  assert.ok(!c.ok && /pkiStatus 2/.test(c.reason), 'FAILURE CertRep');

  // Counters kept in the workers reach the HTTP thread's service (what metrics read).
  const des = makeEnrollment({ key: keys[2]!, recipient: ca, challenge, cn: 'pool-des', cipher: 'des' });
  const viaDes = await send(des);
  assert.equal(viaDes.cipher, 'des3', 'a single-DES request is answered with 3DES');
  assert.equal(server.enrollment!.stats.singleDesAccepted, 1);

  const store = server.enrollment!.store;
  const page = await store.searchCertificates({ issuer: ca.fingerprint, limit: 100 });
  assert.equal(page.total, reqs.length + 2);
  assert.ok(
    store.stats().commits > 0 && store.stats().commits <= store.stats().writes,
    'group commit counters',
  );
});

test('a worker that dies is replaced and the server keeps enrolling', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'scepter-pool-respawn-'));
  const challenge = 'respawn-challenge';
  const server = await startServer(
    seeded({
      dataDir: dir,
      keySize: 2048,
      challenge,
      workers: 2,
      logLevel: 'silent',
    }),
  );
  t.after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const ca = server.dataDir!.loaded.caCert;
  const [key] = await generateRsaKeys(1);
  // Reach into the pool (private) to kill one worker thread as a crash would.
  const slots = (server.service as unknown as { slots: Array<{ worker: Worker }> }).slots;
  const dead = slots[0]!.worker;
  const exited = new Promise((r) => dead.once('exit', r));
  await dead.terminate();
  await exited;
  // Poll for the replacement; the deadline only detects a hang (a busy machine may take seconds).
  const until = Date.now() + 60_000;
  while (slots[0]!.worker === dead && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  assert.notEqual(slots[0]!.worker, dead, 'a new worker took its place');
  const results = await Promise.all(
    Array.from({ length: 6 }, async (_, i) => {
      const e = makeEnrollment({ key: key!, recipient: ca, challenge, cn: `respawn-${i}` });
      const r = await postPkiMessage(server.url, e.der);
      return checkReply(r.status, r.body, e, [ca]);
    }),
  );
  for (const c of results) assert.ok(c.ok, c.ok ? '' : c.reason);
});
