/**
 * "Where the time went" for one trace (web/partition.ts), with fixed inputs: the parts never
 * overlap, so they never add up to more than the duration, whether the trace lists its slices and
 * waits or only its totals; the wait before the first slice is its own part.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TIMELINE_LIMIT as PROTOCOL_LIMIT, type SegmentKind } from '@loopscope/protocol';
import { describeHolder, span } from '../../web/components/waterfall.js';
import { IDLE, QUEUED, TIMELINE_LIMIT, partitionTime, queuedBeforeStart, union, type Interval, type TimedTrace } from '../../web/partition.js';
import { holderRoute, href, parseRoute, type Route } from '../../web/route.js';

const seg = (kind: SegmentKind, start: number, end: number): TimedTrace['segments'][number] => ({ kind, start, end });
/** [label, ms] and `of` where the part is shown short of its measure */
const shown = (t: TimedTrace): Array<[string, number] | [string, number, number]> => partitionTime(t).map((p) => (p.of === undefined ? [p.label, p.ms] : [p.label, p.ms, p.of]));
const totalUs = (t: TimedTrace): number => partitionTime(t).reduce((sum, p) => sum + Math.round(p.ms * 1000), 0);

// 100 ms: queued 10, code 10-15, an http call and a cache call in parallel, the call's answer
// waiting 50-60 behind other work, code 60-70, a db call 70-85, idle 85-90, a wait 90-95, code 95-100
const timed: TimedTrace = {
  duration: 100,
  cpu: 20,
  external: 55,
  blocking: 25,
  externalByKind: { http: 35, cache: 40, db: 15 },
  segments: [seg('http', 15, 50), seg('cache', 15, 55), seg('db', 70, 85)],
  slices: [[10, 15], [60, 70], [95, 100]],
  waits: [[0, 10], [50, 60], [90, 95]],
};

test('on the timeline: cpu, queued before start, blocking, each kind (http, db, cache, queue, other) where nothing before it took the time, then idle', () => {
  // the measures stack to 20 + 25 + 35 + 40 + 15 = 135 ms in 100: the parts do not
  assert.deepEqual(shown(timed), [
    ['cpu', 20],
    [QUEUED, 10],
    ['blocking', 15],
    ['external: http', 35],
    ['external: db', 15],
    ['external: cache', 0, 40], // all of it in parallel with the http call or the wait for its answer
    [IDLE, 5],
  ]);
  assert.equal(totalUs(timed), 100_000);
  const parts = partitionTime(timed);
  assert.ok(parts.find((p) => p.label === QUEUED)!.hatched && parts.find((p) => p.label === 'blocking')!.hatched);
});

test('without slices and waits: the totals in the same order, each clipped to what is left of the duration', () => {
  const totals = { ...timed, slices: undefined, waits: undefined };
  assert.deepEqual(shown(totals), [
    ['cpu', 20],
    ['blocking', 25],
    ['external: http', 35],
    ['external: db', 15],
    ['external: cache', 5, 40],
  ]);
  assert.equal(totalUs(totals), 100_000);
  // the demo trace of issue 17: http 217 + cache 214 + db 5 + blocking 203 = 639 ms in a 436 ms request
  const demo: TimedTrace = { duration: 436, cpu: 10, external: 220, blocking: 203, externalByKind: { http: 217, cache: 214, db: 5 }, segments: [] };
  assert.deepEqual(shown(demo), [
    ['cpu', 10],
    ['blocking', 203],
    ['external: http', 217],
    ['external: db', 3, 5],
    ['external: cache', 0, 214],
    [IDLE, 3],
  ]);
  assert.equal(totalUs(demo), 436_000);
  // no split by kind: one external part
  assert.deepEqual(shown({ duration: 10, cpu: 2, external: 30, blocking: 1, segments: [] }), [['cpu', 2], ['blocking', 1], ['external', 7, 30]]);
});

test('the wait before the first slice is queued; with no slice at all, every wait is', () => {
  assert.deepEqual(queuedBeforeStart(timed), [[0, 10]]);
  assert.deepEqual(queuedBeforeStart({ duration: 30, slices: [], waits: [[0, 30]] }), [[0, 30]]);
  assert.deepEqual(shown({ duration: 30, cpu: 0, external: 0, blocking: 30, segments: [], slices: [], waits: [[0, 30]] }), [['cpu', 0], [QUEUED, 30], ['blocking', 0]]);
  // a trace that ran at once has no queued part
  assert.deepEqual(shown({ duration: 4, cpu: 4, external: 0, blocking: 0, segments: [], slices: [[0, 4]], waits: [] }), [['cpu', 4], ['blocking', 0]]);
});

