/**
 * Reads the query string of the query API (docs/collector.md) into typed queries, or an HttpError (400)
 * that says which parameter is wrong and what would be right.
 */
import { isLoopSeries } from '@loopscope/protocol';
import { DEFAULT_HOLDERS, MAX_HOLDERS } from './holders.js';
import { HttpError } from './http-error.js';
import { SERIES_METRICS, type LoopQuery, type Range, type SeriesMetric, type TimeseriesQuery, type TracesQuery } from './storage/storage.js';

export type QueryString = Record<string, string | string[] | undefined>;

export const DEFAULT_RANGE_MS = 15 * 60_000;
export const MIN_STEP_MS = 1000;
/** A default step aims at about this many points... */
const TARGET_POINTS = 300;
/** ...and an explicit one may ask for at most this many. */
export const MAX_POINTS = 1500;
export const MAX_TRACE_LIMIT = 1000;

/** Default steps are round numbers, and from one minute on whole minutes (see resolution.ts). */
const NICE_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400].map((s) => s * 1000);

function single(q: QueryString, name: string): string | undefined {
  const v = q[name];
  if (Array.isArray(v)) throw new HttpError(400, `${name} is given more than once`);
  return v;
}

function integer(q: QueryString, name: string, what: string): number | undefined {
  const raw = single(q, name);
  if (raw === undefined) return undefined;
  if (!/^\d{1,16}$/.test(raw)) throw new HttpError(400, `${name} must be ${what}, got "${raw}"`);
  return Number(raw);
}

export function requireService(q: QueryString): string {
  const service = single(q, 'service');
  if (!service) throw new HttpError(400, 'service is required, e.g. ?service=my-app (GET /api/services lists them)');
  return service;
}

export function requireEndpoint(q: QueryString): string {
  const endpoint = single(q, 'endpoint');
  if (!endpoint) throw new HttpError(400, 'endpoint is required, e.g. ?endpoint=GET%20/users/:id (GET /api/endpoints?service=S lists them)');
  return endpoint;
}

export function endpointParam(q: QueryString): string | undefined {
  const endpoint = single(q, 'endpoint');
  if (endpoint === '') throw new HttpError(400, 'endpoint is empty; leave it out for the whole service');
  return endpoint;
}

/** `from` and `to` in ms since the epoch; by default the 15 minutes before now. */
export function parseRange(q: QueryString, now: number): Range {
  const epoch = 'a timestamp in ms since the epoch';
  const to = integer(q, 'to', epoch) ?? now;
  const from = integer(q, 'from', epoch) ?? to - DEFAULT_RANGE_MS;
  if (to <= from) throw new HttpError(400, `to (${to}) must be after from (${from})`);
  return { from, to };
}

export function defaultStep(range: Range): number {
  const wanted = (range.to - range.from) / TARGET_POINTS;
  return NICE_STEPS.find((s) => s >= wanted) ?? Math.ceil(wanted / 86_400_000) * 86_400_000;
}

export function parseTimeseries(q: QueryString, now: number): TimeseriesQuery {
  const service = requireService(q);
  const endpoint = endpointParam(q);
  const metric = single(q, 'metric');
  if (!metric) throw new HttpError(400, `metric is required: one of ${SERIES_METRICS.join(', ')}`);
  if (!(SERIES_METRICS as readonly string[]).includes(metric)) throw new HttpError(400, `unknown metric "${metric}": use one of ${SERIES_METRICS.join(', ')}`);
  if (endpoint !== undefined && isLoopSeries(metric)) throw new HttpError(400, `${metric} is the event loop's, a service's: leave out endpoint`);
  const rawQ = single(q, 'q');
  const quantile = rawQ === undefined ? 0.95 : Number(rawQ);
  if (rawQ === '' || !(quantile > 0 && quantile <= 1)) throw new HttpError(400, `q must be a quantile in (0, 1] such as 0.95 (1 is the max), got "${rawQ}"`);
  const range = parseRange(q, now);
  const step = integer(q, 'step', 'a whole number of ms') ?? defaultStep(range);
  if (step < MIN_STEP_MS) throw new HttpError(400, `step must be at least ${MIN_STEP_MS} ms, got ${step}`);
  const points = Math.ceil((range.to - range.from) / step) + 1;
  if (points > MAX_POINTS) {
    const smallest = Math.ceil((range.to - range.from) / (MAX_POINTS - 1) / 1000) * 1000;
    throw new HttpError(400, `step ${step} ms gives ${points} points, more than ${MAX_POINTS}; ask for a step of at least ${smallest} ms or a shorter range`);
  }
  return { service, endpoint, metric: metric as SeriesMetric, q: quantile, step, ...range };
}

