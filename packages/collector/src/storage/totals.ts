/**
 * What both storages compute alike, so that the same rows give the same answer on SQLite and on
 * ClickHouse: merged aggregates (the counts and sketches of many rows added together) and the query
 * API's summary of them, GC pauses by kind, stored traces' slices as times, and the span of time a
 * batch covers.
 */
import { METRICS, emptyWire, type AgentCost, type WireLoop, fromWire, mergeWire, quantile, summarize, type ExternalByKind, type LoopSeriesMetric, type MetricName, type Quantiles, type SegmentKind, type WireBatch, type WireSketch } from '@loopscope/protocol';
import type { EndpointSummary, LoopWork, RangeTotals } from './storage.js';

export const round = (v: number): number => Math.round(v * 1000) / 1000;

/** No request yet: counts 0, every sketch empty. */
export const emptyTotals = (): RangeTotals => ({ count: 0, errors: 0, aborted: 0, sketches: Object.fromEntries(METRICS.map((m) => [m, emptyWire()])) as RangeTotals['sketches'] });

/** One aggregate row, or many merged: counts, a sketch per metric, external ms summed per kind. */
export interface Totals extends RangeTotals {
  externalByKind: ExternalByKind;
}

export const emptyWithKinds = (): Totals => ({ ...emptyTotals(), externalByKind: {} });

/** Adds sums of external time per kind into `into`. */
export function addByKind(into: ExternalByKind, from: ExternalByKind | undefined): void {
  if (from === undefined) return;
  for (const kind in from) {
    const k = kind as SegmentKind;
    into[k] = (into[k] ?? 0) + from[k]!;
  }
}

/** Adds a row's counts and sketches (already decoded) to `into`. */
export function addTotals(into: RangeTotals, r: { count: number; errors: number; aborted: number; sketches: Record<MetricName, WireSketch> }): void {
  into.count += r.count;
  into.errors += r.errors;
  into.aborted += r.aborted;
  for (const m of METRICS) mergeWire(into.sketches[m], r.sketches[m]);
}

/** busy ÷ (busy + idle), to 4 decimals; 0 for no loop time. */
export const utilizationOf = (busyMs: number, idleMs: number): number => (busyMs + idleMs > 0 ? Math.round((busyMs / (busyMs + idleMs)) * 10_000) / 10_000 : 0);

/** The loop data of one point of a loop series, merged over its rows (`rows` 0: nobody reported then). */
export interface LoopPoint {
  rows: number;
  delay: WireSketch;
  busyMs: number;
  idleMs: number;
  gcMs: number;
}

export const emptyLoopPoint = (): LoopPoint => ({ rows: 0, delay: emptyWire(), busyMs: 0, idleMs: 0, gcMs: 0 });

/** A point's value of a loop series (GUIDE §3, LOOP_SERIES_METRICS): null where no process reported its loop. */
export function loopPointValue(metric: LoopSeriesMetric, p: LoopPoint, q: number, stepMs: number): number | null {
  if (p.rows === 0) return null;
  if (metric === 'loop_delay') return p.delay.n > 0 ? round(quantile(fromWire(p.delay), q)) : null;
  if (metric === 'utilization') return p.busyMs + p.idleMs > 0 ? utilizationOf(p.busyMs, p.idleMs) : null;
  return round(p.gcMs / (stepMs / 1000));
}

/** Rows merged per key (an endpoint, a service, or '' for all): their counts, sketches and external time per kind. */
export function foldTotals<R>(rows: Iterable<R>, keyOf: (row: R) => string, totalsOf: (row: R) => Totals): Map<string, Totals> {
  const out = new Map<string, Totals>();
  for (const row of rows) {
    const key = keyOf(row);
    let into = out.get(key);
    if (into === undefined) out.set(key, (into = emptyWithKinds()));
    const t = totalsOf(row);
    addTotals(into, t);
    addByKind(into.externalByKind, t.externalByKind);
  }
  return out;
}

/**
 * The query API's summary of merged rows. A metric nobody could measure (cpu, external and
 * blocking seen from outside the process: their sketches stay empty) is null, never 0; where some
 * senders knew it, it covers their requests.
 */
