/**
 * The Store across a thread boundary (src/server/store-rpc.ts), looped back in one thread with
 * structured clone: every Store method is forwarded (the list is derived from one array checked
 * against the interface), values round-trip, and the store's error classes are rebuilt by name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  fromWireError,
  RemoteStore,
  runStoreCall,
  STORE_METHODS,
  toWireError,
} from '../../src/server/store-rpc.js';
import {
  AlreadyIssuedError,
  DuplicateKeyError,
  openStore,
  SerialConflictError,
  TransactionStateError,
} from '../../src/store/index.js';

test('RemoteStore forwards every listed method to the real store; errors come back as their classes', async (t) => {
  const store = await openStore(':memory:');
  t.after(() => store.close());
  const remote: RemoteStore = new RemoteStore('sqlite', (call, transfer) => {
    const copy = structuredClone(call, { transfer });
    void runStoreCall(store, copy).then((r) => remote.settle(structuredClone(r)));
  });
  for (const m of STORE_METHODS) assert.equal(typeof remote[m], 'function', m);
  await remote.addSecret('ab'.repeat(32), new Date(Date.now() + 60_000), { who: 'test' });
  await assert.rejects(remote.addSecret('ab'.repeat(32), new Date(Date.now() + 60_000)), DuplicateKeyError);
  assert.equal(await remote.incrementCounter('k', 0), 1);
  assert.equal(await remote.incrementCounter('k', 0, 4), 5);
  assert.deepEqual(await remote.readCounters(['k', 'none'], 0), [5, 0]);
  assert.equal(await remote.nextCrlNumber('AA'), 1n);
  await assert.rejects(
    remote.recordIssued({
      transactionId: 'unknown',
      cert: {
        serial: '01',
        issuer: 'aa',
        subject: 'CN=x',
        commonName: 'x',
        sans: [],
        der: Buffer.from([1, 2, 3]),
        notBefore: new Date(0),
        notAfter: new Date(1),
        keyHash: 'bb',
        transactionId: null,
      },
    }),
    TransactionStateError,
  );
  // An unknown method is refused on the main thread.
  const bad = await runStoreCall(store, { type: 'store', id: 1, method: 'close' as never, args: [] });
  assert.equal(bad.ok, false);
});

test('wire errors: the store classes are rebuilt with their fields; others keep name and message', () => {
  const round = (e: Error) => fromWireError(structuredClone(toWireError(e)));
  const a = round(new AlreadyIssuedError('t1', 'cafe'));
  assert.ok(a instanceof AlreadyIssuedError);
  assert.equal(a.serial, 'cafe');
  assert.equal(a.transactionId, 't1');
  const s = round(new SerialConflictError('0a'));
  assert.ok(s instanceof SerialConflictError && s.serial === '0a');
  const st = round(new TransactionStateError('t2', 'rejected'));
  assert.ok(st instanceof TransactionStateError && st.state === 'rejected');
  const d = round(new DuplicateKeyError('secret'));
  assert.ok(d instanceof DuplicateKeyError && d.what === 'secret');
  const other = round(new RangeError('nope'));
  assert.equal(other.name, 'RangeError');
  assert.equal(other.message, 'nope');
  // A name like a prototype member is not a class.
  assert.equal(fromWireError({ name: 'constructor', message: 'x' }).name, 'constructor');
});
