/**
 * A service: its alerts, headline numbers, live charts of the chosen percentile, where the time went per
 * endpoint, the sortable endpoint table and the service's slowest traces.
 */
import * as api from '../api.js';
import { breakdown, meanParts } from '../charts/breakdown.js';
import { alertsPanel } from '../components/alerts.js';
import { lossNotices } from '../components/context-loss.js';
import { controls } from '../components/controls.js';
import { endpointTable, formatSort, parseSort } from '../components/endpoint-table.js';
import { momentTraces } from '../components/moment.js';
import { scopeCharts } from '../components/scope-charts.js';
import { slowByChoice, traceList } from '../components/trace-list.js';
import { empty } from '../components/states.js';
import { h, replace } from '../dom.js';
import * as fmt from '../format.js';
import { href, PERCENTILES, reportedSeconds, reportedWindow, routeTo, windowOf } from '../route.js';
import { card, crumbs, heading, section, serviceTabs, type PageFactory } from './page.js';

const SLOWEST = 10;

export const servicePage: PageFactory = ({ route, navigate }) => {
  const service = route.service ?? '';
  const q = PERCENTILES[route.percentile];
  const charts = scopeCharts(service, undefined, (from, to) => navigate({ ...route, moment: { from, to } }));
  const picked = h('div', {});
  const stats = h('div', { class: 'stats' });
  const cost = h('p', { class: 'muted agent-cost' });
  const alerts = h('div', {});
  const losses = h('div', {});
  const times = h('div', {});
  const table = h('div', {});
  const slowest = h('div', {});
  const element = h(
    'div',
    { class: 'page' },
    crumbs(route, [service, undefined]),
    heading(service, controls(route, navigate, { percentile: true })),
    serviceTabs(route, service),
    alerts,
    losses,
    stats,
    cost,
    charts.element,
    picked,
    section('Where the time went — mean per request', times),
    section('Endpoints', table),
    slowest,
  );
  const endpointLink = (endpoint: string): string => href(routeTo(route, { page: 'endpoint', service, endpoint }));

  return {
    element,
    live: route.to === undefined,
    async refresh() {
      const w = windowOf(route);
      const slowBy = route.slowBy ?? 'response';
      const byChoice = slowByChoice(slowBy, (b) => href({ ...route, slowBy: b === 'duration' ? 'duration' : undefined }));
      const seen = await api.serviceOf(service, w);
      const [rows, response, traces] = await Promise.all([
        api.endpoints(service, w),
        api.overWindow(service, 'response', q, w),
        api.traces({ service, sort: 'slowest', by: slowBy, limit: SLOWEST, ...w }),
        // (over the time it reported: a young service fills them)
        charts.refresh(reportedWindow(w, seen), q, route.percentile),
        momentTraces(route, navigate, service).then((list) => replace(picked, list)),
        api.contextLoss(service, w).then((sites) => replace(losses, ...lossNotices(sites))),
        api.alerts().then((list) => replace(alerts, alertsPanel(list.filter((a) => a.service === service), (s) => href(routeTo(route, { page: 'service', service: s }))))),
      ]);
      replace(cost, agentCost(seen?.agent ?? null));
      replace(slowest, traceList('Slowest traces of the service', traces, (traceId) => href(routeTo(route, { page: 'trace', service, traceId })), true, byChoice));
      const seconds = reportedSeconds(w, seen);
      const requests = rows.reduce((n, r) => n + r.count, 0);
      const errors = rows.reduce((n, r) => n + r.errors, 0);
      replace(
        stats,
        card('Requests', fmt.count(requests)),
        card('Throughput', fmt.rate(requests / seconds)),
        card('Error rate', fmt.percent(requests === 0 ? null : errors / requests)),
        card(`${route.percentile} response`, fmt.ms(response)),
      );
      if (rows.length === 0) {
        const none = (): HTMLElement => empty('No requests in this window.', 'Pick a longer range, or send traffic to the service.');
        replace(times, none());
        replace(table, none());
        return;
      }
      replace(times, breakdown(rows.map((r) => ({ label: h('a', { href: endpointLink(r.endpoint), title: r.endpoint }, r.endpoint), parts: meanParts(r), response: r.response.mean }))));
      replace(
        table,
        endpointTable(rows, {
          seconds,
          sort: parseSort(route.sort),
          link: endpointLink,
          onSort: (sort) => navigate({ ...route, sort: formatSort(sort) }),
        }),
      );
    },
    destroy: () => charts.destroy(),
  };
};

/**
 * What the agent itself cost the service (GET /api/services' `agent`), in one line; nothing when no
 * agent said. Its code's time, as the profiler saw it (not the garbage it leaves: docs/metrics.md).
 */
function agentCost(agent: api.Service['agent']): string {
  if (agent === null) return '';
  const parts = [
    agent.usPerRequest === null ? undefined : `${fmt.micros(agent.usPerRequest)} per request`,
    agent.cpuShare === null ? undefined : `${fmt.percent(agent.cpuShare)} of this service's CPU`,
  ].filter((part) => part !== undefined);
  const cpu = parts.length === 0 ? "loopscope's own code: not measured (the profiler is off)" : `loopscope's own code: ${parts.join(', ')}`;
  return `${cpu}; its start took ${fmt.bytes(agent.rss)} of memory per process`;
}
