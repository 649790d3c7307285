/**
 * Who held the event loop while a trace waited for it (`GET /api/traces/:traceId/holders`). A wait
 * of a trace (its `waits`: ready to run, the loop busy with other work) is matched against what the
 * storage knows ran on the loop of the same process then: long tasks, and the cpu slices of the
 * other stored traces. Pure: the storage finds the candidates, this decides which overlap how much.
 */
import type { LoopHolder, TraceHolders, TraceRecord } from '@loopscope/protocol';
import type { LoopWork } from './storage/storage.js';

export type { LoopWork };

/** Candidates are looked for only this far before a wait: a long task or a transaction that began earlier is not found. */
export const HOLDER_LOOKBACK_MS = 10 * 60_000;

/** Holders listed per wait by default, and at most. */
export const DEFAULT_HOLDERS = 5;
export const MAX_HOLDERS = 20;

/** Overlaps below a microsecond are the rounding of the wire (µs), not a holder. */
const EPSILON = 0.001;

const round = (v: number): number => Math.round(v * 1000) / 1000;

const overlap = (a0: number, a1: number, b0: number, b1: number): number => Math.max(0, Math.min(a1, b1) - Math.max(a0, b0));

/** The window (ms since the epoch) the trace's waits cover, or undefined when it has none. */
export function waitWindow(record: Pick<TraceRecord, 'start' | 'waits'>): { from: number; to: number } | undefined {
  const waits = record.waits ?? [];
  if (waits.length === 0) return undefined;
  let from = Infinity;
  let to = -Infinity;
  for (const [s, e] of waits) {
    from = Math.min(from, record.start + s);
    to = Math.max(to, record.start + e);
  }
  return { from, to };
}

/**
 * For each wait of `record`, the long tasks and other traces whose time on the loop overlapped it,
 * largest overlap first, at most `limit`. A trace that ran a long task listed for a wait is not
 * listed again for it: the task names the function too. The trace's own tasks and slices never
 * count (a wait is time others ran).
 */
export function holdersOf(record: Pick<TraceRecord, 'traceId' | 'start' | 'waits'>, instance: string | null, work: LoopWork, limit = DEFAULT_HOLDERS): TraceHolders {
  // each trace's first start and last end, to pass over the ones far from a wait at once
  const spans = work.traces.map((t) => t.slices.reduce<[number, number]>((span, [s, e]) => [Math.min(span[0], s), Math.max(span[1], e)], [Infinity, -Infinity]));
  const waits = (record.waits ?? []).map(([start, end]) => {
    const from = record.start + start;
    const to = record.start + end;
    const holders: LoopHolder[] = [];
    const byTask = new Set<string>();
    for (const t of work.longTasks) {
      if (t.traceId === record.traceId) continue;
      const o = overlap(from, to, t.at, t.at + t.ms);
      if (o < EPSILON) continue;
      holders.push({ kind: 'long-task', overlap: round(o), at: t.at, ms: t.ms, endpoint: t.endpoint, traceId: t.traceId, function: t.function, location: t.location, instance: t.instance });
      if (t.traceId !== null) byTask.add(t.traceId);
    }
    for (const [i, t] of work.traces.entries()) {
      const [first, last] = spans[i]!;
      if (last <= from || first >= to || t.traceId === record.traceId || byTask.has(t.traceId)) continue;
      let o = 0;
      for (const [s, e] of t.slices) o += overlap(from, to, s, e);
      if (o < EPSILON) continue;
      holders.push({ kind: 'trace', overlap: round(o), traceId: t.traceId, endpoint: t.endpoint, instance: t.instance });
    }
    holders.sort((a, b) => b.overlap - a.overlap || (a.kind === b.kind ? 0 : a.kind === 'long-task' ? -1 : 1));
    return { start, end, holders: holders.slice(0, limit) };
  });
  return { traceId: record.traceId, instance, waits };
}