test('intervals past the duration are cut at it; a cut list adds the rest of its total where time is free', () => {
  assert.deepEqual(shown({ duration: 10, cpu: 4, external: 20, blocking: 0, externalByKind: { http: 20 }, segments: [seg('http', 2, 22)], slices: [[0, 2], [8, 10]], waits: [] }), [
    ['cpu', 4],
    ['blocking', 0],
    ['external: http', 6, 20],
  ]);
  assert.equal(TIMELINE_LIMIT, PROTOCOL_LIMIT, "the page's copy of the protocol's limit");
  const slices = Array.from({ length: TIMELINE_LIMIT }, (_, i): Interval => [2 * i, 2 * i + 0.5]); // 100 ms listed
  const cut: TimedTrace = { duration: 1000, cpu: 150, external: 0, blocking: 0, segments: [], slices, waits: [] };
  assert.deepEqual(shown(cut), [['cpu', 150], ['blocking', 0], [IDLE, 850]]);
  // never more than what is free
  assert.deepEqual(shown({ ...cut, cpu: 5000 }), [['cpu', 1000, 5000], ['blocking', 0]]);
});

test('seen from outside the process there is nothing to split', () => {
  assert.deepEqual(partitionTime({ duration: 50, cpu: null, external: null, blocking: null, segments: [] }), []);
});

test('for any trace the parts are never negative and never add up to more than the duration', () => {
  let seed = 17;
  const rand = (): number => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const r3 = (v: number): number => Math.round(v * 1000) / 1000;
  const spans = (n: number, d: number): Interval[] =>
    Array.from({ length: n }, (): Interval => {
      const s = r3(rand() * d * 1.1);
      return [s, r3(s + rand() * d * 0.4)];
    });
  for (let i = 0; i < 500; i++) {
    const duration = r3(rand() * 500);
    const kinds: SegmentKind[] = ['http', 'db', 'cache', 'queue', 'other'];
    const segments = spans(Math.floor(rand() * 6), duration).map(([s, e]) => seg(kinds[Math.floor(rand() * 5)]!, s, e));
    const withTimeline = rand() < 0.5;
    const t: TimedTrace = {
      duration,
      cpu: r3(rand() * duration),
      blocking: r3(rand() * duration),
      external: r3(rand() * duration * 1.5),
      externalByKind: Object.fromEntries(kinds.filter(() => rand() < 0.5).map((k) => [k, r3(rand() * duration)])),
      segments,
      ...(withTimeline ? { slices: union(spans(5, duration)), waits: spans(4, duration) } : {}),
    };
    const parts = partitionTime(t);
    for (const p of parts) assert.ok(p.ms >= 0, `case ${i}: ${p.label} ${p.ms}`);
    assert.ok(totalUs(t) <= Math.round(duration * 1000), `case ${i}: ${totalUs(t)} µs in ${duration} ms`);
  }
});

test("a wait's words and links: its span, who held the loop, and where that leads", () => {
  assert.equal(span([50, 80]), '50.0 → 80.0 ms (30.0 ms)');
  const task = { kind: 'long-task', overlap: 15, at: 1_800_000_000_123.4, ms: 115, endpoint: 'GET /report', traceId: 'a'.repeat(32), function: 'render', location: 'app.js:3:1', instance: 'h:1' } as const;
  assert.equal(describeHolder(task), 'long task of GET /report in render (app.js:3:1), 115 ms: 15.0 ms of this wait');
  assert.equal(describeHolder({ ...task, endpoint: null, traceId: null, location: null, function: '' }), 'long task of no transaction in (anonymous), 115 ms: 15.0 ms of this wait');
  assert.equal(describeHolder({ kind: 'trace', overlap: 2.5, traceId: 'b'.repeat(32), endpoint: 'GET /other', instance: null }), 'GET /other (another request): 2.50 ms of this wait');

  const from: Route = { page: 'trace', traceId: 'c'.repeat(32), range: '1h', percentile: 'p99' };
  const toTask = parseRoute(new URL(href(holderRoute(from, 'shop', task)), 'http://127.0.0.1'));
  assert.deepEqual(
    { page: toTask.page, service: toTask.service, range: toTask.range, to: toTask.to, moment: toTask.moment },
    { page: 'loop', service: 'shop', range: '5m', to: 1_800_000_002_000, moment: { from: 1_800_000_000_123, to: 1_800_000_000_239 } },
  );
  const toTrace = parseRoute(new URL(href(holderRoute(from, 'shop', { kind: 'trace', overlap: 1, traceId: 'b'.repeat(32), endpoint: 'GET /other', instance: null })), 'http://127.0.0.1'));
  assert.deepEqual([toTrace.page, toTrace.traceId, toTrace.service], ['trace', 'b'.repeat(32), 'shop']);
});
