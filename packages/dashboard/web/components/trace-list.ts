/** A list of traces (slowest or most recent), each linking to its waterfall. */
import type { TraceSummary } from '../api.js';
import { h } from '../dom.js';
import * as fmt from '../format.js';

/** What an aborted request's label says when hovered. */
export const ABORTED_WHY = 'Aborted: the connection closed before the response was finished; no answer reached the client';

/**
 * The choice of what the slowest traces are the slowest by, for a list's heading: response (what
 * the user waited) or duration (the whole work, the end of the request's last work); `choose`
 * gets the other one's address.
 */
export function slowByChoice(by: 'response' | 'duration', addressOf: (by: 'response' | 'duration') => string): HTMLElement {
  const option = (b: 'response' | 'duration'): HTMLElement =>
    b === by ? h('strong', { 'data-slow-by': b, 'aria-current': 'true' }, b) : h('a', { href: addressOf(b), 'data-slow-by': b }, b);
  return h('span', { class: 'muted slow-by' }, ' — by ', option('response'), ' · ', option('duration'));
}

export function traceList(title: string, traces: TraceSummary[], link: (traceId: string) => string, showEndpoint: boolean, action?: HTMLElement): HTMLElement {
  const rows = traces.map((t) =>
    h(
      'tr',
      { 'data-trace': t.traceId },
      h('td', {}, h('a', { href: link(t.traceId) }, fmt.clock(t.start).slice(11))),
      showEndpoint ? h('td', { class: 'name' }, t.endpoint) : null,
      h(
        'td',
        { class: t.status >= 500 ? 'num bad' : 'num' },
        t.status === 0 ? (t.aborted ? '' : '–') : String(t.status),
        t.aborted ? h('span', { class: 'tag aborted', title: ABORTED_WHY }, 'aborted') : null,
      ),
      h('td', { class: 'num' }, fmt.ms(t.response)),
      h('td', { class: 'num' }, fmt.ms(t.duration)),
      ...[t.cpu, t.external, t.blocking].map((v) => (v === null ? h('td', { class: 'num muted', title: fmt.UNKNOWN_WHY }, '—') : h('td', { class: 'num' }, fmt.ms(v)))),
    ),
  );
  const head = ['Start', ...(showEndpoint ? ['Endpoint'] : []), 'Status', 'Response', 'Duration', 'CPU', 'External', 'Blocking'];
  return h(
    'section',
    { class: 'card', 'data-traces': title },
    h('h3', {}, title, action ?? null),
    traces.length === 0
      ? h('p', { class: 'muted' }, 'No traces in this window. The agent ships the slowest trace per endpoint every second, every error and aborted request, and a random sample.')
      : h('table', { class: 'table traces' }, h('thead', {}, h('tr', {}, ...head.map((c, i) => h('th', { class: i === 0 || c === 'Endpoint' ? 'name' : 'num' }, c)))), h('tbody', {}, ...rows)),
  );
}
