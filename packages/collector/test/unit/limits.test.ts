/**
 * One table of limits, shared (protocol's limits.ts): whatever a sender ships once fitted
 * (`fitBatch`, which the agent's exporter applies to every batch, the proxy's and the probe's too)
 * the collector takes whole: nothing refused, no record left out. Property-based (fast-check):
 * batches whose texts are at, around and far beyond every limit (in astral characters too, whose
 * halves must not be parted) and whose lists run past theirs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CUT_MARK, LIMITS, fitBatch, type WireBatch, type WireLongTask, type WireTrace } from '@loopscope/protocol';
import { validBatch } from '../../src/ingest.js';
import { batch, interval, loopSample, random, randomTx, trace } from '../helpers.js';

const rand = random(28);
const now = Date.now();

/** A text for a field of `limit`: short, about the limit, or far over it; ASCII or astral. */
const text = (limit: number): fc.Arbitrary<string> =>
  fc.oneof(
    fc.string({ minLength: 1, maxLength: 8 }),
    fc.string({ minLength: Math.max(1, limit - 2), maxLength: limit + 2 }),
    fc.string({ unit: 'binary', minLength: Math.max(1, limit / 2 - 2), maxLength: limit / 2 + 2 }),
    fc.string({ minLength: limit + 1, maxLength: 3 * limit }),
  );

/** Up to `max` items, and sometimes `limit` and more (as many copies of one). */
const list = <T>(item: fc.Arbitrary<T>, limit: number, max = 6): fc.Arbitrary<T[]> =>
  fc.oneof(
    fc.array(item, { maxLength: max }),
    fc.tuple(item, fc.integer({ min: limit - 1, max: limit + 5 })).map(([one, n]) => Array.from({ length: n }, () => structuredClone(one))),
  );

const segment = fc.record({
  name: text(LIMITS.segmentName),
  error: fc.option(text(LIMITS.segmentError), { nil: undefined }),
  operation: fc.option(text(LIMITS.operation), { nil: undefined }),
  target: fc.option(text(LIMITS.target), { nil: undefined }),
  statement: fc.option(text(LIMITS.statement), { nil: undefined }),
});

const traceParts = fc.record({
  endpoint: text(LIMITS.endpoint),
  errorMessage: fc.option(text(LIMITS.errorMessage), { nil: undefined }),
  segments: list(segment, LIMITS.segments),
  timeline: fc.integer({ min: 0, max: LIMITS.timeline + 3 }),
});

const longTask = fc.record({
  endpoint: fc.option(text(LIMITS.endpoint), { nil: undefined }),
  function: text(LIMITS.taskFunction),
  location: fc.option(text(LIMITS.location), { nil: undefined }),
  compiledLocation: fc.option(text(LIMITS.location), { nil: undefined }),
  stack: fc.option(list(text(LIMITS.stackFrame), LIMITS.stackFrames, 3), { nil: undefined }),
  blocked: list(text(LIMITS.endpoint), LIMITS.blockedEndpoints, 3),
});

const loss = fc.record({ module: text(LIMITS.lossModule), site: text(LIMITS.lossSite), function: fc.oneof(fc.constant(''), text(LIMITS.lossFunction)) });

const batchParts = fc.record({
  service: text(LIMITS.service),
  instance: text(LIMITS.instance),
  sender: text(LIMITS.senderName),
  version: text(LIMITS.senderVersion),
  endpoints: fc.array(text(LIMITS.endpoint), { minLength: 1, maxLength: 3 }),
  traces: fc.array(traceParts, { maxLength: 3 }),
  longTasks: list(longTask, LIMITS.longTasks, 3),
  calls: fc.array(text(LIMITS.target), { maxLength: 3 }),
  losses: list(loss, LIMITS.lossSites, 3),
});

type Parts = typeof batchParts extends fc.Arbitrary<infer P> ? P : never;

