/**
 * `GET /metrics`: the Prometheus text exposition (version 0.0.4) of what the collector receives
 * (docs/alerts.md). Counters (`_total`, and each summary's `_sum` and `_count`) count since the
 * collector started, from the batches it stores; a collector that restarts starts them again, as
 * any exporter's (Prometheus's `rate()` takes resets in its stride). The quantiles of each summary
 * are those of the merged sketches of the last `window` (60 s by default), ending at the last
 * whole second: the query API's `/api/endpoints` over that range gives the same values. Series
 * are bounded: at most MAX_ENDPOINTS endpoints a service (the agents' own cap; the rest are
 * counted under OVERFLOW_ENDPOINT) and MAX_SERVICES services (the rest under OVERFLOW_SERVICE).
 */
import { MAX_ENDPOINTS, METRICS, OVERFLOW_ENDPOINT, type EndpointSummary, type MetricName, type Quantiles, type WireBatch, type WireSketch } from '@loopscope/protocol';
import type { Storage } from './storage/storage.js';
import type { Access } from './access.js';
import type { QuotaKeeper } from './quotas.js';

export const MAX_SERVICES = 1000;
export const OVERFLOW_SERVICE = 'OTHER (service limit reached)';
export const DEFAULT_METRICS_WINDOW_MS = 60_000;

/** A summary's cumulative `_sum` (ms) and `_count`. */
interface SumCount {
  sum: number;
  count: number;
}

interface EndpointCounters {
  requests: number;
  errors: number;
  aborted: number;
  metrics: Record<MetricName, SumCount>;
}

interface ServiceCounters {
  endpoints: Map<string, EndpointCounters>;
  delay: SumCount;
  gcMs: number;
  longTasks: number;
  /** records left out of its batches for not being valid, per kind */
  rejected: Record<RejectedKind, number>;
}

const REJECTED_KINDS = ['traces', 'longTasks', 'contextLoss'] as const;
type RejectedKind = (typeof REJECTED_KINDS)[number];

const QUANTILES: ReadonlyArray<[label: string, key: 'p50' | 'p95' | 'p99']> = [
  ['0.5', 'p50'],
  ['0.95', 'p95'],
  ['0.99', 'p99'],
];

/** What each metric of a request is, for HELP. */
const HELP: Record<MetricName, string> = {
  response: 'how long the user waited for the response',
  duration: 'how long the work of the request lasted (response and any work after it)',
  cpu: "the request's own code on the event loop (unknown for services seen from outside: no series)",
  external: 'time waiting on databases and other services (the union of its calls)',
  blocking: 'time the request was ready but queued behind other work on the event loop',
};

const addSketch = (into: SumCount, sketch: WireSketch | null): void => {
  if (sketch === null) return;
  into.sum += sketch.sum;
  into.count += sketch.n;
};

/** Counts since start, per service and endpoint, fed by every batch stored. */
export class PrometheusCounters {
  private readonly services = new Map<string, ServiceCounters>();

  private service(name: string): ServiceCounters {
    let s = this.services.get(name);
    if (s === undefined) {
      if (this.services.size >= MAX_SERVICES) return this.service(OVERFLOW_SERVICE);
      this.services.set(name, (s = { endpoints: new Map(), delay: { sum: 0, count: 0 }, gcMs: 0, longTasks: 0, rejected: { traces: 0, longTasks: 0, contextLoss: 0 } }));
    }
    return s;
  }

  observe(batch: WireBatch): void {
    const service = this.service(batch.service);
    for (const interval of batch.intervals) {
      let name = interval.endpoint;
      if (!service.endpoints.has(name) && service.endpoints.size >= MAX_ENDPOINTS) name = OVERFLOW_ENDPOINT;
      let e = service.endpoints.get(name);
      if (e === undefined) {
        const metrics = Object.fromEntries(METRICS.map((m) => [m, { sum: 0, count: 0 }])) as Record<MetricName, SumCount>;
        service.endpoints.set(name, (e = { requests: 0, errors: 0, aborted: 0, metrics }));
      }
      e.requests += interval.count;
      e.errors += interval.errors;
      e.aborted += interval.aborted ?? 0;
      for (const m of METRICS) addSketch(e.metrics[m], interval[m]);
    }
    const loop = batch.loop;
    if (loop !== undefined) {
      addSketch(service.delay, loop.delay);
      for (const g of Object.values(loop.gc)) service.gcMs += g.ms;
      service.longTasks += loop.longTasks.length + (loop.droppedLongTasks ?? 0);
    }
  }

