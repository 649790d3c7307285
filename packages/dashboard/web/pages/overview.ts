/** Services: the alerts of the collector's rules, then every service that reported in the window, with its load, errors and p95 response, and their trends. */
import * as api from '../api.js';
import { sparkline } from '../charts/sparkline.js';
import { COLORS } from '../colors.js';
import { alertsPanel } from '../components/alerts.js';
import { controls } from '../components/controls.js';
import { empty } from '../components/states.js';
import { h, replace } from '../dom.js';
import * as fmt from '../format.js';
import { href, reportedSeconds, routeTo, windowOf } from '../route.js';
import { heading, type PageFactory } from './page.js';

export const overviewPage: PageFactory = ({ route, navigate }) => {
  const body = h('div', {});
  const alerts = h('div', {});
  const element = h('div', { class: 'page' }, heading('Services', controls(route, navigate, { percentile: false })), alerts, body);
  const serviceLink = (service: string): string => href(routeTo(route, { page: 'service', service }));

  return {
    element,
    live: route.to === undefined,
    async refresh() {
      const w = windowOf(route);
      const [services, active] = await Promise.all([api.services(w), api.alerts()]);
      replace(alerts, alertsPanel(active, serviceLink));
      if (services.length === 0) {
        replace(
          body,
          empty(
            'No service has reported in this window yet.',
            'Start your app under the agent, pointed at this collector: ',
            h('code', {}, `LOOPSCOPE_COLLECTOR=${location.origin} node --import loopscope/register app.js`),
          ),
        );
        return;
      }
      const numbers = await Promise.all(
        services.map(async (s) => {
          const [endpoints, p95, throughput, response] = await Promise.all([
            api.endpoints(s.service, w),
            api.overWindow(s.service, 'response', 0.95, w),
            api.timeseries({ service: s.service, metric: 'throughput', ...w }),
            api.timeseries({ service: s.service, metric: 'response', q: 0.95, ...w }),
          ]);
          const requests = endpoints.reduce((n, e) => n + e.count, 0);
          return { s, p95, throughput, response, requests, perSecond: requests / reportedSeconds(w, s), errors: endpoints.reduce((n, e) => n + e.errors, 0) };
        }),
      );
      // one unit for the whole throughput column, so that its numbers compare at a glance
      const unit = fmt.rateUnit(Math.max(0, ...numbers.map((n) => n.perSecond)));
      const trend = (series: api.Series, color: string, what: string, format: (v: number) => string): SVGSVGElement => {
        const values = series.points.map(([, v]) => v);
        return sparkline(values, color, `${what} over the window, up to ${format(Math.max(0, ...values.map((v) => v ?? 0)))}`);
      };
      const rows = numbers.map(({ s, p95, throughput, response, requests, perSecond, errors }) => {
        const dropped = s.dropped ? s.dropped.transactions + s.dropped.traces : 0;
        const cut = s.dropped?.cut ?? 0;
        const lost = [dropped > 0 ? `${fmt.count(dropped)} dropped` : undefined, cut > 0 ? fmt.counted(cut, 'value cut', 'values cut') : undefined].filter((x) => x !== undefined);
        return h(
          'tr',
          { 'data-service': s.service },
          h('td', { class: 'name' }, h('a', { href: serviceLink(s.service) }, s.service)),
          h('td', { 'data-col': 'agents' }, fmt.sender(s.agents)),
          h('td', { class: 'num' }, fmt.count(s.instances)),
          h('td', { class: 'num' }, h('span', { class: 'with-spark' }, trend(throughput, COLORS.throughput, 'throughput', (v) => fmt.rate(v)), h('span', { 'data-col': 'throughput' }, fmt.rate(perSecond, unit)))),
          h('td', { class: errors > 0 ? 'num bad' : 'num', 'data-col': 'errors' }, fmt.percent(requests === 0 ? 0 : errors / requests)),
          h('td', { class: 'num' }, h('span', { class: 'with-spark' }, trend(response, COLORS.response, 'p95 response', fmt.ms), h('span', { 'data-col': 'p95' }, fmt.ms(p95)))),
          h('td', { class: 'num' }, fmt.ago(s.lastSeen)),
          h(
            'td',
            { class: lost.length > 0 ? 'num bad' : 'num', 'data-col': 'lost', title: "transactions and traces its agents could not ship; values they cut to the wire format's limits (a text ended with …)" },
            lost.length > 0 ? lost.join(', ') : '–',
          ),
        );
      });
      const head = ['Service', 'Seen by', 'Instances', 'Throughput', 'Error rate', 'p95 response', 'Last seen', 'Lost data'];
      replace(
        body,
        h(
          'section',
          { class: 'card' },
          h('table', { class: 'table services' }, h('thead', {}, h('tr', {}, ...head.map((c, i) => h('th', { class: i < 2 ? 'name' : 'num' }, c)))), h('tbody', {}, ...rows)),
        ),
      );
    },
  };
};