export function parseTraces(q: QueryString, now: number): TracesQuery {
  const service = requireService(q);
  const endpoint = endpointParam(q);
  const sort = single(q, 'sort') ?? 'slowest';
  if (sort !== 'slowest' && sort !== 'recent') throw new HttpError(400, `sort must be slowest or recent, got "${sort}"`);
  const by = single(q, 'by') ?? 'duration';
  if (by !== 'duration' && by !== 'response') throw new HttpError(400, `by must be duration or response (what "slowest" is measured by), got "${by.slice(0, 80)}"`);
  const limit = integer(q, 'limit', `a whole number from 1 to ${MAX_TRACE_LIMIT}`) ?? 20;
  if (limit < 1 || limit > MAX_TRACE_LIMIT) throw new HttpError(400, `limit must be from 1 to ${MAX_TRACE_LIMIT}, got ${limit}`);
  return { service, endpoint, sort, by, limit, ...parseRange(q, now) };
}

/** `GET /api/servicemap/calls`: the node, the calling service (optional), how many traces to list. */
export function parseMapCalls(q: QueryString, now: number): Range & { node: string; caller: string | undefined; limit: number } {
  const node = single(q, 'node');
  if (!node || !/^[a-z]+:./.test(node)) throw new HttpError(400, `node is required, a node id of GET /api/servicemap (service:orders, db:127.0.0.1:5432/shop), got "${(node ?? '').slice(0, 80)}"`);
  const caller = single(q, 'caller');
  if (caller === '') throw new HttpError(400, 'caller is empty; leave it out for every service that calls the node');
  const limit = integer(q, 'limit', 'a whole number from 1 to 100') ?? 20;
  if (limit < 1 || limit > 100) throw new HttpError(400, `limit must be from 1 to 100, got ${limit}`);
  return { node, caller, limit, ...parseRange(q, now) };
}

export const MAX_LONG_TASK_LIMIT = 1000;

export function parseLoop(q: QueryString, now: number): LoopQuery {
  const service = requireService(q);
  const sort = single(q, 'sort') ?? 'recent';
  if (sort !== 'recent' && sort !== 'worst') throw new HttpError(400, `sort must be recent or worst, got "${sort}"`);
  const limit = integer(q, 'limit', `a whole number from 1 to ${MAX_LONG_TASK_LIMIT}`) ?? 50;
  if (limit < 1 || limit > MAX_LONG_TASK_LIMIT) throw new HttpError(400, `limit must be from 1 to ${MAX_LONG_TASK_LIMIT}, got ${limit}`);
  const group = single(q, 'group');
  if (group !== undefined && group !== 'culprit') throw new HttpError(400, `group must be culprit, got "${group.slice(0, 80)}"`);
  // one culprit's tasks: its function, its location (empty: tasks without one)
  const fn = single(q, 'function');
  const location = single(q, 'location');
  return {
    service,
    sort,
    limit,
    ...(group !== undefined ? { group } : {}),
    ...(fn !== undefined ? { function: fn } : {}),
    ...(location !== undefined ? { location: location === '' ? null : location } : {}),
    ...parseRange(q, now),
  };
}

/** A trace id as agents make them (the wire's rule): 16 to 64 lowercase hex digits. */
const TRACE_ID = /^[0-9a-f]{16,64}$/;

/** `GET /api/traces/:traceId/holders`: the trace id, and how many holders per wait (`limit`). */
export function parseHolders(traceId: string, q: QueryString): { traceId: string; limit: number } {
  if (!TRACE_ID.test(traceId)) throw new HttpError(400, `traceId must be 16 to 64 lowercase hex digits, got "${traceId.slice(0, 80)}"`);
  const limit = integer(q, 'limit', `a whole number from 1 to ${MAX_HOLDERS}`) ?? DEFAULT_HOLDERS;
  if (limit < 1 || limit > MAX_HOLDERS) throw new HttpError(400, `limit must be from 1 to ${MAX_HOLDERS}, got ${limit}`);
  return { traceId, limit };
}