/** A batch of the wire format, but for the lengths the parts give it. */
function build(p: Parts): WireBatch {
  const intervals = p.endpoints.map((endpoint, i) => interval(endpoint, now - 5000 + i * 1000, [randomTx(rand, 0)]));
  const traces: WireTrace[] = p.traces.map((t, k) => {
    const base = trace(p.service, t.endpoint, now - 3000 + k, randomTx(rand, 0));
    const segments = t.segments.map((s, id) => ({ id, parentId: null, kind: 'db' as const, start: 0.1, end: 0.2, onCriticalPath: id % 2 === 0, ...s }));
    return {
      ...base,
      ...(t.errorMessage !== undefined ? { error: true, errorMessage: t.errorMessage } : {}),
      segments,
      // (the segments past the limit are on it too)
      criticalPath: segments.filter((s) => s.onCriticalPath).map((s) => s.id),
      slices: Array.from({ length: t.timeline }, (_, i) => [i, i + 0.5] as [number, number]),
      waits: Array.from({ length: t.timeline }, (_, i) => [i + 0.5, i + 0.75] as [number, number]),
    };
  });
  const b = batch(p.service, p.instance, intervals, traces);
  b.agent = { name: p.sender, version: p.version };
  const longTasks: WireLongTask[] = p.longTasks.map((t, k) => ({
    at: now - 2000 + k,
    ms: 60,
    function: t.function,
    ...(t.endpoint !== undefined ? { endpoint: t.endpoint, traceId: 'a'.repeat(32) } : {}),
    ...(t.location !== undefined ? { location: t.location } : {}),
    ...(t.compiledLocation !== undefined ? { compiledLocation: t.compiledLocation } : {}),
    ...(t.stack !== undefined ? { stack: t.stack } : {}),
    blocked: t.blocked.map((endpoint) => ({ endpoint, count: 1, ms: 5 })),
  }));
  b.loop = loopSample(now - 5000, { longTasks });
  const duration = intervals[0]!.duration;
  b.calls = p.calls.map((target) => ({ start: now - 5000, ms: 5000, kind: 'http' as const, target, count: 1, errors: 0, duration: structuredClone(duration) }));
  b.contextLoss = p.losses.map((l) => ({ start: now - 5000, ...l, count: 1, lostMs: 1.5 }));
  return b;
}

test('whatever a sender fits to the limits, the collector takes whole', () => {
  fc.assert(
    fc.property(batchParts, (p) => {
      const b = build(p);
      const before = JSON.stringify(b);
      const cut = fitBatch(b);
      const { rejected } = validBatch(structuredClone(b), Date.now());
      assert.equal(rejected, undefined, JSON.stringify(rejected));
      // fitted once is fitted: nothing more to cut
      assert.equal(fitBatch(b), 0);
      // a batch within every limit is not touched
      if (cut === 0) assert.equal(JSON.stringify(b), before);
    }),
    // (a counterexample of texts thousands long takes minutes to shrink: the first one found is shown)
    { numRuns: 150, endOnFailure: true },
  );
});

test('a text cut to its limit ends with the mark, and keeps the halves of an astral character together', () => {
  const emoji = '😀'.repeat(LIMITS.errorMessage); // twice the limit in UTF-16 code units
  const b = build({
    service: 's',
    instance: 'i',
    sender: 'loopscope',
    version: '1',
    endpoints: ['GET /x'],
    traces: [{ endpoint: 'GET /x', errorMessage: emoji, segments: [], timeline: 0 }],
    longTasks: [],
    calls: [],
    losses: [],
  });
  assert.equal(fitBatch(b), 1);
  const message = b.traces[0]!.errorMessage!;
  assert.ok(message.length <= LIMITS.errorMessage && message.endsWith(CUT_MARK), `${message.length} code units`);
  assert.ok(!/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/.test(message), 'no lone high surrogate');
});

test("segments past the limit are counted in the trace's droppedSegments, and its critical path keeps to those kept", () => {
  const p: Parts = {
    service: 's',
    instance: 'i',
    sender: 'loopscope',
    version: '1',
    endpoints: ['GET /x'],
    traces: [{ endpoint: 'GET /x', errorMessage: undefined, segments: Array.from({ length: LIMITS.segments + 10 }, () => ({ name: 'q', error: undefined, operation: undefined, target: undefined, statement: undefined })), timeline: 0 }],
    longTasks: [],
    calls: [],
    losses: [],
  };
  const b = build(p);
  fitBatch(b);
  const t = b.traces[0]!;
  assert.equal(t.segments.length, LIMITS.segments);
  assert.equal(t.droppedSegments, 10);
  assert.ok(t.criticalPath.every((id) => id < LIMITS.segments) && t.criticalPath.length === LIMITS.segments / 2);
});
