/**
 * Aggregation of one flush interval: per endpoint, the count, the errors and a quantile sketch of
 * each metric; outbound calls per kind and target. Its size depends on the number of endpoints and
 * targets, never on the request rate. The agent builds its batches' intervals with it, and the
 * collector those of what it receives from other senders (OTLP).
 */
import { callHost, memoizeNames } from './endpoint.js';
import { addValue, newSketch, toWire, type Sketch, type WireSketch } from './sketch.js';
import { MAX_CALL_TARGETS, OTHER_TARGET, roundMs, type ExternalByKind, type InsideMetric, type MetricName, type SegmentKind, type TraceRecord } from './types.js';
import type { WireCalls, WireInterval } from './wire.js';

/** What the interval needs of a finished transaction's segment (the agent's Segment, a segment record). */
export interface CallLike {
  readonly kind: SegmentKind;
  readonly name: string;
  readonly target: string | undefined;
  readonly external: boolean;
  readonly start: number;
  /** -1: unfinished */
  readonly end: number;
  readonly error: string | undefined;
}

/** host:port of an http call's name, memoized: the names repeat, and this runs for every call. */
const httpHost = memoizeNames(2000, (_kind, name) => callHost(name));

/** Where a call went: its target, or for an http call the host:port of its name. */
function targetOf(call: CallLike): string | undefined {
  if (call.target !== undefined) return call.target;
  return call.kind === 'http' ? httpHost('http', call.name) : undefined;
}

interface CallAggregate {
  kind: SegmentKind;
  target: string;
  count: number;
  errors: number;
  duration: Sketch;
}

/**
 * What one finished transaction adds to its endpoint's aggregate. cpu, external and blocking are
 * null when the sender cannot know them (it watches from outside the process: proxy, probe).
 */
export type Observation = Record<Exclude<MetricName, InsideMetric>, number> & Record<InsideMetric, number | null> & { externalByKind: ExternalByKind };

function roundedSums(sums: ExternalByKind): ExternalByKind {
  const out: ExternalByKind = {};
  for (const kind in sums) out[kind as SegmentKind] = roundMs(sums[kind as SegmentKind]!);
  return out;
}

/**
 * An inside metric's sketch on the wire: null (unknown) when no transaction of the interval knew it.
 * A sender knows it for all of its transactions (the agent) or for none (proxy, probe).
 */
const insideWire = (sketch: Sketch): WireSketch | null => (sketch.count === 0 ? null : toWire(sketch));

/** Endpoints kept per interval; the rest are counted under OVERFLOW_ENDPOINT. */
export const MAX_ENDPOINTS = 1000;
export const OVERFLOW_ENDPOINT = 'OTHER (endpoint limit reached)';

export class EndpointAggregate {
  count = 0;
  errors = 0;
  /** of which aborted (the connection closed before the response was finished) */
  aborted = 0;
  readonly sketches: Record<MetricName, Sketch> = {
    response: newSketch(),
    duration: newSketch(),
    cpu: newSketch(),
    external: newSketch(),
    blocking: newSketch(),
  };

  /** The slowest transaction of the interval (by duration), kept as a sampled trace. */
  slowest: TraceRecord | undefined;
  slowestDuration = -1;

  /** Sums over the interval of external time per kind. */
  externalByKind: ExternalByKind = {};

  add(m: Observation, error: boolean, aborted = false): void {
    this.count++;
    if (error) this.errors++;
    if (aborted) this.aborted++;
    // one by one rather than a loop over METRICS: this runs for every request
    const sketches = this.sketches;
    addValue(sketches.response, m.response);
    addValue(sketches.duration, m.duration);
    if (m.cpu !== null) addValue(sketches.cpu, m.cpu);
    if (m.external !== null) addValue(sketches.external, m.external);
    if (m.blocking !== null) addValue(sketches.blocking, m.blocking);
    for (const kind in m.externalByKind) {
      const k = kind as SegmentKind;
      this.externalByKind[k] = (this.externalByKind[k] ?? 0) + m.externalByKind[k]!;
    }
  }
}

export class IntervalAggregate {
  readonly start: number;
  readonly endpoints = new Map<string, EndpointAggregate>();
  /** outbound calls by kind, then target (the service map's edges) */
  private readonly calls = new Map<SegmentKind, Map<string, CallAggregate>>();
  private targets = 0;

  constructor(start: number) {
    this.start = start;
  }

  /** The endpoint's aggregate, created on first use (bounded by MAX_ENDPOINTS). */
  entry(endpoint: string): EndpointAggregate {
    let e = this.endpoints.get(endpoint);
    if (e === undefined) {
      if (this.endpoints.size >= MAX_ENDPOINTS) endpoint = OVERFLOW_ENDPOINT;
      e = this.endpoints.get(endpoint);
      if (e === undefined) this.endpoints.set(endpoint, (e = new EndpointAggregate()));
    }
    return e;
  }

  /** A finished transaction's calls, each to its target (those with none, like a manual segment's, are left out). */
  addCalls(calls: readonly CallLike[]): void {
    for (const call of calls) {
      if (!call.external || call.end < 0) continue;
      let target = targetOf(call);
      if (target === undefined || target === '') continue;
      let byTarget = this.calls.get(call.kind);
      if (byTarget === undefined) this.calls.set(call.kind, (byTarget = new Map()));
      let entry = byTarget.get(target);
      if (entry === undefined) {
        if (this.targets >= MAX_CALL_TARGETS - 1) {
          target = OTHER_TARGET;
          entry = byTarget.get(target);
        }
        if (entry === undefined) {
          byTarget.set(target, (entry = { kind: call.kind, target, count: 0, errors: 0, duration: newSketch() }));
          this.targets++;
        }
      }
      entry.count++;
      if (call.error !== undefined) entry.errors++;
      addValue(entry.duration, call.end - call.start);
    }
  }

  callsToWire(end: number): WireCalls[] {
    const ms = Math.max(1, Math.round(end - this.start));
    return [...this.calls.values()].flatMap((byTarget) => [...byTarget.values()]).map((c) => ({ start: Math.round(this.start), ms, kind: c.kind, target: c.target.slice(0, 256), count: c.count, errors: c.errors, duration: toWire(c.duration) }));
  }

  /** Transactions counted in the interval. */
  get count(): number {
    let n = 0;
    for (const e of this.endpoints.values()) n += e.count;
    return n;
  }

  toWire(end: number): WireInterval[] {
    const out: WireInterval[] = [];
    const ms = Math.max(1, Math.round(end - this.start));
    for (const [endpoint, e] of this.endpoints) {
      out.push({
        start: Math.round(this.start),
        ms,
        endpoint,
        count: e.count,
        errors: e.errors,
        // only when there is one: a collector from before the field takes the batches without it
        ...(e.aborted > 0 ? { aborted: e.aborted } : {}),
        response: toWire(e.sketches.response),
        duration: toWire(e.sketches.duration),
        cpu: insideWire(e.sketches.cpu),
        external: insideWire(e.sketches.external),
        blocking: insideWire(e.sketches.blocking),
        ...(Object.keys(e.externalByKind).length > 0 ? { externalByKind: roundedSums(e.externalByKind) } : {}),
      });
    }
    return out;
  }
}