export function toSummary({ count, errors, aborted, sketches, externalByKind }: Totals): Omit<EndpointSummary, 'endpoint'> {
  const known = (sketch: WireSketch): Quantiles | null => (sketch.n === 0 ? null : summarize(fromWire(sketch)));
  const { response, duration, cpu, external, blocking } = sketches;
  return {
    count,
    errors,
    aborted,
    response: summarize(fromWire(response)),
    duration: summarize(fromWire(duration)),
    cpu: known(cpu),
    external: known(external),
    blocking: known(blocking),
    // the mean over the requests whose external time is known
    externalByKind: Object.fromEntries(Object.entries(externalByKind).map(([kind, sum]) => [kind, round(sum / Math.max(1, external.n))])),
  };
}

/** Stored traces' slices of the loop (JSON, ms from each trace's start) as times since the epoch, for loopWork(). */
export function sliceTimes(rows: ReadonlyArray<{ traceId: string; endpoint: string; start: number; instance: string | null; slices: string }>): LoopWork['traces'] {
  return rows.map((r) => ({
    traceId: r.traceId,
    endpoint: r.endpoint,
    instance: r.instance,
    slices: (JSON.parse(r.slices) as Array<[number, number]>).map(([s, e]): [number, number] => [r.start + s, r.start + e]),
  }));
}

/** Merged GC pauses by kind. */
export type GcTotals = Record<string, { count: number; ms: number }>;

/** The GC kinds Node reports (loop/health.ts in the agent); any other kind a sender names is filed under `other`. */
export const GC_KINDS = ['minor', 'major', 'incremental', 'weakcb', 'other'] as const;
export const gcKind = (kind: string): (typeof GC_KINDS)[number] => (GC_KINDS as readonly string[]).includes(kind) ? (kind as (typeof GC_KINDS)[number]) : 'other';

export function addGc(into: GcTotals, from: GcTotals): void {
  for (const [kind, g] of Object.entries(from)) {
    const e = (into[gcKind(kind)] ??= { count: 0, ms: 0 });
    e.count += g.count;
    e.ms = round(e.ms + g.ms);
  }
}

/**
 * The span of time a batch's data covers, by its sender's clock (the collector's could disagree
 * with the timestamps the data is queried by): its instance's first and last seen.
 */
export function batchSpan(batch: WireBatch): { first: number; last: number } {
  let first = batch.sentAt;
  let last = batch.sentAt;
  for (const iv of batch.intervals) {
    first = Math.min(first, iv.start);
    last = Math.max(last, iv.start + iv.ms);
  }
  for (const t of batch.traces) first = Math.min(first, t.start);
  return { first, last };
}

/**
 * What the agents reported of their own cost, summed over a service's loop rows (`agentRss`: the
 * largest): the stored form of GET /api/services' `agent`.
 */
export const AGENT_SUMS = ['agentReports', 'agentMs', 'agentProcessMs', 'agentTransactions'] as const;
export const AGENT_MAXES = ['agentRss'] as const;
export type AgentSums = Record<(typeof AGENT_SUMS)[number] | (typeof AGENT_MAXES)[number], number>;

export const emptyAgentSums = (): AgentSums => ({ agentReports: 0, agentMs: 0, agentProcessMs: 0, agentTransactions: 0, agentRss: 0 });

/** One process's loop sample as agent sums (all zero when its agent did not say). */
export function agentSumsOf(loop: WireLoop): AgentSums {
  const a = loop.agent;
  if (a === undefined) return emptyAgentSums();
  return { agentReports: 1, agentMs: a.cpu?.ms ?? 0, agentProcessMs: a.cpu?.processMs ?? 0, agentTransactions: a.cpu?.transactions ?? 0, agentRss: a.rss };
}

export function addAgentSums(into: AgentSums, from: AgentSums): void {
  for (const c of AGENT_SUMS) into[c] += from[c];
  for (const c of AGENT_MAXES) into[c] = Math.max(into[c], from[c]);
}

/** The agent's cost from its sums (the one definition of GET /api/services' `agent`). */
export function agentCostOf(s: AgentSums): AgentCost | null {
  if (s.agentReports === 0) return null;
  return {
    usPerRequest: s.agentProcessMs > 0 && s.agentTransactions > 0 ? Math.round((s.agentMs * 1000 * 100) / s.agentTransactions) / 100 : null,
    cpuShare: s.agentProcessMs > 0 ? Math.round((s.agentMs / s.agentProcessMs) * 10_000) / 10_000 : null,
    rss: s.agentRss,
  };
}
