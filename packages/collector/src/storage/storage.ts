/**
 * The one interface between the collector and where its data lives. Ingest and the query API use
 * only this, so a second backend (ClickHouse, for many collectors) can follow without touching
 * either. Every method is async even though the embedded SQLite backend is synchronous.
 */
import type { ExternalByKind, MetricName, Quantiles, WireBatch } from '@loopscope/protocol';

/** A time range in ms since the epoch: `from` inclusive, `to` exclusive. */
export interface Range {
  from: number;
  to: number;
}

/** How long each kind of data is kept, in ms. */
export interface Retention {
  /** per-second aggregates */
  seconds: number;
  /** per-minute aggregates */
  minutes: number;
  /** per-hour aggregates */
  hours: number;
  /** full traces */
  traces: number;
  /** batch ids remembered to recognize a batch sent twice */
  batches: number;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
export const DEFAULT_RETENTION: Retention = { seconds: 2 * HOUR, minutes: 7 * DAY, hours: 90 * DAY, traces: 7 * DAY, batches: DAY };

export interface ServiceSummary {
  service: string;
  /** the latest time (ms since the epoch) any instance of the service reported */
  lastSeen: number;
  /** the number of instances (processes) that reported during the range */
  instances: number;
  /**
   * What those instances' agents could not ship (queue full while the collector was unreachable),
   * counted since each started: an addition to GUIDE 3.3, so that lost data is visible.
   */
  dropped: { batches: number; transactions: number; traces: number };
}

export interface EndpointSummary {
  endpoint: string;
  count: number;
  errors: number;
  response: Quantiles;
  duration: Quantiles;
  cpu: Quantiles;
  external: Quantiles;
  blocking: Quantiles;
  /** beyond GUIDE 3.3: mean external time per request by kind of call (ms); kinds never seen are absent */
  externalByKind: ExternalByKind;
}

export type SeriesMetric = MetricName | 'throughput' | 'errors';
export const SERIES_METRICS: readonly SeriesMetric[] = ['response', 'duration', 'cpu', 'external', 'blocking', 'throughput', 'errors'];

export interface TimeseriesQuery extends Range {
  service: string;
  endpoint?: string | undefined;
  metric: SeriesMetric;
  /** quantile in (0, 1]; 1 is the max. Ignored for throughput and errors. */
  q: number;
  /** ms per point */
  step: number;
}

export interface TimeseriesResult {
  metric: SeriesMetric;
  q: number;
  step: number;
  /** [point start, value]; null where no data was received */
  points: Array<[number, number | null]>;
}

export interface TracesQuery extends Range {
  service: string;
  endpoint?: string | undefined;
  sort: 'slowest' | 'recent';
  limit: number;
}

export interface TraceSummary {
  traceId: string;
  endpoint: string;
  start: number;
  status: number;
  response: number;
  duration: number;
  cpu: number;
  external: number;
  blocking: number;
}

export interface LoopQuery extends Range {
  service: string;
  /** long tasks newest first (`recent`) or longest first (`worst`) */
  sort: 'recent' | 'worst';
  limit: number;
}

export interface LongTaskRow {
  at: number;
  ms: number;
  /** null: the task ran for no transaction */
  endpoint: string | null;
  traceId: string | null;
  function: string;
  location: string | null;
  /** innermost first, when the agent's profiler saw it */
  stack: string[];
  /** the transactions it kept waiting, per endpoint */
  blocked: Array<{ endpoint: string; count: number; ms: number }>;
  instance: string;
}

export interface LoopSummary {
  /** event-loop delay over the range, merged over the service's processes */
  delay: Quantiles;
  /** busy / (busy + idle) over the range, 0..1 */
  utilization: number;
  /** total GC pause (ms) over the range, and by kind */
  gcPauseMs: number;
  gc: Record<string, { count: number; ms: number }>;
  /** process CPU time over the range (ms), summed over processes */
  cpu: { user: number; system: number };
  /** the largest seen in the range (bytes) */
  memory: { rss: number; heapUsed: number; heapTotal: number };
  longTasks: LongTaskRow[];
}

export interface Storage {
  readonly kind: 'sqlite';
  /**
   * Stores a validated batch atomically; resolves only once it is durable. A batch whose batchId was
   * already stored is not applied again and resolves `{ duplicate: true }`.
   */
  ingest(batch: WireBatch, receivedAt: number): Promise<{ duplicate: boolean }>;
  services(range: Range): Promise<ServiceSummary[]>;
  endpoints(service: string, range: Range): Promise<EndpointSummary[]>;
  timeseries(query: TimeseriesQuery): Promise<TimeseriesResult>;
  traces(query: TracesQuery): Promise<TraceSummary[]>;
  loop(query: LoopQuery): Promise<LoopSummary>;
  /** The full transaction record as the agent sent it, or undefined. */
  trace(traceId: string): Promise<object | undefined>;
  /** Deletes what is older than the retention allows at `now`. */
  prune(now: number): Promise<void>;
  close(): Promise<void>;
}
