/**
 * A service's event loop: delay percentiles, utilization, GC pauses, and the long tasks that held
 * the loop, each with the request and function that ran it and a link to its trace. A moment in the
 * address (`at=<from>-<to>`, as a trace's wait links here) picks out the tasks that began in it.
 */
import * as api from '../api.js';
import { controls } from '../components/controls.js';
import { empty } from '../components/states.js';
import { h, replace } from '../dom.js';
import * as fmt from '../format.js';
import { href, routeTo, windowOf } from '../route.js';
import { card, crumbs, heading, section, serviceTabs, type PageFactory } from './page.js';

/** What the long tasks' "kept waiting" cell says: how many requests of which endpoints, for how long. */
function keptWaiting(t: api.LongTask): HTMLElement {
  if (!t.blocked || t.blocked.length === 0) return h('span', { class: 'muted' }, '–');
  const count = t.blocked.reduce((n, b) => n + b.count, 0);
  const ms = t.blocked.reduce((n, b) => n + b.ms, 0);
  const detail = t.blocked.map((b) => `${b.endpoint}: ${fmt.count(b.count)} for ${fmt.ms(b.ms)}`).join('\n');
  return h('span', { title: detail }, `${fmt.count(count)} requests, ${fmt.ms(ms)} in all`);
}

/** The collector answers zeros and no long tasks until an agent has reported loop data. */
const hasData = (l: api.Loop): boolean => l.delay.max > 0 || l.utilization > 0 || l.gcPauseMs > 0 || l.longTasks.length > 0;

export const loopPage: PageFactory = ({ route, navigate }) => {
  const service = route.service ?? '';
  const sort = route.sort === 'worst' ? 'worst' : 'recent';
  const body = h('div', {});
  const element = h(
    'div',
    { class: 'page' },
    crumbs(route, [service, routeTo(route, { page: 'service', service })], ['event loop', undefined]),
    heading(`${service} — event loop`, controls(route, navigate, { percentile: false })),
    serviceTabs(route, service),
    body,
  );

  return {
    element,
    live: route.to === undefined,
    async refresh() {
      const loop = await api.loop(service, windowOf(route), sort);
      if (!hasData(loop)) {
        replace(body, empty('No event-loop data for this service in this window.', 'Agents report loop delay, utilization, GC pauses and long tasks with each batch; none has arrived here yet.'));
        return;
      }
      const moment = route.moment;
      const picked = (t: api.LongTask): boolean => moment !== undefined && t.at >= moment.from && t.at < moment.to;
      const tasks = loop.longTasks.map((t) =>
        h(
          'tr',
          { 'data-long-task': '', class: picked(t) ? 'picked' : null, 'aria-current': picked(t) ? 'true' : null },
          h('td', {}, fmt.clock(t.at).slice(11)),
          h('td', { class: 'num' }, fmt.ms(t.ms)),
          h('td', { class: 'name' }, t.endpoint ? h('a', { href: href(routeTo(route, { page: 'endpoint', service, endpoint: t.endpoint })) }, t.endpoint) : h('span', { class: 'muted' }, 'no transaction')),
          h('td', { class: 'name code' }, t.function || '(anonymous)'),
          h('td', { class: 'name code', title: t.location ?? null }, t.location ?? '–'),
          h('td', { class: 'num' }, keptWaiting(t)),
          h('td', {}, t.traceId ? h('a', { href: href(routeTo(route, { page: 'trace', service, traceId: t.traceId })) }, 'trace') : '–'),
        ),
      );
      const head = ['When', 'Held the loop', 'Endpoint', 'Function', 'Location', 'Kept waiting', 'Trace'];
      const order = (label: string, value: 'recent' | 'worst'): HTMLElement =>
        h('button', { type: 'button', class: sort === value ? 'on' : null, onclick: () => navigate({ ...route, sort: value === 'recent' ? undefined : value }) }, label);
      replace(
        body,
        h(
          'div',
          { class: 'stats' },
          card('Loop delay p50', fmt.ms(loop.delay.p50)),
          card('Loop delay p95', fmt.ms(loop.delay.p95)),
          card('Loop delay p99', fmt.ms(loop.delay.p99)),
          card('Loop delay max', fmt.ms(loop.delay.max)),
          card('Utilization', fmt.percent(loop.utilization), 'share of time the loop was busy'),
          card('GC pauses', fmt.ms(loop.gcPauseMs), 'total in the window'),
        ),
        section(
          'Long tasks',
          h('div', { class: 'control', role: 'group', 'aria-label': 'order' }, order('Newest first', 'recent'), order('Longest first', 'worst')),
          moment && !loop.longTasks.some(picked)
            ? h('p', { class: 'muted', 'data-picked': 'none' }, `No long task of this list began at ${fmt.clock(moment.from)}: it may be older than the collector keeps long tasks, or not among the ones listed.`)
            : null,
          tasks.length === 0
            ? h('p', { class: 'muted' }, 'No synchronous slice held the loop longer than the threshold (LOOPSCOPE_LONG_TASK_MS, default 50 ms).')
            : h('table', { class: 'table long-tasks' }, h('thead', {}, h('tr', {}, ...head.map((c) => h('th', { class: c === 'Held the loop' || c === 'Kept waiting' ? 'num' : 'name' }, c)))), h('tbody', {}, ...tasks)),
        ),
      );
      body.querySelector('tr.picked')?.scrollIntoView({ block: 'center' });
    },
  };
};
