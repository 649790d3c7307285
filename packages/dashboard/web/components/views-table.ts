/**
 * One endpoint side by side in every service that reported it — the app's agent (inside the
 * process), a proxy in front of it, a probe — over the same window. The difference between the
 * proxy's response and the agent's is what happens before the app: the network and the queue.
 */
import type { View } from '../api.js';
import { h } from '../dom.js';
import * as fmt from '../format.js';

const COLUMNS = ['Service', 'Seen by', 'Requests', 'Error rate', 'p50 response', 'p95 response', 'p99 response', 'p50 vs this view', 'p95 cpu', 'p95 external', 'p95 blocking'];

const signed = (v: number): string => (v > 0 ? `+${fmt.ms(v)}` : v < 0 ? `−${fmt.ms(-v)}` : fmt.ms(0));

/** `current`: the service whose page this is; `link(service)`: the same endpoint's page in that service. */
export function viewsTable(views: View[], current: string, link: (service: string) => string): HTMLElement {
  const mine = views.find((v) => v.service === current);
  if (views.length < 2) {
    return h(
      'p',
      { class: 'muted', 'data-views': 'alone' },
      'No other service reports this endpoint in this window. Put ',
      h('code', {}, 'loopscope proxy'),
      ' in front of the app to compare what its clients see with what the agent sees inside.',
    );
  }
  const inside = (v: { p95: number } | null): HTMLElement =>
    v === null ? h('td', { class: 'num muted', title: fmt.UNKNOWN_WHY }, '—') : h('td', { class: 'num' }, fmt.ms(v.p95));
  const rows = views.map((v) =>
    h(
      'tr',
      { 'data-service': v.service, class: v.service === current ? 'current' : null },
      h('td', { class: 'name' }, v.service === current ? h('strong', {}, v.service) : h('a', { href: link(v.service) }, v.service)),
      h('td', { 'data-col': 'agents' }, fmt.sender(v.agents)),
      h('td', { class: 'num', 'data-col': 'count' }, fmt.count(v.count)),
      h('td', { class: v.errors > 0 ? 'num bad' : 'num', 'data-col': 'errors' }, fmt.percent(v.count === 0 ? 0 : v.errors / v.count)),
      h('td', { class: 'num', 'data-col': 'p50' }, fmt.ms(v.response.p50)),
      h('td', { class: 'num', 'data-col': 'p95' }, fmt.ms(v.response.p95)),
      h('td', { class: 'num', 'data-col': 'p99' }, fmt.ms(v.response.p99)),
      h('td', { class: 'num', 'data-col': 'delta' }, mine === undefined || v === mine ? '–' : signed(v.response.p50 - mine.response.p50)),
      inside(v.cpu),
      inside(v.external),
      inside(v.blocking),
    ),
  );
  return h(
    'table',
    { class: 'table views' },
    h('thead', {}, h('tr', {}, ...COLUMNS.map((c, i) => h('th', { class: i < 2 ? 'name' : 'num' }, c)))),
    h('tbody', {}, ...rows),
  );
}
