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

/** Runs `call` as the only work of a transaction named `name`; returns the record and the test's clock around the call. */
export async function measured<T>(rec: Recorder, name: string, call: () => Promise<T>): Promise<{ record: TransactionRecord; result: T; t0: number; t1: number }> {
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

/** The segment's start and end on the performance.now() clock. */
export function absolute(record: TransactionRecord, seg: SegmentRecord): { start: number; end: number } {
  const txStart = record.start - performance.timeOrigin;
  return { start: txStart + seg.start, end: txStart + seg.end };
}

/** Asserts that `seg` started within tolerance after `t0` and ended within tolerance before `t1`. */
export function assertTiming(record: TransactionRecord, seg: SegmentRecord, t0: number, t1: number): void {
  const { start, end } = absolute(record, seg);
  assert.ok(Math.abs(start - t0) <= TOLERANCE_MS, `${seg.name} starts ${(start - t0).toFixed(3)} ms after the call`);
  assert.ok(Math.abs(t1 - end) <= TOLERANCE_MS, `${seg.name} ends ${(t1 - end).toFixed(3)} ms before the caller resumed`);
  assert.ok(end >= start);
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
