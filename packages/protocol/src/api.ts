/**
 * The answers of the query API (docs/collector.md states it): what the collector serves and what
 * the dashboard and users' scripts read. All times in ms; timestamps in ms since the epoch.
 */
import type { ExternalByKind, MetricName, SegmentKind, TraceRecord } from './types.js';
import type { Quantiles } from './sketch.js';

export interface ServiceSummary {
  service: string;
  /**
   * The earliest time (ms since the epoch) its instances that reported during the range began
   * reporting: a service younger than the range has its rates taken over the time since.
   */
  firstSeen: number;
  /** the latest time (ms since the epoch) any instance of the service reported */
  lastSeen: number;
  /** the number of instances (processes) that reported during the range */
  instances: number;
  /**
   * What those instances' agents could not ship (queue full while the collector was unreachable),
   * counted since each started, so that lost data is visible; and `parts`, the parts of traces the
   * collector did not keep from them (a trace id past its 100 parts: a client that sends the same
   * `traceparent` with every request); `cut`, the values their senders cut to the wire format's
   * limits before sending (a text ended with `…`, the items of a list past its limit).
   */
  dropped: { batches: number; transactions: number; traces: number; parts: number; cut: number };
  /**
   * Who reported it (`agent.name` of its batches): `loopscope` (the agent, inside the process),
   * `loopscope-proxy` (a measuring proxy in front of it) or `loopscope-probe` (synthetic checks).
   */
  agents: string[];
  /** What the agent itself cost the service over the range; null when no agent of ours reported its cost (a proxy, a probe, an older agent). */
  agent: AgentCost | null;
}

/**
 * What loopscope's agent itself cost a service (docs/metrics.md, "The agent's own cost"): its own
 * time on the event loop, read from the sampling profiler's samples in its code and in the async
 * hooks it turns on, per request and as a share of the processes' CPU time; and what its loading and
 * start added to a process's resident memory (the largest over the processes).
 */
export interface AgentCost {
  /** µs per request; null when no request finished or the profiler is off */
  usPerRequest: number | null;
  /** 0..1 of the processes' CPU time; null when the profiler is off */
  cpuShare: number | null;
  /** bytes */
  rss: number;
}

export interface EndpointSummary {
  endpoint: string;
  count: number;
  errors: number;
  /** of `count`, the requests whose connection closed before their response was finished */
  aborted: number;
  response: Quantiles;
  duration: Quantiles;
  /** null: unknown, the service is seen from outside the process (proxy, probe) */
  cpu: Quantiles | null;
  external: Quantiles | null;
  blocking: Quantiles | null;
  /** mean external time per request by kind of call (ms); kinds never seen are absent */
  externalByKind: ExternalByKind;
}

/**
 * One endpoint as one service saw it (`GET /api/views?endpoint=E`): the same endpoint name in every
 * service that reported it — the app's own agent, a proxy in front of it, a probe — side by side.
 */
export interface EndpointView extends EndpointSummary {
  service: string;
  /** as in ServiceSummary: who reported the service */
  agents: string[];
}

/**
 * A service's event loop over time (`GET /api/timeseries`, per service, never per endpoint): the
 * loop delay's quantile `q` (ms), utilization (busy ÷ (busy + idle), 0..1) and GC pause time (ms
 * per second), each merged over the service's processes per point.
 */
export const LOOP_SERIES_METRICS = ['loop_delay', 'utilization', 'gc'] as const;
export type LoopSeriesMetric = (typeof LOOP_SERIES_METRICS)[number];
export const isLoopSeries = (metric: string): metric is LoopSeriesMetric => (LOOP_SERIES_METRICS as readonly string[]).includes(metric);

export type SeriesMetric = MetricName | 'throughput' | 'errors' | 'aborted' | LoopSeriesMetric;

export const SERIES_METRICS: readonly SeriesMetric[] = ['response', 'duration', 'cpu', 'external', 'blocking', 'throughput', 'errors', 'aborted', ...LOOP_SERIES_METRICS];

export interface TimeseriesResult {
  metric: SeriesMetric;
  q: number;
  step: number;
  /** [point start, value]; null where no data was received */
  points: Array<[number, number | null]>;
}

export interface TraceSummary {
  traceId: string;
  endpoint: string;
  start: number;
  status: number;
  /** the connection closed before the response was finished */
  aborted: boolean;
  response: number;
  duration: number;
  /** null: unknown (seen from outside the process) */
  cpu: number | null;
  external: number | null;
  blocking: number | null;
}

