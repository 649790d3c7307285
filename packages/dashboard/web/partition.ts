/**
 * Where one trace's time went, as parts that never overlap: each millisecond of the duration is in
 * at most one of them, so the bars add up to the duration at most (the talk's cpu, blocking and
 * external are measured separately and do overlap: code runs while a call is in flight, parallel
 * calls of two kinds overlap each other). Pure: no DOM, unit-tested with fixed inputs.
 */
import type { ExternalByKind, SegmentKind } from '@loopscope/protocol';
import { COLORS } from './colors.js';

/**
 * The protocol's TIMELINE_LIMIT: a trace lists at most this many slices and as many waits. Not
 * imported: the protocol's index brings the sketch library, which the page has no use for (a unit
 * test checks the two agree).
 */
export const TIMELINE_LIMIT = 200;

export type Interval = [number, number];

/** One part of a time breakdown. */
export interface Part {
  label: string;
  color: string;
  ms: number;
  /** drawn hatched, as Amy Boyle's talk "Monitoring Asynchronous Applications" draws blocking */
  hatched?: boolean;
  /** when the part is shown shorter than its own measure (what overlapped parts before it is not counted again): that measure */
  of?: number;
}

export const KINDS: SegmentKind[] = ['http', 'db', 'cache', 'queue', 'fs', 'dns', 'other'];

export const QUEUED = 'queued before start';
export const IDLE = 'idle / untracked';
/** the wait before the first slice: blocking too, drawn in a darker yellow */
export const QUEUED_COLOR = '#b8860b';
export const IDLE_COLOR = '#d3d8de';

