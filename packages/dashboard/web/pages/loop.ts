/**
 * A service's event loop: delay percentiles, utilization, GC pauses, the long tasks grouped by
 * culprit (a function at a location: how many, how long, which endpoints ran them, whom they kept
 * waiting, and when), and the long tasks that held the loop, each with the request and function
 * that ran it and a link to its trace; a culprit picked (`fn`, `loc` in the address) keeps the list
 * to its tasks. A moment in the address (`at=<from>-<to>`, as a trace's wait links here) picks out
 * the tasks that began in it.
 */
import * as api from '../api.js';
import { sparkline } from '../charts/sparkline.js';
import { timeChart } from '../charts/timeseries.js';
import { COLORS } from '../colors.js';
import { controls } from '../components/controls.js';
import { empty } from '../components/states.js';
import { h, replace } from '../dom.js';
import * as fmt from '../format.js';
import { href, reportedWindow, routeTo, windowOf } from '../route.js';
import { card, crumbs, heading, section, serviceTabs, type PageFactory } from './page.js';

/** What the long tasks' "kept waiting" cell says: how many requests of which endpoints, for how long. */
function keptWaiting(t: api.LongTask): HTMLElement {
  if (!t.blocked || t.blocked.length === 0) return h('span', { class: 'muted' }, '–');
  const count = t.blocked.reduce((n, b) => n + b.count, 0);
  const ms = t.blocked.reduce((n, b) => n + b.ms, 0);
  const detail = t.blocked.map((b) => `${b.endpoint}: ${fmt.count(b.count)} for ${fmt.ms(b.ms)}`).join('\n');
  return h('span', { title: detail }, waited(count, ms));
}

/** A location's tooltip: itself, and where a source map found it in the compiled file. */
const placeTitle = (t: { location: string | null; compiledLocation: string | null }): string | null =>
  t.location === null ? null : t.compiledLocation === null ? t.location : `${t.location}\ncompiled: ${t.compiledLocation}`;

/** "2 requests, 31.5 ms in all", or a dash. */
const waited = (count: number, ms: number): string => (count === 0 ? '–' : `${fmt.counted(count, 'request')}, ${fmt.ms(ms)} in all`);

/** The table of culprits: each row's function leads to its tasks. */
function culpritTable(groups: api.LongTaskGroup[], link: (c: api.Culprit) => string, endpointLink: (endpoint: string) => string, picked: api.Culprit | undefined): HTMLElement {
  const head = ['Function', 'Location', 'Tasks', 'Held the loop', 'Longest', 'Endpoints', 'Kept waiting', 'When'];
  const rows = groups.map((g) => {
    const on = picked !== undefined && picked.function === g.function && picked.location === g.location;
    const shown = g.endpoints.slice(0, 3);
    return h(
      'tr',
      { 'data-culprit': '', 'data-function': g.function, 'data-location': g.location ?? '', class: on ? 'picked' : null, 'aria-current': on ? 'true' : null },
      h('td', { class: 'name code' }, h('a', { href: link(g), title: 'its long tasks' }, g.function || '(anonymous)')),
      h('td', { class: 'name code', title: placeTitle(g) }, g.location ?? '–'),
      h('td', { class: 'num', 'data-col': 'count' }, fmt.count(g.count)),
      h('td', { class: 'num', 'data-col': 'total' }, fmt.ms(g.totalMs)),
      h('td', { class: 'num', 'data-col': 'max' }, fmt.ms(g.maxMs)),
      h(
        'td',
        { class: 'name', 'data-col': 'endpoints', title: g.endpoints.join('\n') || null },
        ...(g.endpoints.length === 0 ? [h('span', { class: 'muted' }, 'no transaction')] : shown.flatMap((e, i) => [i > 0 ? ', ' : '', h('a', { href: endpointLink(e) }, e)])),
        g.endpoints.length > shown.length ? ` +${g.endpoints.length - shown.length}` : '',
      ),
      h('td', { class: 'num', 'data-col': 'blocked' }, waited(g.blocked.count, g.blocked.ms)),
      h('td', {}, sparkline(g.timeline, COLORS.cpu, `when it held the loop: up to ${fmt.ms(Math.max(0, ...g.timeline))} in one of ${g.timeline.length} parts of the window`)),
    );
  });
  return h('table', { class: 'table culprits' }, h('thead', {}, h('tr', {}, ...head.map((c) => h('th', { class: ['Tasks', 'Held the loop', 'Longest', 'Kept waiting'].includes(c) ? 'num' : 'name' }, c)))), h('tbody', {}, ...rows));
}

