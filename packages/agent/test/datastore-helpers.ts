/** What the data-store tests check on every library: segment fields, timing against the test's own clock, attribution. */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import type { SegmentRecord, TransactionRecord } from '@loopscope/protocol';
import { current, flush, transaction } from '../src/index.js';
import { median, type Recorder } from './helpers.js';

/** `require` as an app would (the libraries are devDependencies of this package). */
export const requireLib = createRequire(import.meta.url);

/**
 * Timing tolerance (ms) between a segment and what the test measured around the call, for the
 * median of RUNS runs. Between the two lie the library's own work before it writes the call
 * (building it) and, at the end, what happens from the answer's arrival to the caller resuming
 * (reading and parsing the answer, settling its promises, the process waking up): 0.1-1 ms here.
 */
export const TOLERANCE_MS = 2;
/** How many times `measured` runs a call whose timing it checks. */
export const RUNS = 5;
/** Rounding of the record's times (µs) and of their sum with the transaction's start. */
const ROUNDING_MS = 0.01;

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
 * Like measureOnce. With `span` (the part of the record that should match the call: a segment, or
 * a checkout and its query joined), the call runs RUNS times, and every run must hold what is
 * true by construction: the span starts after the call was made and ends before the caller resumed
 * (both on the one performance.now() clock). How close it is to them is judged on the median of the
 * runs: it starts within TOLERANCE_MS after the call and ends within TOLERANCE_MS before the caller
 * resumed. The median, because a shared machine can deschedule a single run right there for longer;
 * no run is repeated. Returns the last run.
 */
export async function measured<T>(rec: Recorder, name: string, call: () => Promise<T>, span?: (m: Measured<T>) => SegmentRecord): Promise<Measured<T>> {
  if (span === undefined) return measureOnce(rec, name, call);
  const runs: Array<Measured<T> & { late: number; early: number }> = [];
  for (let i = 0; i < RUNS; i++) {
    const m = await measureOnce(rec, name, call);
    const seg = span(m);
    const { start, end } = absolute(m.record, seg);
    const run = { ...m, late: start - m.t0, early: m.t1 - end };
    assert.ok(run.late >= -ROUNDING_MS && run.early >= -ROUNDING_MS && end >= start - ROUNDING_MS, `${seg.name}, run ${i + 1}: from ${start.toFixed(3)} to ${end.toFixed(3)}, not inside the call (${m.t0.toFixed(3)} to ${m.t1.toFixed(3)})`);
    runs.push(run);
  }
  const late = runs.map((r) => r.late);
  const early = runs.map((r) => r.early);
  const report = `starts ${late.map((v) => v.toFixed(3)).join(', ')} ms after the call; ends ${early.map((v) => v.toFixed(3)).join(', ')} ms before the caller resumed`;
  assert.ok(median(late) <= TOLERANCE_MS && median(early) <= TOLERANCE_MS, `${span(runs[0]!).name}, in the median of ${RUNS} runs: ${report}`);
  return runs[RUNS - 1]!;
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
