/**
 * The URL is the state: the page is the path, everything else (service, endpoint, range,
 * percentile, paused end, table sort, a culprit of long tasks) is in the query, so any view can be
 * shared by its address.
 * The collector answers every page path with index.html (history routing).
 */
import type { LoopHolder } from '@loopscope/protocol';

export type Page = 'overview' | 'service' | 'endpoint' | 'trace' | 'loop' | 'map' | 'calls';

export const RANGES = { '5m': 5 * 60_000, '1h': 3_600_000, '24h': 86_400_000, '7d': 7 * 86_400_000 } as const;
export type RangeName = keyof typeof RANGES;

export const PERCENTILES = { p50: 0.5, p95: 0.95, p99: 0.99, max: 1 } as const;
export type PercentileName = keyof typeof PERCENTILES;

export interface Route {
  page: Page;
  service?: string | undefined;
  endpoint?: string | undefined;
  traceId?: string | undefined;
  /** a node of the service map (`service:orders`, `db:127.0.0.1:5432/shop`): the calls page lists the calls to it (of `service` alone when set) */
  node?: string | undefined;
  range: RangeName;
  percentile: PercentileName;
  /** the end of a paused view (ms since the epoch); undefined = live */
  to?: number | undefined;
  /** endpoint table sort: a column key, `-` in front for ascending */
  sort?: string | undefined;
  /** what the slowest traces are the slowest by: response (what the user waited, the default) or duration */
  slowBy?: 'duration' | undefined;
  /** a moment picked on a chart, [from, to) in ms since the epoch: its traces are listed */
  moment?: { from: number; to: number } | undefined;
  /** the event-loop page: the long tasks of one function at one location (null: without one) */
  culprit?: { function: string; location: string | null } | undefined;
}

const PATHS: Record<Page, string> = { overview: '/', service: '/service', endpoint: '/endpoint', trace: '/trace', loop: '/loop', map: '/map', calls: '/calls' };
const DEFAULTS = { range: '5m', percentile: 'p95' } as const;

const isKey = <T extends object>(o: T, k: string | null): k is Extract<keyof T, string> => k !== null && Object.hasOwn(o, k);

/** A page whose subject is missing from the address shows the page above it instead. */
function complete(page: Page, q: URLSearchParams): Page {
  if (page === 'endpoint' && !q.get('endpoint')) return complete('service', q);
  if ((page === 'service' || page === 'loop') && !q.get('service')) return 'overview';
  if (page === 'trace' && !q.get('id')) return 'overview';
  if (page === 'calls' && !q.get('node')) return 'map';
  return page;
}

export function parseRoute(url: URL): Route {
  const q = url.searchParams;
  const page = (Object.keys(PATHS) as Page[]).find((p) => PATHS[p] === url.pathname.replace(/\/+$/, '') || (p === 'overview' && url.pathname === '/')) ?? 'overview';
  const range = q.get('range');
  const percentile = q.get('p');
  const to = Number(q.get('to'));
  const moment = /^(\d+)-(\d+)$/.exec(q.get('at') ?? '');
  const fn = q.get('fn');
  return {
    page: complete(page, q),
    service: q.get('service') ?? undefined,
    endpoint: q.get('endpoint') ?? undefined,
    traceId: q.get('id') ?? undefined,
    node: q.get('node') ?? undefined,
    range: isKey(RANGES, range) ? range : DEFAULTS.range,
    percentile: isKey(PERCENTILES, percentile) ? percentile : DEFAULTS.percentile,
    to: q.has('to') && Number.isFinite(to) && to > 0 ? to : undefined,
    sort: q.get('sort') ?? undefined,
    slowBy: q.get('slow') === 'duration' ? 'duration' : undefined,
    moment: moment && Number(moment[2]) > Number(moment[1]) ? { from: Number(moment[1]), to: Number(moment[2]) } : undefined,
    culprit: fn !== null ? { function: fn, location: q.get('loc') || null } : undefined,
  };
}

/** The address of a route; defaults are left out so URLs stay short. */
export function href(route: Route): string {
  const q = new URLSearchParams();
  if (route.service !== undefined) q.set('service', route.service);
  if (route.endpoint !== undefined) q.set('endpoint', route.endpoint);
  if (route.traceId !== undefined) q.set('id', route.traceId);
  if (route.node !== undefined) q.set('node', route.node);
  if (route.range !== DEFAULTS.range) q.set('range', route.range);
  if (route.percentile !== DEFAULTS.percentile) q.set('p', route.percentile);
  if (route.to !== undefined) q.set('to', String(route.to));
  if (route.sort !== undefined) q.set('sort', route.sort);
  if (route.slowBy !== undefined) q.set('slow', route.slowBy);
  if (route.moment !== undefined) q.set('at', `${route.moment.from}-${route.moment.to}`);
  if (route.culprit !== undefined) {
    q.set('fn', route.culprit.function);
    if (route.culprit.location !== null) q.set('loc', route.culprit.location);
  }
  const query = q.toString();
  return `${PATHS[route.page]}${query ? `?${query}` : ''}`;
}

/** A route to another page that keeps the view settings (range, percentile, paused end). */
export function routeTo(from: Route, change: Partial<Route> & { page: Page }): Route {
  return { range: from.range, percentile: from.percentile, to: from.to, ...change };
}

/**
 * The window a route looks at now. A live view ends at the last whole second before the current
 * one: the current second's data is still on its way from the agents (they flush every second).
 */
export function windowOf(route: Route, now = Date.now()): { from: number; to: number } {
  const end = route.to ?? Math.floor(now / 1000) * 1000 - 1000;
  return { from: end - RANGES[route.range], to: end };
}

/**
 * The seconds of a window in which a service reported: from its first report, when that is later
 * than the window's start, to its last, when that is earlier than the window's end. Its rates are
 * taken over these (a service started 40 s ago has not been idle for the rest of a 5-minute window).
 */
export function reportedSeconds(w: { from: number; to: number }, service: { firstSeen: number; lastSeen: number } | undefined): number {
  const from = Math.max(w.from, service?.firstSeen ?? w.from);
  const to = Math.min(w.to, service?.lastSeen ?? w.to);
  return Math.max(1, (to - from) / 1000);
}

/**
 * The part of a window to chart for a service: from its first report, when that is later than the
 * window's start (on a whole second), to the window's end. A service started 40 s ago fills its
 * charts rather than sitting at the right edge of a 5-minute axis.
 */
export function reportedWindow(w: { from: number; to: number }, service: { firstSeen: number } | undefined): { from: number; to: number } {
  const from = Math.max(w.from, Math.floor((service?.firstSeen ?? w.from) / 1000) * 1000);
  return { from: Math.min(from, w.to - 1000), to: w.to };
}

/**
 * Where a holder of the loop (`/api/traces/:id/holders`) links: a long task to the event-loop page,
 * paused a second after the task ended, with the task picked out (`at` spans it); another request
 * to its trace.
 */
export function holderRoute(from: Route, service: string, holder: LoopHolder): Route {
  if (holder.kind === 'trace') return routeTo(from, { page: 'trace', service, traceId: holder.traceId });
  const start = Math.floor(holder.at);
  const end = Math.max(start + 1, Math.ceil(holder.at + holder.ms));
  return routeTo(from, { page: 'loop', service, range: '5m', to: Math.ceil(end / 1000) * 1000 + 1000, moment: { from: start, to: end } });
}
