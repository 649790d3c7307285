/** tiles(): the spans of a range and the resolution that answers each, with the fewest rows and the finest one's answer. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tiles } from '../../src/storage/resolution.js';
import { DEFAULT_RETENTION } from '../../src/storage/storage.js';

const at = (hms: string): number => Date.parse(`2026-12-06T${hms}Z`);
const named = (list: ReturnType<typeof tiles>): Array<[string, string, string]> =>
  list.map((t) => [t.res.name, new Date(t.from).toISOString().slice(11, 19), new Date(t.to).toISOString().slice(11, 19)]);

test('a range within the per-second retention: seconds at its edges, minutes next, whole hours in the middle', () => {
  assert.deepEqual(named(tiles(DEFAULT_RETENTION, at('10:00:30.500'), at('11:30:10.200'), at('11:31:00'))), [
    ['second', '10:00:30', '10:01:00'],
    ['minute', '10:01:00', '11:30:00'],
    ['second', '11:30:00', '11:30:11'],
  ]);
  assert.deepEqual(named(tiles(DEFAULT_RETENTION, at('10:59:59'), at('12:00:00.5'), at('12:01:00'))), [
    ['second', '10:59:59', '11:00:00'],
    ['hour', '11:00:00', '12:00:00'],
    ['second', '12:00:00', '12:00:01'],
  ]);
});

test('the tiles cover exactly the buckets of the finest resolution that covers the start, with no gap and no overlap', () => {
  for (const [from, to] of [
    [at('00:00:00'), at('23:59:59.999')],
    [at('10:17:03.2'), at('10:17:03.9')],
    [at('10:17:03'), at('11:52:00')],
  ] as const) {
    const list = tiles(DEFAULT_RETENTION, from, to, to + 1000);
    const fine = list[0]!.res.ms;
    assert.equal(list[0]!.from, Math.floor(from / fine) * fine);
    assert.equal(list.at(-1)!.to, Math.ceil(to / fine) * fine);
    list.forEach((t, i) => {
      assert.ok(t.from < t.to && t.from % t.res.ms === 0 && t.to % t.res.ms === 0, JSON.stringify(named([t])));
      assert.ok(t.res.ms >= fine);
      if (i > 0) assert.equal(t.from, list[i - 1]!.to);
    });
  }
});

test('a range older than the per-second retention starts at minutes; older than every retention, one tile of hours', () => {
  const now = at('20:00:00');
  // (the minute 10:00:30 falls in starts an hour: that hour's row holds exactly its minutes)
  assert.deepEqual(named(tiles(DEFAULT_RETENTION, at('10:00:30'), at('12:30:00'), now)), [
    ['hour', '10:00:00', '12:00:00'],
    ['minute', '12:00:00', '12:30:00'],
  ]);
  assert.deepEqual(named(tiles(DEFAULT_RETENTION, at('10:01:30'), at('12:30:00'), now)), [
    ['minute', '10:01:00', '11:00:00'],
    ['hour', '11:00:00', '12:00:00'],
    ['minute', '12:00:00', '12:30:00'],
  ]);
  assert.deepEqual(named(tiles({ ...DEFAULT_RETENTION, seconds: 1000, minutes: 1000, hours: 1000 }, at('10:00:30'), at('12:30:00'), now)), [['hour', '10:00:00', '13:00:00']]);
});
