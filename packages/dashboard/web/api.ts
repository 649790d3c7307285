/**
 * The public query API of the collector (docs/collector.md), typed. The dashboard uses nothing else: what
 * it shows, a user's script can compute from the same answers.
 */

import type {
  Alert,
  AlertRule,
  EndpointSummary,
  EndpointView,
  LongTaskGroup,
  LongTaskRow,
  LoopHolder,
  LoopSummary,
  CriticalPathSummary,
  ContextLossSite,
  MetricName,
  Quantiles,
  SegmentKind,
  SegmentRecord,
  SeriesMetric,
  ServiceMap,
  ServiceMapCalls,
  ServiceSummary,
  TimeseriesResult,
  TraceAnswer,
  TraceHolders,
  TraceSummary,
} from '@loopscope/protocol';

// the answers' types are the protocol's (packages/protocol/src/api.ts), under the dashboard's names
export type { Alert, AlertRule, LongTaskGroup, LoopHolder, Quantiles, SeriesMetric, ServiceMap, ServiceMapCalls, TraceHolders, TraceSummary };
export type Metric = MetricName;
export type ExternalKind = SegmentKind;
export type Service = ServiceSummary;
export type EndpointRow = EndpointSummary;
export type Series = TimeseriesResult;
export type View = EndpointView;
export type Segment = SegmentRecord;
export type Trace = TraceAnswer;
export type LongTask = LongTaskRow;
export type Loop = LoopSummary;
export type CriticalPath = CriticalPathSummary;

/** The time window of a query, ms since the epoch, `to` exclusive. */
export interface Window {
  from: number;
  to: number;
}

/** The collector answered with an error (a 4xx/5xx and its `{ error }` message). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The collector could not be reached at all. */
export class Unreachable extends Error {}

/** The collector wants its read token (a 401): none was given, or the one given was refused. */
export class NeedsToken extends ApiError {}

const TOKEN_KEY = 'loopscope.readToken';

/**
 * The read token the user gave (a collector started with `--read-token`): kept in this tab's session
 * storage, so that it is gone with the tab and never in a URL, a link or the history.
 */
export const readToken = {
  get: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  set: (token: string): void => sessionStorage.setItem(TOKEN_KEY, token),
  clear: (): void => sessionStorage.removeItem(TOKEN_KEY),
};

/** GET `path` with `params` (undefined ones left out) as the query; the answer's JSON, or a typed error. */
async function get<T>(path: string, params: object): Promise<T> {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params) as Array<[string, unknown]>) if (v !== undefined) query.set(k, String(v));
  let res: Response;
  const token = readToken.get();
  try {
    res = await fetch(`${path}?${query}`, { headers: { accept: 'application/json', ...(token === null ? {} : { authorization: `Bearer ${token}` }) } });
  } catch {
    throw new Unreachable(`cannot reach the collector at ${location.origin}`);
  }
  const body: unknown = await res.json().catch(() => undefined);
  if (!res.ok) {
    const message = typeof body === 'object' && body !== null && 'error' in body ? String(body.error) : `HTTP ${res.status}`;
    throw new (res.status === 401 ? NeedsToken : ApiError)(res.status, `${path}: ${message}`);
  }
  return body as T;
}

export const services = (w: Window): Promise<Service[]> => get('/api/services', { ...w });

/** One service's row of `/api/services` over the window (undefined: it did not report in it). */
export const serviceOf = async (service: string, w: Window): Promise<Service | undefined> => (await services(w)).find((s) => s.service === service);

export const endpoints = (service: string, w: Window): Promise<EndpointRow[]> => get('/api/endpoints', { service, ...w });

/** The endpoint in every service that reported it: its agent's view, a proxy's, a probe's. */
export const views = (endpoint: string, w: Window): Promise<View[]> => get('/api/views', { endpoint, ...w });

export const timeseries = (p: { service: string; endpoint?: string | undefined; metric: SeriesMetric; q?: number; step?: number } & Window): Promise<Series> =>
  get('/api/timeseries', p);

export const traces = (p: { service: string; endpoint?: string | undefined; sort: 'slowest' | 'recent'; by?: 'response' | 'duration'; limit: number } & Window): Promise<TraceSummary[]> =>
  get('/api/traces', p);

/** Where an endpoint's time goes over its traces in the window: its critical path summed per step. */
export const criticalPath = (service: string, endpoint: string, w: Window): Promise<CriticalPath> => get('/api/critical-path', { service, endpoint, ...w });

/** Where the service's requests lost their context in the window, per call site (the most time lost first). */
export const contextLoss = (service: string, w: Window): Promise<ContextLossSite[]> => get('/api/context-loss', { service, ...w });

export const serviceMap = (w: Window): Promise<ServiceMap> => get('/api/servicemap', w);

/** The stored traces in which `caller` (or every service that does) called the map's node `node`. */
export const mapCalls = (p: { node: string; caller?: string | undefined } & Window): Promise<ServiceMapCalls> => get('/api/servicemap/calls', p);

export const trace = (traceId: string): Promise<Trace> => get(`/api/traces/${encodeURIComponent(traceId)}`, {});

/** What held the loop during each wait of a trace: long tasks and other traces of its process. */
export const holders = (traceId: string): Promise<TraceHolders> => get(`/api/traces/${encodeURIComponent(traceId)}/holders`, {});

/** A culprit of long tasks: a function at a location (null: none known). */
export interface Culprit {
  function: string;
  location: string | null;
}

/**
 * A service's event loop over the window, its long tasks grouped by culprit too; with `culprit`,
 * only that culprit's long tasks (an empty `location` asks for those without one).
 */
export const loop = (service: string, w: Window, sort: 'recent' | 'worst', culprit?: Culprit): Promise<Loop> =>
  get('/api/loop', { service, sort, group: 'culprit', ...(culprit ? { function: culprit.function, location: culprit.location ?? '' } : {}), ...w });

/** Pending and firing alerts, then the recently resolved (empty without `--rules`). */
export const alerts = (): Promise<Alert[]> => get('/api/alerts', {});

/** The alert rules, with the state of each one's alert. */
export const rules = (): Promise<AlertRule[]> => get('/api/rules', {});

/**
 * One quantile over a whole window (say, a service's p95 response over the last hour), which the
 * API has no endpoint for: quantiles of endpoints cannot be merged here, only the collector's
 * sketches can. Asked as a time series whose single point spans the window: points start at
 * floor(from / step) * step, so a step of `to` puts every bucket of [from, to) into point 0. The
 * step is kept off whole minutes so that per-second buckets (exact edges) answer while they are
 * kept, rather than per-minute ones.
 */
export async function overWindow(service: string, metric: Metric, q: number, w: Window, endpoint?: string): Promise<number | null> {
  let to = Math.ceil(w.to / 1000) * 1000;
  if (to % 60_000 === 0) to -= 1000;
  const series = await timeseries({ service, endpoint, metric, q, step: to, from: w.from, to });
  return series.points[0]?.[1] ?? null;
}
