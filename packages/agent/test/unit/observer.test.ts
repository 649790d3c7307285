/**
 * The loop observer's rules with a fake clock and fake callbacks: what it sees is told to it, so
 * every time below is known by construction (ms after `base`), and the numbers are exact.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Kind, LoopObserver } from '../../src/loop/observer.js';
import { unionLength } from '@loopscope/protocol';
import { measure } from '../../src/measure.js';
import { Transaction, type TransactionHost } from '../../src/transaction.js';

/** A loop at `base` (a little before the transactions below are created on the real clock). */
function setup() {
  // a whole number of ms, so that sums of the whole-ms times below are exact in floating point
  const base = Math.floor(performance.now()) - 1;
  let t = base;
  const loop = new LoopObserver(() => t, (timer) => base + (timer as { due: number }).due, 0);
  // like the tracker, the host queues a transaction for delivery once it may be done
  const host: TransactionHost = { maxSegments: 100, maybeDone: (x) => void (x.tracking.queued = true), callbackSerial: () => loop.serial, completedAt: (start, serial) => loop.completedAt(start, serial) };
  const tx = (name: string): Transaction => {
    const x = new Transaction(host, name, false);
    x.startedAt(base);
    return x;
  };
  return { loop, tx, at: (ms: number) => void (t = base + ms), base };
}

const rel = (tx: Transaction, list: number[] | null): number[] => (list ?? []).map((v) => Math.round((v - tx.start) * 1000) / 1000);

test('a timer due at 10 that runs at 30, behind another transaction\'s 28 ms slice, waited 20 ms', () => {
  const { loop, tx, at } = setup();
  const a = tx('A');
  const b = tx('B');
  at(0);
  loop.enter(a, 0);
  // A runs until 2; the loop waits until B's answer at 3 (its idle counter moves by 1)
  at(3);
  loop.macrotask(Kind.Io, {}, b, 1);
  at(30);
  loop.macrotask(Kind.Timer, { due: 10 }, a, 1);
  // A runs until 31, then the loop waits again
  at(32);
  loop.macrotask(Kind.Io, {}, null, 2);
  assert.equal(a.cpu, 2 + 1);
  assert.equal(b.cpu, 27);
  assert.equal(a.blocking, 20);
  assert.deepEqual(rel(a, a.waits), [10, 30]);
  assert.deepEqual(rel(a, a.slices), [0, 2, 30, 31]);
  assert.equal(b.blocking, 0);
});

test('an answer that arrives while the loop is busy ends its call at the previous poll, and the rest is blocking', () => {
  const { loop, tx, at } = setup();
  const a = tx('A');
  const b = tx('B');
  at(0);
  loop.enter(a, 0);
  const call = a.startSegment('upstream', 'http', null);
  at(2);
  // A ran until 2, the loop waited, then ran B's I/O from 5 to 30: A's answer came in meanwhile
  at(5);
  loop.macrotask(Kind.Io, {}, b, 3);
  at(30);
  // a timer phase, then I/O again: the loop polled (without waiting) in between
  loop.macrotask(Kind.Timer, { due: 29 }, null, 3);
  loop.macrotask(Kind.Io, {}, a, 3);
  call.finish();
  at(31);
  loop.macrotask(Kind.Io, {}, null, 4);
  // ready since the poll before B's slice: the call ends at 5, A waits from 5 to 30
  assert.equal(Math.round((call.end - a.start) * 1000) / 1000, 5);
  assert.equal(a.blocking, 25);
  assert.equal(b.cpu, 25);
  const m = measure(a, a.start + 31);
  assert.equal(m.external, Math.round((call.end - call.start) * 1000) / 1000);
  assert.equal(m.blocking, 25);
});

test('an answer that arrives while the loop waits ends the call exactly; no blocking', () => {
  const { loop, tx, at } = setup();
  const a = tx('A');
  at(0);
  loop.enter(a, 0);
  const call = a.startSegment('db', 'db', null);
  at(1);
  loop.macrotask(Kind.Immediate, {}, null, 0);
  at(12);
  loop.macrotask(Kind.Io, {}, a, 11);
  call.finish();
  assert.equal(Math.round((call.end - a.start) * 1000) / 1000, 12);
  assert.equal(a.blocking, 0);
});

test('a call answered in the macrotask it started in waited for nothing: it ends when it returns', () => {
  const { loop, tx, at } = setup();
  const a = tx('A');
  at(0);
  loop.macrotask(Kind.Io, {}, a, 0);
  const call = a.startSegment('cache', 'cache', null);
  at(3);
  call.finish();
  assert.equal(Math.round((call.end - a.start) * 1000) / 1000, 3);
});

test('after a transaction is done, its slices are a library\'s housekeeping: not its cpu', () => {
  const { loop, tx, at } = setup();
  const a = tx('A');
  at(0);
  loop.enter(a, 0);
  a.finishResponse();
  at(1);
  loop.macrotask(Kind.Io, {}, null, 0);
  at(20);
  // the socket closes, in A's context
  loop.macrotask(Kind.Io, {}, a, 0);
  at(25);
  loop.macrotask(Kind.Io, {}, null, 0);
  assert.equal(a.cpu, 1);
  assert.equal(a.blocking, 0);
});

test('the union of intervals counts overlaps once', () => {
  assert.equal(unionLength([]), 0);
  assert.equal(unionLength([[0, 10]]), 10);
  assert.equal(unionLength([[5, 15], [0, 10]]), 15);
  assert.equal(unionLength([[0, 10], [2, 3], [20, 25]]), 15);
  assert.equal(unionLength([[0, 10], [10, 12]]), 12);
});