/** The collector answers zeros and no long tasks until an agent has reported loop data. */
const hasData = (l: api.Loop): boolean => l.delay.max > 0 || l.utilization > 0 || l.gcPauseMs > 0 || l.longTasks.length > 0;

/** The loop over the window: delay, utilization and GC pauses, with the long tasks marked on each. */
function loopCharts(): { element: HTMLElement; update(w: { from: number; to: number }, service: string, longTasks: api.LongTask[]): Promise<void>; destroy(): void } {
  const delayLines = [
    { label: 'p50', q: 0.5, color: '#e0b000' },
    { label: 'p99', q: 0.99, color: '#b8860b' },
    { label: 'max', q: 1, color: '#7a4f00' },
  ];
  const delay = timeChart('Loop delay', 'ms', delayLines, fmt.ms);
  const utilization = timeChart('Utilization', '%', [{ label: 'busy', color: COLORS.cpu }], (v) => fmt.percent(v / 100));
  const gc = timeChart('GC pauses', 'ms/s', [{ label: 'GC', color: COLORS.other }], (v) => `${fmt.ms(v)}/s`);
  const charts = [delay, utilization, gc];
  return {
    element: h('div', { class: 'charts' }, delay.element, h('div', { class: 'chart-row' }, utilization.element, gc.element)),
    async update(w, service, longTasks) {
      const ask = (metric: api.SeriesMetric, q?: number): Promise<api.Series> => api.timeseries({ service, metric, ...(q !== undefined ? { q } : {}), ...w });
      const [delays, busy, pauses] = await Promise.all([Promise.all(delayLines.map((l) => ask('loop_delay', l.q))), ask('utilization'), ask('gc')]);
      const x = busy.points.map(([t]) => t);
      const values = (s: api.Series, scale = 1): Array<number | null> => s.points.map(([, v]) => (v === null ? null : v * scale));
      delay.update(x, delays.map((s) => values(s)));
      utilization.update(x, [values(busy, 100)]);
      gc.update(x, [values(pauses)]);
      const at = longTasks.filter((t) => t.at >= w.from && t.at < w.to).map((t) => t.at);
      for (const c of charts) c.moments(at);
    },
    destroy: () => charts.forEach((c) => c.destroy()),
  };
}

