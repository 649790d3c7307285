/**
 * Where an endpoint's time goes over many requests: the critical paths of its traces summed per
 * segment name and kind (GET /api/critical-path; the definitions are in docs/metrics.md).
 *
 * A segment on a trace's critical path stands on it for its whole length, less the part its own
 * calls on the path stand for (a query inside a transaction on the path: the query has that part),
 * so that no time is counted twice. A step's time in one request is the sum over its segments of
 * that name (three identical queries in a row are one step).
 */
import type { CriticalPathStep, CriticalPathSummary, SegmentKind, TraceRecord } from '@loopscope/protocol';
import { round } from './storage/totals.js';

interface Step {
  name: string;
  kind: SegmentKind;
  /** requests that ran it */
  ran: number;
  /** its time on the path in each request where it was on it */
  times: number[];
  total: number;
}

/** A share (0..1) to four places. */
const ratio = (part: number, whole: number): number => Math.round((part / whole) * 10_000) / 10_000;

/** The `q` quantile of sorted values, the nearest rank. */
const nearestRank = (sorted: number[], q: number): number => sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!;

export function summarizePaths(records: readonly TraceRecord[], basis: CriticalPathSummary['basis']): CriticalPathSummary {
  let duration = 0;
  let cpu = 0;
  let blocking = 0;
  /** the duration of the requests whose cpu and blocking are known (from agents) */
  let known = 0;
  const steps = new Map<string, Step>();
  for (const r of records) {
    duration += r.duration;
    if (r.cpu !== null && r.blocking !== null) {
      cpu += r.cpu;
      blocking += r.blocking;
      known += r.duration;
    }
    const onPath = new Set(r.criticalPath);
    // the part of each segment on the path that its own calls on the path stand for
    const nested = new Map<number, number>();
    for (const s of r.segments) {
      if (s.parentId !== null && onPath.has(s.id) && onPath.has(s.parentId)) nested.set(s.parentId, (nested.get(s.parentId) ?? 0) + (s.end - s.start));
    }
    const here = new Map<string, { name: string; kind: SegmentKind; time: number; on: boolean }>();
    for (const s of r.segments) {
      const key = `${s.kind} ${s.name}`;
      let step = here.get(key);
      if (step === undefined) here.set(key, (step = { name: s.name, kind: s.kind, time: 0, on: false }));
      if (onPath.has(s.id)) {
        step.on = true;
        step.time += Math.max(0, s.end - s.start - (nested.get(s.id) ?? 0));
      }
    }
    for (const [key, h] of here) {
      let step = steps.get(key);
      if (step === undefined) steps.set(key, (step = { name: h.name, kind: h.kind, ran: 0, times: [], total: 0 }));
      step.ran++;
      if (h.on) {
        step.times.push(h.time);
        step.total += h.time;
      }
    }
  }
  const list: CriticalPathStep[] = [...steps.values()].map((s) => {
    const sorted = s.times.sort((a, b) => a - b);
    return {
      name: s.name,
      kind: s.kind,
      share: duration > 0 ? ratio(s.total, duration) : 0,
      mean: sorted.length > 0 ? round(s.total / sorted.length) : 0,
      p95: sorted.length > 0 ? round(nearestRank(sorted, 0.95)) : 0,
      onPath: ratio(sorted.length, s.ran),
    };
  });
  list.sort((a, b) => b.share - a.share || b.onPath - a.onPath || (a.name < b.name ? -1 : 1));
  return {
    requests: records.length,
    basis,
    duration: records.length > 0 ? round(duration / records.length) : 0,
    own: { cpu: known > 0 ? ratio(cpu, known) : null, blocking: known > 0 ? ratio(blocking, known) : null },
    steps: list,
  };
}
