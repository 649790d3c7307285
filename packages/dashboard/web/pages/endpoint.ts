/** One endpoint: its numbers, the same live charts as its service, and its slowest and latest traces. */
import * as api from '../api.js';
import { breakdown, meanParts } from '../charts/breakdown.js';
import { controls } from '../components/controls.js';
import { momentTraces } from '../components/moment.js';
import { pathTable } from '../components/path-table.js';
import { scopeCharts } from '../components/scope-charts.js';
import { slowByChoice, traceList } from '../components/trace-list.js';
import { viewsTable } from '../components/views-table.js';
import { h, replace } from '../dom.js';
import * as fmt from '../format.js';
import { href, PERCENTILES, reportedSeconds, reportedWindow, routeTo, windowOf } from '../route.js';
import { card, crumbs, heading, section, type PageFactory } from './page.js';

const TRACES = 10;

export const endpointPage: PageFactory = ({ route, navigate }) => {
  const service = route.service ?? '';
  const endpoint = route.endpoint ?? '';
  const q = PERCENTILES[route.percentile];
  const charts = scopeCharts(service, endpoint, (from, to) => navigate({ ...route, moment: { from, to } }));
  const picked = h('div', {});
  const stats = h('div', { class: 'stats' });
  const times = h('div', {});
  const path = h('div', {});
  const views = h('div', {});
  const traces = h('div', { class: 'two-columns' });
  const element = h(
    'div',
    { class: 'page' },
    crumbs(route, [service, routeTo(route, { page: 'service', service })], [endpoint, undefined]),
    heading(endpoint, controls(route, navigate, { percentile: true })),
    stats,
    charts.element,
    picked,
    section('Where the time went — mean per request', times),
    section('The critical path — what the requests waited for, step by step', path),
    section('Side by side — this endpoint in every service that reports it', views),
    traces,
  );
  const traceLink = (traceId: string): string => href(routeTo(route, { page: 'trace', service, traceId }));

  return {
    element,
    live: route.to === undefined,
    async refresh() {
      const w = windowOf(route);
      const slowBy = route.slowBy ?? 'response';
      const byChoice = slowByChoice(slowBy, (b) => href({ ...route, slowBy: b === 'duration' ? 'duration' : undefined }));
      const reported = await api.serviceOf(service, w);
      const [rows, seen, slowest, recent, steps] = await Promise.all([
        api.endpoints(service, w),
        api.views(endpoint, w),
        api.traces({ service, endpoint, sort: 'slowest', by: slowBy, limit: TRACES, ...w }),
        api.traces({ service, endpoint, sort: 'recent', limit: TRACES, ...w }),
        api.criticalPath(service, endpoint, w),
        charts.refresh(reportedWindow(w, reported), q, route.percentile),
        momentTraces(route, navigate, service, endpoint).then((list) => replace(picked, list)),
      ]);
      const seconds = reportedSeconds(w, reported);
      const row = rows.find((r) => r.endpoint === endpoint);
      const count = row?.count ?? 0;
      replace(
        stats,
        card('Requests', fmt.count(count)),
        card('Throughput', fmt.rate(count / seconds)),
        card('Error rate', fmt.percent(row && count > 0 ? row.errors / count : null)),
        card('p50 response', fmt.ms(row?.response.p50)),
        card('p95 response', fmt.ms(row?.response.p95)),
        card('p99 response', fmt.ms(row?.response.p99)),
      );
      replace(times, row ? breakdown([{ label: endpoint, parts: meanParts(row), response: row.response.mean }]) : h('p', { class: 'muted' }, 'No requests in this window.'));
      replace(path, pathTable(steps));
      replace(views, viewsTable(seen, service, (other) => href(routeTo(route, { page: 'endpoint', service: other, endpoint }))));
      replace(traces, traceList('Slowest traces', slowest, traceLink, false, byChoice), traceList('Most recent traces', recent, traceLink, false));
    },
    destroy: () => charts.destroy(),
  };
};
