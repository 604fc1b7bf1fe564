/**
 * The last-poll record of pending requests (src/ra/poll-notes.ts): the first poll of a
 * transaction in a window is written at once, later ones in the window only leave their time,
 * written (the newest) when the window's timer fires; failures are logged, never thrown; the
 * poll never waits for the write. Clock and timer are injected: nothing here depends on time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PollNotes } from '../../src/ra/poll-notes.js';

function harness(o: { fail?: boolean } = {}) {
  let now = Date.parse('2026-01-01T00:00:00Z');
  const written: Array<{ id: string; at: number }> = [];
  const timers: Array<{ fn: () => void; ms: number }> = [];
  const warnings: unknown[] = [];
  const notes = new PollNotes({
    store: {
      notePoll: (id: string, at: Date) => {
        written.push({ id, at: at.getTime() });
        return o.fail ? Promise.reject(new Error('store is closed')) : Promise.resolve(true);
      },
    },
    now: () => new Date(now),
    intervalMs: 10_000,
    timer: (fn, ms) => void timers.push({ fn, ms }),
    logger: {
      warn: (obj: unknown) => void warnings.push(obj),
      error: () => {},
    },
  });
  return {
    notes,
    written,
    timers,
    warnings,
    advance: (ms: number) => (now += ms),
    t0: now,
    fire: () => timers.splice(0).forEach((t) => t.fn()),
  };
}

test('the first poll is written at once with its time; later polls in the window only on the timer, the newest', () => {
  const h = harness();
  h.notes.note('tx-1');
  assert.deepEqual(h.written, [{ id: 'tx-1', at: h.t0 }]);
  assert.equal(h.timers.length, 0, 'nothing to write later yet');

  h.advance(2_000);
  h.notes.note('tx-1');
  h.advance(3_000);
  h.notes.note('tx-1');
  assert.equal(h.written.length, 1, 'polls inside the window are not written at once');
  assert.equal(h.timers.length, 1, 'one timer, armed once');
  assert.equal(h.timers[0]!.ms, 10_000);

  h.fire();
  assert.deepEqual(h.written[1], { id: 'tx-1', at: h.t0 + 5_000 }, 'the newest time of the window');
  h.fire();
  assert.equal(h.written.length, 2, 'nothing twice');
});

test('a poll after the window is written at once; another transaction is independent', () => {
  const h = harness();
  h.notes.note('tx-1');
  h.notes.note('tx-2');
  assert.deepEqual(
    h.written.map((w) => w.id),
    ['tx-1', 'tx-2'],
  );
  h.advance(4_000);
  h.notes.note('tx-1'); // remembered for the timer
  h.advance(6_000); // 10 s after tx-1's write: a new window for it
  h.notes.note('tx-1');
  assert.deepEqual(h.written[2], { id: 'tx-1', at: h.t0 + 10_000 });
  h.fire();
  assert.equal(h.written.length, 3, 'the remembered, older time is not written over the newer one');

  // Long after (two windows and more): written at once again.
  h.advance(60_000);
  h.notes.note('tx-2');
  assert.deepEqual(h.written[3], { id: 'tx-2', at: h.t0 + 70_000 });
});

test('a device polling faster than the window costs at most two writes per window', () => {
  const h = harness();
  for (let i = 0; i < 100; i++) {
    h.notes.note('tx-1');
    h.advance(500); // 100 polls over 50 s
    if (h.timers.length > 0 && (i + 1) % 20 === 0) h.fire();
  }
  h.fire();
  assert.ok(h.written.length <= 2 * 5 + 1, `${h.written.length} writes for 100 polls over 5 windows`);
  assert.ok(h.written.length >= 5, 'every window records its polls');
  const times = h.written.map((w) => w.at);
  assert.deepEqual(
    times,
    [...times].sort((a, b) => a - b),
    'written times only move forward',
  );
});

test('a failed write is logged once per run of failures, never thrown (the poll does not wait for it)', async () => {
  const h = harness({ fail: true });
  assert.doesNotThrow(() => h.notes.note('tx-1'));
  assert.doesNotThrow(() => h.notes.note('tx-2'));
  await new Promise((r) => setImmediate(r));
  assert.equal(h.written.length, 2);
  assert.equal(h.warnings.length, 1, 'a broken store does not log a line per poll');
  assert.match(JSON.stringify(h.warnings[0]), /tx-1/);
});
