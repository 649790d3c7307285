/** What the data-store tests check on every library: segment fields, timing against the test's own clock, attribution. */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type { SegmentRecord, TransactionRecord } from '@loopscope/protocol';
import { current, flush, transaction } from '../src/index.js';
import type { Recorder } from './helpers.js';

/** `require` as an app would (the libraries are devDependencies of this package). */
export const requireLib = createRequire(import.meta.url);

/** Timing tolerance (ms) between a segment and what the test measured around the call. */
export const TOLERANCE_MS = 2;

export interface Measured<T> {
  record: TransactionRecord;
  result: T;
  t0: number;
  t1: number;
}

/** Runs `call` as the only work of a transaction named `name`; returns the record and the test's clock around the call. */
async function measureOnce<T>(rec: Recorder, name: string, call: () => Promise<T>): Promise<Measured<T>> {
  let t0 = 0;
  let t1 = 0;
  const result = await transaction(name, async () => {
    t0 = performance.now();
    const r = await call();
    t1 = performance.now();
    return r;
  });
  await flush();
  return { record: await rec.next(name), result, t0, t1 };
}

/**
 * Like measureOnce; with `span` (the part of the record that should match the call: a segment, or
 * a checkout and its query joined), asserts that it starts within tolerance after the call and ends
 * within tolerance before the caller resumed. The machine is shared and noisy: a run that a
 * descheduling or a GC pushed out of tolerance is repeated, up to 5 runs; the assertion names them all.
 */
export async function measured<T>(rec: Recorder, name: string, call: () => Promise<T>, span?: (m: Measured<T>) => SegmentRecord): Promise<Measured<T>> {
  const errors: string[] = [];
  for (let attempt = 0; ; attempt++) {
    const m = await measureOnce(rec, name, call);
    if (span === undefined) return m;
    const seg = span(m);
    const { start, end } = absolute(m.record, seg);
    const late = start - m.t0;
    const early = m.t1 - end;
    if (Math.abs(late) <= TOLERANCE_MS && Math.abs(early) <= TOLERANCE_MS && end >= start) return m;
    errors.push(`starts ${late.toFixed(3)} ms after the call, ends ${early.toFixed(3)} ms before the caller resumed`);
    assert.ok(attempt < 4, `${seg.name}: ${errors.join('; ')}`);
  }
}

/** The segment's start and end on the performance.now() clock. */
export function absolute(record: TransactionRecord, seg: SegmentRecord): { start: number; end: number } {
  const txStart = record.start - performance.timeOrigin;
  return { start: txStart + seg.start, end: txStart + seg.end };
}

/** The span of a record holding one segment: that segment. */
export const theSegment = (m: { record: TransactionRecord }): SegmentRecord => only(m.record, () => true);

/** The span of a pool call: its checkout and the SELECT after it, as one. */
export function checkoutAndSelect(m: { record: TransactionRecord }): SegmentRecord {
  const checkout = only(m.record, (s) => s.operation === 'checkout');
  const query = only(m.record, (s) => s.operation === 'SELECT');
  return { ...checkout, name: `${checkout.name} + ${query.name}`, end: query.end };
}

/** The one segment of `record` matching `pick`. */
export function only(record: TransactionRecord, pick: (s: SegmentRecord) => boolean): SegmentRecord {
  const found = record.segments.filter(pick);
  assert.equal(found.length, 1, `one matching segment in ${JSON.stringify(record.segments)}`);
  return found[0]!;
}

/**
 * `n` transactions at once, each calling `call(i)`; `call` resolves with the id the data store
 * echoed and the name of the transaction its completion ran in. Returns the records by index.
 */
export async function concurrently(rec: Recorder, prefix: string, n: number, call: (i: number) => Promise<{ echoed: string; ranIn: string | undefined }>): Promise<TransactionRecord[]> {
  await Promise.all(
    Array.from({ length: n }, (_, i) =>
      transaction(`${prefix} ${i}`, async () => {
        const { echoed, ranIn } = await call(i);
        assert.equal(echoed, String(i), 'the data store answered this request, not another');
        assert.equal(ranIn, `${prefix} ${i}`, 'the completion ran in the context of the request that made the call');
        assert.equal(current()?.endpoint, `${prefix} ${i}`);
      }),
    ),
  );
  await flush();
  return Promise.all(Array.from({ length: n }, (_, i) => rec.next(`${prefix} ${i}`)));
}

/** The name of the transaction the calling code runs in. */
export const here = (): string | undefined => current()?.endpoint;
