/**
 * Aggregation of one flush interval: per endpoint, the count, the errors and a quantile sketch of
 * each metric. Its size depends on the number of endpoints, never on the request rate.
 */
import {
  addValue,
  METRICS,
  newSketch,
  roundMs,
  toWire,
  type ExternalByKind,
  type MetricName,
  type SegmentKind,
  type Sketch,
  type TransactionRecord,
  type WireInterval,
} from '@loopscope/protocol';

function roundedSums(sums: ExternalByKind): ExternalByKind {
  const out: ExternalByKind = {};
  for (const kind in sums) out[kind as SegmentKind] = roundMs(sums[kind as SegmentKind]!);
  return out;
}

/** Endpoints kept per interval; the rest are counted under OVERFLOW_ENDPOINT. */
export const MAX_ENDPOINTS = 1000;
export const OVERFLOW_ENDPOINT = 'OTHER (endpoint limit reached)';

export class EndpointAggregate {
  count = 0;
  errors = 0;
  readonly sketches: Record<MetricName, Sketch> = {
    response: newSketch(),
    duration: newSketch(),
    cpu: newSketch(),
    external: newSketch(),
    blocking: newSketch(),
  };
  /** The slowest transaction of the interval (by duration), kept as a sampled trace. */
  slowest: TransactionRecord | undefined;
  slowestDuration = -1;

  /** Sums over the interval of external time per kind. */
  externalByKind: ExternalByKind = {};

  add(m: Record<MetricName, number> & { externalByKind: ExternalByKind }, error: boolean): void {
    this.count++;
    if (error) this.errors++;
    for (const metric of METRICS) addValue(this.sketches[metric], m[metric]);
    for (const kind in m.externalByKind) {
      const k = kind as SegmentKind;
      this.externalByKind[k] = (this.externalByKind[k] ?? 0) + m.externalByKind[k]!;
    }
  }
}

export class IntervalAggregate {
  readonly start: number;
  readonly endpoints = new Map<string, EndpointAggregate>();

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
        response: toWire(e.sketches.response),
        duration: toWire(e.sketches.duration),
        cpu: toWire(e.sketches.cpu),
        external: toWire(e.sketches.external),
        blocking: toWire(e.sketches.blocking),
        ...(Object.keys(e.externalByKind).length > 0 ? { externalByKind: roundedSums(e.externalByKind) } : {}),
      });
    }
    return out;
  }
}