/** The union of intervals, sorted and merged (empty ones dropped). */
export function union(intervals: readonly Interval[]): Interval[] {
  const sorted = intervals.filter(([s, e]) => e > s).sort((a, b) => a[0] - b[0]);
  const out: Interval[] = [];
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

export const length = (intervals: readonly Interval[]): number => union(intervals).reduce((sum, [s, e]) => sum + (e - s), 0);

/** The parts of `intervals` inside [from, to]. */
export const clip = (intervals: readonly Interval[], from: number, to: number): Interval[] =>
  intervals.map(([s, e]): Interval => [Math.max(s, from), Math.min(e, to)]).filter(([s, e]) => e > s);

/** Length of what `intervals` cover outside `covered` (a merged, sorted union). */
function uncovered(intervals: readonly Interval[], covered: readonly Interval[]): number {
  let total = 0;
  for (const [s, e] of union(intervals)) {
    let free = e - s;
    for (const [cs, ce] of covered) free -= Math.max(0, Math.min(e, ce) - Math.max(s, cs));
    total += free;
  }
  return total;
}

/** The wait before the transaction's first slice ("queued before start"): its waits that begin before that slice, up to it. */
export function queuedBeforeStart(t: { slices?: Interval[] | undefined; waits?: Interval[] | undefined; duration: number }): Interval[] {
  const first = Math.min(t.duration, ...(t.slices ?? []).map(([s]) => s));
  return clip(t.waits ?? [], 0, first);
}

/** What the partition needs of a trace (TraceRecord has it all). */
export interface TimedTrace {
  duration: number;
  cpu: number | null;
  external: number | null;
  blocking: number | null;
  externalByKind?: ExternalByKind | undefined;
  segments: ReadonlyArray<{ kind: SegmentKind; start: number; end: number }>;
  slices?: Interval[] | undefined;
  waits?: Interval[] | undefined;
}

/** Down to the microsecond (the wire's precision), so that rounding never makes the parts longer than the duration. */
const floorUs = (v: number): number => Math.floor(v * 1000 + 1e-6) / 1000;

/**
 * The trace's duration split into cpu, "queued before start", blocking, external per kind and
 * idle / untracked (the rest: timers, work the agent does not see), in that order.
 *
 * With the trace's slices and waits (from agents), on its timeline: its slices are cpu; its waits
 * before the first slice, "queued before start"; its other waits, blocking; each kind's calls
 * (http, db, cache, queue, other in turn) count where nothing before took the time already. Only
 * the first TIMELINE_LIMIT slices and waits are listed: cpu and blocking beyond them are added from
 * the trace's totals, at most what is still free.
 *
 * Without them (an older agent), the overlaps are not known: the totals are taken in the same
 * order, each clipped to what is left of the duration (external per kind within external, whose
 * parallel calls count once), so a part may be shown shorter than its measure (`of` says by how
 * much) but the parts never add up to more than the duration. For a trace seen from outside the
 * process (cpu, external and blocking unknown) there is nothing to split: no parts.
 */
export function partitionTime(t: TimedTrace): Part[] {
  if (t.cpu === null && t.external === null && t.blocking === null) return [];
  const total = Math.max(0, t.duration);
  const parts: Part[] = [];
  const add = (label: string, color: string, ms: number, measure: number | null, hatched = false): void => {
    const part: Part = { label, color, ms: floorUs(Math.max(0, ms)), ...(hatched ? { hatched } : {}) };
    // (a few µs apart is the rounding of the listed intervals, not an overlap)
    if (measure !== null && measure - part.ms > 0.01) part.of = measure;
    parts.push(part);
  };
  const byKind = (kind: SegmentKind): number | null => t.externalByKind?.[kind] ?? null;

  if (t.slices !== undefined && t.waits !== undefined) {
    let covered: Interval[] = [];
    const take = (intervals: Interval[]): number => {
      const inside = clip(intervals, 0, total);
      const free = uncovered(inside, covered);
      covered = union([...covered, ...inside]);
      return free;
    };
    const cpu = take(t.slices);
    const queued = take(queuedBeforeStart(t));
    const blocking = take(t.waits);
    const external = KINDS.map((kind) => [kind, take(t.segments.filter((s) => s.kind === kind).map((s): Interval => [s.start, s.end]))] as const);
    // beyond the listed slices and waits (a full list may be cut): the rest of the totals, in what is still free
    let free = total - length(covered);
    const unlisted = (listed: Interval[], measure: number | null): number => {
      if (listed.length < TIMELINE_LIMIT || measure === null) return 0;
      const extra = Math.max(0, Math.min(measure - length(clip(listed, 0, total)), free));
      free -= extra;
      return extra;
    };
    const otherBlocking = t.blocking === null ? null : t.blocking - queued;
    add('cpu', COLORS.cpu, cpu + unlisted(t.slices, t.cpu), t.cpu);
    if (queued > 0) add(QUEUED, QUEUED_COLOR, queued, null, true);
    add('blocking', COLORS.blocking, blocking + unlisted(t.waits, t.blocking), otherBlocking, true);
    for (const [kind, ms] of external) if (ms > 0 || (byKind(kind) ?? 0) > 0) add(`external: ${kind}`, COLORS[kind], ms, byKind(kind));
  } else {
    let left = total;
    const takeUpTo = (measure: number | null): number => {
      const ms = Math.min(Math.max(0, measure ?? 0), left);
      left -= ms;
      return ms;
    };
    if (t.cpu !== null) add('cpu', COLORS.cpu, takeUpTo(t.cpu), t.cpu);
    if (t.blocking !== null) add('blocking', COLORS.blocking, takeUpTo(t.blocking), t.blocking, true);
    if (t.external !== null) {
      const kinds = KINDS.filter((k) => (byKind(k) ?? 0) > 0);
      if (kinds.length === 0) {
        if (t.external > 0) add('external', COLORS.external, takeUpTo(t.external), t.external);
      } else {
        let external = Math.min(t.external, left);
        for (const kind of kinds) {
          const ms = Math.min(byKind(kind)!, external);
          external -= ms;
          left -= ms;
          add(`external: ${kind}`, COLORS[kind], ms, byKind(kind));
        }
      }
    }
  }
  const idle = total - parts.reduce((sum, p) => sum + p.ms, 0);
  if (idle >= 0.001) add(IDLE, IDLE_COLOR, idle, null);
  return parts;
}