export interface LongTaskRow {
  at: number;
  ms: number;
  /** null: the task ran for no transaction */
  endpoint: string | null;
  traceId: string | null;
  function: string;
  /** file:line:column, in the source a source map points to when the file has one */
  location: string | null;
  /** where `location` is in the compiled file, when a source map moved it; else null */
  compiledLocation: string | null;
  /** innermost first, when the agent's profiler saw it (mapped as `location` is) */
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
  /** every long task stored in the range, of which `longTasks` lists at most `limit` */
  longTaskCount: number;
  /** the loop time the range's samples cover (busy + idle, ms, summed over processes): 0 when no process reported its loop */
  loopMs: number;
  /** with `group=culprit`: the range's long tasks grouped by function and location, most time first */
  groups?: LongTaskGroup[];
}

/** The long tasks of one culprit, a function at a location, over a range (`GET /api/loop?group=culprit`, GUIDE §3.7). */
export interface LongTaskGroup {
  function: string;
  /** where it is (file:line:column), in the source a source map points to; null when unknown */
  location: string | null;
  /** where that is in the compiled file, when a source map moved it; else null */
  compiledLocation: string | null;
  count: number;
  /** the time its tasks held the loop, in all and the longest (ms) */
  totalMs: number;
  maxMs: number;
  /** the endpoints whose requests ran them, sorted (empty: all ran outside requests) */
  endpoints: string[];
  /** the requests they kept waiting, and how long those waited in all (ms) */
  blocked: { count: number; ms: number };
  /** when: the ms its tasks held the loop in each of 30 equal parts of the range, oldest first */
  timeline: number[];
}

/**
 * What held the loop while a trace waited (`GET /api/traces/:traceId/holders`): a long task, or the
 * cpu slices of another stored trace, with how much of the wait it overlapped (ms).
 */
export type LoopHolder =
  | ({ kind: 'long-task'; overlap: number } & Omit<LongTaskRow, 'stack' | 'blocked' | 'compiledLocation'>)
  | { kind: 'trace'; overlap: number; traceId: string; endpoint: string; instance: string | null };

export interface TraceHolders {
  traceId: string;
  /** the process that sent the trace; null for a trace stored before the collector kept it (then every process of the service is searched) */
  instance: string | null;
  /** the trace's waits in its order, [start, end] in ms from its start as in the record, each with what held the loop then, largest overlap first */
  waits: Array<{ start: number; end: number; holders: LoopHolder[] }>;
}

// ---- GET /api/traces/:traceId: one trace from many services (GUIDE §3.5) ----

/** One step of the critical path across services (GUIDE §3.5); times in ms since the epoch. */
export interface PathStep {
  service: string;
  /** the span of the transaction (kind `transaction`) or of the segment */
  spanId: string | null;
  name: string;
  /** a segment kind, or `transaction` for the service's own time (its cpu and its waits for the loop) */
  kind: string;
  start: number;
  end: number;
}

/** One transaction of a trace, from the service that ran it, as the trace answer lists it. */
export interface TracePartSummary {
  service: string;
  instance: string | null;
  endpoint: string;
  spanId: string | null;
  parentSpanId: string | null;
  /** the part names a parent span that no part of the trace has */
  orphan: boolean;
  start: number;
  /** its HTTP status (0: not HTTP), whether it failed, and why */
  status: number;
  error: boolean;
  errorMessage?: string;
  response: number;
  duration: number;
  cpu: number | null;
  external: number | null;
  blocking: number | null;
  segments: TraceRecord['segments'];
  criticalPath: number[];
}

/** The most parts the collector keeps of one trace id; later ones are counted, not kept (a client can send any trace id). */
export const MAX_TRACE_PARTS = 100;

/**
 * Where an endpoint's time goes over many requests (`GET /api/critical-path`), from the stored
 * traces of its requests in the range: those drawn at random when there are enough of them (an
 * unbiased sample), else all of them (the slowest of each interval and the errors weigh more).
 */
export interface CriticalPathSummary {
  /** the traces summarized */
  requests: number;
  /** `random`: only the traces drawn at random; `all`: every stored trace (fewer random ones than it takes) */
  basis: 'random' | 'all';
  /** their mean duration (ms) */
  duration: number;
  /** the shares (0..1) of their time that were the service's own cpu and its blocking; null when no sender knew them */
  own: { cpu: number | null; blocking: number | null };
  /** per segment name and kind, the largest share first */
  steps: CriticalPathStep[];
}

