import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatTraceParent, formatTraceState, newSpanId, parseTraceParent, traceIdOf } from '../../src/trace-context.js';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const SPAN = 'b7ad6b7169203331';
const VALID = `00-${TRACE}-${SPAN}-01`;

test('a valid traceparent names the caller: trace, span, flags, and the tracestate to pass on', () => {
  assert.deepEqual(parseTraceParent(VALID, 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7'), {
    traceId: TRACE,
    parentSpanId: SPAN,
    flags: '01',
    traceState: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7',
    sentAt: undefined,
  });
  assert.deepEqual(parseTraceParent(`00-${TRACE}-${SPAN}-00`), { traceId: TRACE, parentSpanId: SPAN, flags: '00', traceState: undefined, sentAt: undefined });
  // a later version may append fields after a dash: the known four are used
  assert.equal(parseTraceParent(`cc-${TRACE}-${SPAN}-01-what-the-future-holds`)?.traceId, TRACE);
});

test('an invalid or hostile traceparent is ignored, never thrown', () => {
  for (const bad of [
    undefined,
    '',
    42,
    ['00', TRACE],
    `00-${TRACE}-${SPAN}-1`, // wrong length
    `00-${TRACE.slice(1)}-${SPAN}-01`,
    `00-${TRACE}-${SPAN}-01-extra`, // version 00 has exactly four fields
    VALID.toUpperCase(), // upper case
    `ff-${TRACE}-${SPAN}-01`, // version ff is invalid
    `00-${'0'.repeat(32)}-${SPAN}-01`, // all-zero trace id
    `00-${TRACE}-${'0'.repeat(16)}-01`, // all-zero span id
    `00_${TRACE}_${SPAN}_01`,
    `${VALID}, ${VALID}`, // two headers, joined by Node
    `00-${TRACE}-${SPAN}-01`.replace('a', 'g'),
    'x'.repeat(10_000),
    `cc-${TRACE}-${SPAN}-01-${'x'.repeat(10_000)}`,
  ]) {
    assert.equal(parseTraceParent(bad), undefined, String(bad).slice(0, 80));
  }
});

test('a tracestate that cannot be passed on unchanged is dropped, the traceparent kept', () => {
  assert.equal(parseTraceParent(VALID, 'a=1'.padEnd(513, 'x'))?.traceState, undefined);
  assert.equal(parseTraceParent(VALID, 'a=1\r\nInjected: yes')?.traceState, undefined);
  assert.equal(parseTraceParent(VALID, 'a=é')?.traceState, undefined);
  assert.equal(parseTraceParent(VALID, ['a=1'])?.traceState, undefined);
  assert.equal(parseTraceParent(VALID, '')?.traceId, TRACE);
});

test('the agent writes what it reads: version 00, 32-digit trace ids, 16-digit span ids, never all zeros', () => {
  const ids = new Set<string>();
  for (let i = 0; i < 1000; i++) ids.add(newSpanId());
  assert.equal(ids.size, 1000);
  for (const id of ids) assert.match(id, /^[0-9a-f]{16}$/);
  assert.match(traceIdOf(1), /^[0-9a-f]{32}$/);
  assert.notEqual(traceIdOf(1), traceIdOf(2));
  const header = formatTraceParent(traceIdOf(7), SPAN, '01');
  assert.deepEqual(parseTraceParent(header), { traceId: traceIdOf(7), parentSpanId: SPAN, flags: '01', traceState: undefined, sentAt: undefined });
});

test("loopscope's tracestate member says when the caller called; it is read, and replaced on the way out", () => {
  const parent = parseTraceParent(VALID, 'loopscope=t1780000000123.456,congo=t61rcWkgMzE');
  assert.equal(parent?.sentAt, 1780000000123.456);
  assert.equal(parent?.traceState, 'congo=t61rcWkgMzE');
  assert.equal(formatTraceState(parent?.traceState, 1780000000200.5), 'loopscope=t1780000000200.500,congo=t61rcWkgMzE');
  assert.equal(formatTraceState(undefined, 1), 'loopscope=t1.000');
  // others that would not fit are dropped, loopscope's member kept
  assert.equal(formatTraceState(`a=${'x'.repeat(500)}`, 1), 'loopscope=t1.000');
  // a member that is not a time is not trusted, and not passed on (the agent's own goes first instead)
  for (const bad of ['loopscope=tnope', 'loopscope=t1e9', 'loopscope=t-5', `loopscope=t${'9'.repeat(40)}`]) {
    const p = parseTraceParent(VALID, `${bad},other=1`);
    assert.equal(p?.sentAt, undefined, bad);
    assert.equal(p?.traceState, 'other=1', bad);
  }
});

test("a root's trace ids are unique, and their right half looks random (W3C Level 2): a ratio sampler downstream keeps its share", () => {
  const n = 100_000;
  const ids = Array.from({ length: n }, (_, i) => traceIdOf(i + 1));
  assert.equal(new Set(ids).size, n);
  assert.equal(new Set(ids.map((id) => id.slice(0, 16))).size, 1, 'one prefix per process');
  // a sampler that keeps a trace when the right of its id, as a fraction, is below its ratio (W3C
  // Level 2's random trace ids, OpenTelemetry's consistent probability sampling): with a counter
  // there every id is near 0, and a sampler at 1 % kept all 100 000
  for (const ratio of [0.01, 0.1, 0.5]) {
    const kept = ids.filter((id) => parseInt(id.slice(-13), 16) / 2 ** 52 < ratio).length;
    assert.ok(Math.abs(kept / n - ratio) < 0.005 + ratio * 0.05, `ratio ${ratio}: kept ${kept / n}`);
  }
  // and ids past 2^32 roots stay unique
  assert.notEqual(traceIdOf(5), traceIdOf(5 + 2 ** 32));
});