  /** Records of one of the service's batches left out (ingest.ts's `Rejected`). */
  reject(name: string, rejected: Record<RejectedKind, number>): void {
    const service = this.service(name);
    for (const kind of REJECTED_KINDS) service.rejected[kind] += rejected[kind];
  }

  get names(): string[] {
    return [...this.services.keys()];
  }

  of(service: string): ServiceCounters | undefined {
    return this.services.get(service);
  }
}

/** A label value as the exposition format wants it. */
const escape = (value: string): string => value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
/** `{k="v",...}`, or nothing for a sample without labels. */
const labels = (pairs: Record<string, string>): string => {
  const list = Object.entries(pairs).map(([k, v]) => `${k}="${escape(v)}"`);
  return list.length === 0 ? '' : `{${list.join(',')}}`;
};
/** A number as Prometheus reads it. */
const num = (n: number): string => (Number.isFinite(n) ? String(n) : n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN');
const seconds = (ms: number): number => ms / 1000;

/** One metric family: its HELP, TYPE and samples. */
class Family {
  readonly lines: string[] = [];
  constructor(
    readonly name: string,
    readonly type: 'counter' | 'gauge' | 'summary',
    readonly help: string,
  ) {}

  sample(suffix: string, pairs: Record<string, string>, value: number): void {
    this.lines.push(`${this.name}${suffix}${labels(pairs)} ${num(value)}`);
  }

  /** A summary's quantile lines (when the window has data) and its cumulative `_sum` and `_count`, in seconds. */
  summary(pairs: Record<string, string>, quantiles: Quantiles | null | undefined, total: SumCount): void {
    if (quantiles !== null && quantiles !== undefined) for (const [q, key] of QUANTILES) this.sample('', { ...pairs, quantile: q }, seconds(quantiles[key]));
    this.sample('_sum', pairs, seconds(total.sum));
    this.sample('_count', pairs, total.count);
  }

  render(): string {
    if (this.lines.length === 0) return '';
    return `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} ${this.type}\n${this.lines.join('\n')}\n`;
  }
}

/** The range the quantiles of a scrape at `now` cover: `windowMs` ending at the last whole second. */
export function metricsWindow(now: number, windowMs: number): { from: number; to: number } {
  const to = Math.floor(now / 1000) * 1000;
  return { from: to - windowMs, to };
}

/** The exposition of everything the collector has counted, and of the quantiles of the window. */
/** What the collector itself refused or left out: requests for their tokens (access.ts), records past the limits (quotas.ts). */
export interface Refusals {
  refused: Access['refused'];
  over: QuotaKeeper['over'];
}

export async function renderMetrics(counters: PrometheusCounters, storage: Storage, now: number, windowMs: number, refusals: Refusals = { refused: new Map(), over: new Map() }): Promise<string> {
  const range = metricsWindow(now, windowMs);
  const requests = new Family('loopscope_requests_total', 'counter', 'Requests (transactions) received since the collector started.');
  const errors = new Family('loopscope_errors_total', 'counter', 'Requests that failed (a 5xx answer, a thrown error, one recorded by hand).');
  const aborted = new Family('loopscope_aborted_total', 'counter', 'Requests whose client went away before the response was finished.');
  const perRequest = Object.fromEntries(
    METRICS.map((m) => [m, new Family(`loopscope_${m}_seconds`, 'summary', `Per request, ${HELP[m]}; quantiles over the last ${windowMs / 1000} s.`)]),
  ) as Record<MetricName, Family>;
  const delay = new Family('loopscope_loop_delay_seconds', 'summary', `Event-loop delay (how late a 10 ms timer ran); quantiles over the last ${windowMs / 1000} s.`);
  const utilization = new Family('loopscope_loop_utilization_ratio', 'gauge', `Share of the time the event loop was busy over the last ${windowMs / 1000} s, over the service's processes.`);
  const gc = new Family('loopscope_gc_seconds_total', 'counter', 'Garbage-collection pauses since the collector started.');
  const longTasks = new Family('loopscope_long_tasks_total', 'counter', 'Long tasks (event-loop blocks over the agent threshold) since the collector started.');
  const rejected = new Family('loopscope_rejected_records_total', 'counter', 'Records (traces, long tasks, context losses) left out of stored batches for not being valid; the rest of each batch was stored.');
  const refusedRequests = new Family('loopscope_refused_requests_total', 'counter', 'Requests refused for a missing or wrong token (401), or from an address that sent too many of them (429), per token.');
  for (const [key, n] of [...refusals.refused].sort()) {
    const [token, reason] = key.split(' ');
    refusedRequests.sample('', { token: token!, reason: reason! }, n);
  }
  const overLimit = new Family('loopscope_over_limit_total', 'counter', 'What senders sent past the collector\'s limits, per service and limit: endpoints and instances folded into one name, traces and long tasks left out, batches of services past the service limit refused.');
  for (const [service, counts] of [...refusals.over].sort(([a], [b]) => (a < b ? -1 : 1))) {
    for (const [limit, n] of Object.entries(counts)) overLimit.sample('', { service, limit }, n);
  }
  const window = new Family('loopscope_quantile_window_seconds', 'gauge', 'The window the quantiles of the summaries cover.');
  window.sample('', {}, windowMs / 1000);
  // the embedded storage's full disk (storage/disk-space.ts)
  const diskFull = new Family('loopscope_storage_disk_full', 'gauge', "1 while the disk of the collector's SQLite file is full (ingest answers 503 until space returns), else 0.");
  const fullRefused = new Family('loopscope_storage_full_refused_batches_total', 'counter', 'Batches refused with 503 because the disk was full since the collector started; their agents send them again.');
  if (storage.diskFull) {
    diskFull.sample('', {}, storage.diskFull.full ? 1 : 0);
    fullRefused.sample('', {}, storage.diskFull.refusedBatches);
  }

  for (const service of counters.names.sort()) {
    const c = counters.of(service)!;
    const [rows, loop] = await Promise.all([
      storage.endpoints(service, range),
      storage.loop({ service, from: range.from, to: range.to, sort: 'recent', limit: 0 }),
    ]);
    const byEndpoint = new Map<string, EndpointSummary>(rows.map((r) => [r.endpoint, r]));
    for (const [endpoint, e] of [...c.endpoints].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const pairs = { service, endpoint };
      requests.sample('', pairs, e.requests);
      errors.sample('', pairs, e.errors);
      aborted.sample('', pairs, e.aborted);
      const inWindow = byEndpoint.get(endpoint);
      for (const m of METRICS) {
        // cpu, external and blocking are unknown for a service seen from outside: no series at all
        if (e.metrics[m].count === 0 && (inWindow === undefined || inWindow[m] === null)) continue;
        perRequest[m].summary(pairs, inWindow?.[m], e.metrics[m]);
      }
    }
    if (c.delay.count > 0) {
      delay.summary({ service }, loop.loopMs > 0 ? loop.delay : null, c.delay);
      if (loop.loopMs > 0) utilization.sample('', { service }, loop.utilization);
      gc.sample('', { service }, seconds(c.gcMs));
      longTasks.sample('', { service }, c.longTasks);
    }
    for (const kind of REJECTED_KINDS) if (c.rejected[kind] > 0) rejected.sample('', { service, kind }, c.rejected[kind]);
  }
  return [requests, errors, aborted, ...METRICS.map((m) => perRequest[m]), delay, utilization, gc, longTasks, rejected, refusedRequests, overLimit, diskFull, fullRefused, window].map((f) => f.render()).join('');
}