export const loopPage: PageFactory = ({ route, navigate }) => {
  const service = route.service ?? '';
  const sort = route.sort === 'worst' ? 'worst' : 'recent';
  const stats = h('div', {});
  const charts = loopCharts();
  const rest = h('div', {});
  const element = h(
    'div',
    { class: 'page' },
    crumbs(route, [service, routeTo(route, { page: 'service', service })], ['event loop', undefined]),
    heading(`${service} — event loop`, controls(route, navigate, { percentile: false })),
    serviceTabs(route, service),
    stats,
    charts.element,
    rest,
  );

  return {
    element,
    live: route.to === undefined,
    destroy: () => charts.destroy(),
    async refresh() {
      const w = windowOf(route);
      const culprit = route.culprit;
      const [loop, ofCulprit, seen] = await Promise.all([api.loop(service, w, sort), culprit ? api.loop(service, w, sort, culprit) : undefined, api.serviceOf(service, w)]);
      charts.element.hidden = !hasData(loop);
      if (!hasData(loop)) {
        replace(stats, empty('No event-loop data for this service in this window.', 'Agents report loop delay, utilization, GC pauses and long tasks with each batch; none has arrived here yet.'));
        replace(rest);
        return;
      }
      // the charts over the time the service reported: a young one fills them
      await charts.update(reportedWindow(w, seen), service, loop.longTasks);
      const moment = route.moment;
      const picked = (t: api.LongTask): boolean => moment !== undefined && t.at >= moment.from && t.at < moment.to;
      const listed = ofCulprit ?? loop;
      const tasks = listed.longTasks.map((t) =>
        h(
          'tr',
          { 'data-long-task': '', class: picked(t) ? 'picked' : null, 'aria-current': picked(t) ? 'true' : null },
          h('td', {}, fmt.clock(t.at).slice(11)),
          h('td', { class: 'num' }, fmt.ms(t.ms)),
          h('td', { class: 'name' }, t.endpoint ? h('a', { href: href(routeTo(route, { page: 'endpoint', service, endpoint: t.endpoint })) }, t.endpoint) : h('span', { class: 'muted' }, 'no transaction')),
          h('td', { class: 'name code' }, t.function || '(anonymous)'),
          h('td', { class: 'name code', title: placeTitle(t) }, t.location ?? '–'),
          h('td', { class: 'num' }, keptWaiting(t)),
          h('td', {}, t.traceId ? h('a', { href: href(routeTo(route, { page: 'trace', service, traceId: t.traceId })) }, 'trace') : '–'),
        ),
      );
      const head = ['When', 'Held the loop', 'Endpoint', 'Function', 'Location', 'Kept waiting', 'Trace'];
      const order = (label: string, value: 'recent' | 'worst'): HTMLElement =>
        h('button', { type: 'button', class: sort === value ? 'on' : null, onclick: () => navigate({ ...route, sort: value === 'recent' ? undefined : value }) }, label);
      replace(
        stats,
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
      );
      replace(
        rest,
        section(
          'Long tasks by culprit',
          (loop.groups ?? []).length === 0
            ? h('p', { class: 'muted' }, 'No long task in this window.')
            : culpritTable(
              loop.groups ?? [],
              (c) => href({ ...route, culprit: { function: c.function, location: c.location } }),
              (endpoint) => href(routeTo(route, { page: 'endpoint', service, endpoint })),
              culprit,
            ),
        ),
        section(
          culprit ? `Long tasks of ${culprit.function || '(anonymous)'}${culprit.location ? ` at ${culprit.location}` : ''}` : 'Long tasks',
          h(
            'div',
            { class: 'control', role: 'group', 'aria-label': 'order' },
            order('Newest first', 'recent'),
            order('Longest first', 'worst'),
            culprit ? h('a', { href: href({ ...route, culprit: undefined }), 'data-all-tasks': '' }, `every long task (${fmt.count(loop.longTaskCount)})`) : null,
          ),
          moment && !listed.longTasks.some(picked)
            ? h('p', { class: 'muted', 'data-picked': 'none' }, `No long task of this list began at ${fmt.clock(moment.from)}: it may be older than the collector keeps long tasks, or not among the ones listed.`)
            : null,
          tasks.length === 0
            ? h('p', { class: 'muted' }, 'No synchronous slice held the loop longer than the threshold (LOOPSCOPE_LONG_TASK_MS, default 50 ms).')
            : h('table', { class: 'table long-tasks' }, h('thead', {}, h('tr', {}, ...head.map((c) => h('th', { class: c === 'Held the loop' || c === 'Kept waiting' ? 'num' : 'name' }, c)))), h('tbody', {}, ...tasks)),
        ),
      );
      rest.querySelector('tr.picked')?.scrollIntoView({ block: 'center' });
    },
  };
};
