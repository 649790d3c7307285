/**
 * The traces of a moment picked on a chart (a click on a spike): the slowest ones of that service or
 * endpoint in the point's time span, with a way back to the page without them.
 */
import * as api from '../api.js';
import { h } from '../dom.js';
import * as fmt from '../format.js';
import { href, routeTo, type Route } from '../route.js';
import type { Navigate } from './controls.js';
import { traceList } from './trace-list.js';

const LIMIT = 20;

export async function momentTraces(route: Route, navigate: Navigate, service: string, endpoint?: string): Promise<HTMLElement | null> {
  const moment = route.moment;
  if (moment === undefined) return null;
  const traces = await api.traces({ service, endpoint, sort: 'slowest', limit: LIMIT, ...moment });
  const time = (t: number): string => fmt.clock(t).slice(11, 19);
  const close = h('button', { type: 'button', class: 'close', title: 'back to the charts alone', onclick: () => navigate({ ...route, moment: undefined }) }, '×');
  return traceList(`Traces from ${time(moment.from)} to ${time(moment.to)}`, traces, (traceId) => href(routeTo(route, { page: 'trace', service, traceId })), endpoint === undefined, close);
}