/**
 * GET /api/context-loss: a call site where a service's requests lost their context (code running
 * outside a request ended its response), over the range: the package that called that code from
 * outside (`app`: the app's own), the site (`file:line:column`) and function there, the requests it
 * happened to, and how long the lost code had run outside them (ms, summed).
 */
export interface ContextLossSite {
  module: string;
  site: string;
  function: string;
  count: number;
  lostMs: number;
}

export interface CriticalPathStep {
  name: string;
  kind: SegmentKind;
  /** its time on the critical path over the requests' time (0..1): the path through it, less its own calls' part of the path */
  share: number;
  /** mean and p95 of its time on the path (ms), over the requests in which it was on the path */
  mean: number;
  p95: number;
  /** of the requests that ran it, the share (0..1) in which it was on the path */
  onPath: number;
}

/** A trace as `GET /api/traces/:traceId` answers it: the root part's record, every part, and the path across them. */
export interface TraceAnswer extends TraceRecord {
  parts: TracePartSummary[];
  path: PathStep[];
  /** the trace id holds MAX_TRACE_PARTS parts: any later part with it was counted (the service's `dropped.parts`), not kept */
  atPartLimit: boolean;
}

// ---- GET /api/servicemap (GUIDE §3.5) ----

/** A service that reported, or something its calls went to that no agent reports (a database, a cache, a queue, a host). */
export interface ServiceMapNode {
  /** `service:<name>`, or `<kind>:<target>` for what the services call */
  id: string;
  kind: 'service' | 'external';
  name: string;
}

/** Calls from a service to a node over the range: how many, how many failed, and their p95 (ms, as the caller saw them). */
export interface ServiceMapEdge {
  from: string;
  to: string;
  /** the segment kind of the calls: http, db, cache, queue */
  kind: string;
  count: number;
  errors: number;
  p95: number;
}

export interface ServiceMap {
  nodes: ServiceMapNode[];
  edges: ServiceMapEdge[];
}

/**
 * `GET /api/servicemap/calls?node=N[&caller=S]`: the stored traces in which a service called the node
 * (an edge of the map, or every caller of a node), longest call first.
 */
export interface ServiceMapCalls {
  node: string;
  /** the calling service asked for; null: every service that calls the node */
  caller: string | null;
  /** the callers whose stored traces were looked at, and how many of their traces (the slowest of the range, up to a bound) */
  callers: string[];
  checked: number;
  /** a service node: its endpoints these calls reached, and in how many of the traces found (all of them, not only the listed), most first */
  endpoints: Array<{ service: string; endpoint: string; traces: number }>;
  traces: ServiceMapCallTrace[];
}

/** One part of a trace that called the node: the caller's transaction, its calls to the node, and the longest of them. */
export interface ServiceMapCallTrace {
  traceId: string;
  /** the calling part */
  service: string;
  endpoint: string;
  start: number;
  status: number;
  response: number;
  /** its calls to the node, how many failed, and the longest (name as the caller's segment has it, ms as the caller saw it) */
  calls: number;
  errors: number;
  longest: { name: string; ms: number };
  /** a service node: the callee's endpoints under these calls (empty where its part did not arrive) */
  callee: string[];
}

/** The metrics an alert rule may watch (docs/alerts.md). */
export type AlertMetric = 'response' | 'duration' | 'cpu' | 'external' | 'blocking' | 'error_rate' | 'throughput' | 'loop_delay' | 'long_tasks';

/** An alert rule as `GET /api/rules` lists it, with the state of its alert. */
export interface AlertRule {
  name: string;
  service: string;
  endpoint: string | null;
  metric: AlertMetric;
  /** for the metrics that are distributions (1: the max); null for the others */
  quantile: number | null;
  direction: 'above' | 'below';
  /** ms for times, 0..1 for error_rate, per second for throughput, per minute for long_tasks */
  threshold: number;
  forMs: number;
  windowMs: number;
  /** its alert's state now; `ok` when none is pending or firing */
  state: 'ok' | 'pending' | 'firing';
}

/** An alert as `GET /api/alerts` lists it (GUIDE §3.6), and as a webhook receives it. */
export interface Alert {
  name: string;
  state: 'pending' | 'firing' | 'resolved';
  service: string;
  endpoint: string | null;
  metric: AlertMetric;
  quantile: number | null;
  /** the latest value (the threshold's unit); null: no data in the window */
  value: number | null;
  threshold: number;
  direction: 'above' | 'below';
  /** when it entered its state: pending since, firing since, resolved at (ms since the epoch) */
  since: number;
  /** when it started firing; null while pending */
  firedAt: number | null;
  /** when it resolved; null until then */
  resolvedAt: number | null;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
