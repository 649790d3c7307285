/**
 * The one interface between the collector and where its data lives. Ingest and the query API use
 * only this, so a second backend (ClickHouse, for many collectors) can follow without touching
 * either. Every method is async even though the embedded SQLite backend is synchronous.
 */
import type {
  ContextLossSite,
  EndpointSummary,
  MetricName,
  EndpointView,
  LoopSummary,
  SeriesMetric,
  ServiceSummary,
  TimeseriesResult,
  LongTaskRow,
  TraceRecord,
  TraceSummary,
  WireBatch,
  WireSketch,
} from '@loopscope/protocol';

// the answers of the query API are the protocol's; the collector's callers find them here too
export { SERIES_METRICS } from '@loopscope/protocol';
export type { ContextLossSite, EndpointSummary, EndpointView, LongTaskGroup, LongTaskRow, LoopSummary, SeriesMetric, ServiceSummary, TimeseriesResult, TraceSummary } from '@loopscope/protocol';

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

export interface TimeseriesQuery extends Range {
  service: string;
  endpoint?: string | undefined;
  metric: SeriesMetric;
  /** quantile in (0, 1]; 1 is the max. Ignored for throughput and errors. */
  q: number;
  /** ms per point */
  step: number;
}

export interface TracesQuery extends Range {
  service: string;
  endpoint?: string | undefined;
  sort: 'slowest' | 'recent';
  /** what `slowest` is measured by (default duration) */
  by?: 'duration' | 'response';
  limit: number;
}

export interface RecordsQuery extends Range {
  service: string;
  endpoint: string;
  /** at most this many, newest first */
  limit: number;
  /** only the traces drawn at random (`sampledAtRandom`): an unbiased sample of the endpoint's requests */
  atRandom: boolean;
}

export interface LoopQuery extends Range {
  service: string;
  /** long tasks newest first (`recent`) or longest first (`worst`) */
  sort: 'recent' | 'worst';
  /** at most this many long tasks, and groups */
  limit: number;
  /** `culprit`: the long tasks grouped by function and location too (`groups`) */
  group?: 'culprit';
  /** only the long tasks of this function */
  function?: string;
  /** only those at this location; null: those without one */
  location?: string | null;
}

/** What ran on a service's loop in [from, to): long tasks and stored traces' slices that overlap it. */
export interface LoopWorkQuery extends Range {
  service: string;
  /** one process of the service; null: every one */
  instance: string | null;
  /** how long before `from` a long task or a trace may have begun (ms) */
  lookback: number;
}

/** What ran on a service's loop around a time window: its long tasks, and other traces' slices (ms since the epoch). */
export interface LoopWork {
  longTasks: Array<Omit<LongTaskRow, 'stack' | 'blocked' | 'compiledLocation'>>;
  traces: Array<{ traceId: string; endpoint: string; instance: string | null; slices: Array<[number, number]> }>;
}

/** One service's requests over a range (or one endpoint's): counts, and each metric's merged sketch. */
export interface RangeTotals {
  count: number;
  errors: number;
  aborted: number;
  /** empty (n 0) where no sender of the range knew the metric */
  sketches: Record<MetricName, WireSketch>;
}

/** A service's calls to one target over a range. */
export interface CallTotals {
  service: string;
  kind: string;
  target: string;
  count: number;
  errors: number;
  duration: WireSketch;
}

/** One transaction of a trace, as stored. */
export interface TracePart {
  record: TraceRecord;
  instance: string | null;
}

/** A round of alert evaluation (alerts/engine.ts): the collector that ran it, when, and the state of the alerts it left (JSON). */
export interface AlertRound {
  holder: string;
  at: number;
  state: string;
}

/** A batch the storage cannot take now but will later (ClickHouse: another collector may still be writing it): a 503 to its sender. */
export class RetryLater extends Error {
  readonly statusCode = 503;
}

/** What the embedded storage met of a full disk since the collector started (storage/disk-space.ts). */
export interface DiskFullStats {
  /** the disk is full now: the last write failed for lack of space, none went through since */
  full: boolean;
  /** since when (ms since the epoch), null when not full */
  since: number | null;
  /** how many times the disk became full */
  episodes: number;
  /** batches refused (503) for lack of space; their agents send them again */
  refusedBatches: number;
  /** prunes that failed for lack of space (the next runs a minute later) */
  failedPrunes: number;
  /** what SQLite said the last time, null before any */
  lastError: string | null;
}

export interface Storage {
  readonly kind: 'sqlite' | 'clickhouse';
  /** The embedded storage's record of a full disk (absent for ClickHouse, whose server answers for its disks). */
  readonly diskFull?: DiskFullStats;
  /** What the storage says of itself at start, if anything (a ClickHouse database it just created). */
  readonly note?: string;
  /**
   * Stores a validated batch atomically; resolves only once it is durable. A batch whose batchId was
   * already stored is not applied again and resolves `{ duplicate: true }`. Rejects with RetryLater
   * when the batch should come again later.
   */
  ingest(batch: WireBatch, receivedAt: number): Promise<{ duplicate: boolean }>;
  services(range: Range): Promise<ServiceSummary[]>;
  endpoints(service: string, range: Range): Promise<EndpointSummary[]>;
  /** One endpoint in every service that reported it (its agent's view, a proxy's, a probe's), busiest first. */
  views(endpoint: string, range: Range): Promise<EndpointView[]>;
  timeseries(query: TimeseriesQuery): Promise<TimeseriesResult>;
  /** The service's requests over the range, of every endpoint or of one (the alert rules' values). */
  summary(service: string, endpoint: string | undefined, range: Range): Promise<RangeTotals>;
  traces(query: TracesQuery): Promise<TraceSummary[]>;
  /** The records of an endpoint's traces that started in the range, newest first (GET /api/critical-path). */
  traceRecords(query: RecordsQuery): Promise<TraceRecord[]>;
  loop(query: LoopQuery): Promise<LoopSummary>;
  /**
   * Every part of a trace (one per transaction, from every service), earliest first: the record as
   * its sender sent it and the instance that sent it (null for traces stored before schema 4).
   */
  traceParts(traceId: string): Promise<TracePart[]>;
  /** Every service's outbound calls over the range, per kind and target (from per-minute rows). */
  calls(range: Range): Promise<CallTotals[]>;
  /** Where the service's requests lost their context over the range, per call site, the most time lost first (from per-minute rows). */
  contextLoss(service: string, range: Range): Promise<ContextLossSite[]>;
  /** `target` (a host:port an http call went to) is `service`: a part of `service` was under such a call. */
  learnTarget(target: string, service: string, now: number): Promise<void>;
  /** The targets known to be services, learned since `since`. */
  targets(since: number): Promise<Map<string, string>>;
  /** The long tasks and the slices (ms since the epoch) of stored traces that overlap the window on the loop of the service (or one process of it). */
  loopWork(query: LoopWorkQuery): Promise<LoopWork>;
  /** The latest round of alert evaluation, by any collector of this storage; null before the first. */
  lastAlertRound(): Promise<AlertRound | null>;
  saveAlertRound(round: AlertRound): Promise<void>;
  /** Resolves when the storage answers; rejects saying why not (GET /api/health). */
  check(): Promise<void>;
  /** Deletes what is older than the retention allows at `now`. */
  prune(now: number): Promise<void>;
  close(): Promise<void>;
}
