/**
 * The calls behind the service map's arrow or node (`/calls?node=N[&service=S]`,
 * `/api/servicemap/calls`): the stored traces in which `service` (or every service that calls it)
 * called the node, longest call first, each linking to its trace; for a node that is a service, its
 * endpoints that these calls reached, each linking to its endpoint page.
 */
import * as api from '../api.js';
import { controls } from '../components/controls.js';
import { empty } from '../components/states.js';
import { h, replace } from '../dom.js';
import * as fmt from '../format.js';
import { href, routeTo, windowOf, type Route } from '../route.js';
import { crumbs, heading, section, type PageFactory } from './page.js';

/** `service:orders` → service orders; `db:127.0.0.1:5432/shop` → db 127.0.0.1:5432/shop. */
export function nodeName(node: string): { kind: string; name: string } {
  const colon = node.indexOf(':');
  return colon < 0 ? { kind: 'other', name: node } : { kind: node.slice(0, colon), name: node.slice(colon + 1) };
}

/** The page's title: `gateway → orders` for an arrow, `Calls to db 127.0.0.1:5432/shop` for a node. */
export function callsTitle(node: string, caller: string | undefined): string {
  const { kind, name } = nodeName(node);
  const callee = kind === 'service' ? name : `${kind} ${name}`;
  return caller === undefined ? `Calls to ${callee}` : `${caller} → ${callee}`;
}

export const callsPage: PageFactory = ({ route, navigate }) => {
  const node = route.node ?? '';
  const caller = route.service;
  const { kind, name } = nodeName(node);
  const title = callsTitle(node, caller);
  const body = h('div', {});
  const serviceLink = (service: string): HTMLElement => h('a', { href: href(routeTo(route, { page: 'service', service })) }, service);
  const element = h(
    'div',
    { class: 'page' },
    crumbs(route, ['Service map', routeTo(route, { page: 'map' })], [title, undefined]),
    heading(title, controls(route, navigate, { percentile: false })),
    body,
  );

  const traceRow = (t: api.ServiceMapCalls['traces'][number]): HTMLElement => {
    const traceRoute: Route = routeTo(route, { page: 'trace', service: t.service, traceId: t.traceId });
    return h(
      'tr',
      { 'data-trace': t.traceId },
      h('td', {}, h('a', { href: href(traceRoute) }, fmt.clock(t.start).slice(11))),
      h('td', { class: 'name' }, t.service),
      h('td', { class: 'name' }, h('a', { href: href(routeTo(route, { page: 'endpoint', service: t.service, endpoint: t.endpoint })) }, t.endpoint)),
      h('td', { class: t.status >= 500 ? 'num bad' : 'num' }, t.status === 0 ? '–' : String(t.status)),
      h('td', { class: 'num' }, fmt.count(t.calls)),
      h('td', { class: t.errors > 0 ? 'num bad' : 'num' }, fmt.count(t.errors)),
      h('td', { class: 'num' }, fmt.ms(t.longest.ms)),
      h('td', { class: 'name code' }, kind === 'service' ? t.callee.join(', ') || h('span', { class: 'muted', title: 'the callee’s part of this trace did not arrive' }, '–') : t.longest.name),
      h('td', { class: 'num' }, h('a', { href: href(traceRoute) }, 'trace')),
    );
  };

  return {
    element,
    live: route.to === undefined,
    async refresh() {
      const calls = await api.mapCalls({ node, caller, ...windowOf(route) });
      const who = calls.callers.length === 0 ? 'no service' : calls.callers.join(', ');
      const scope = h(
        'p',
        { class: 'muted', 'data-scope': '' },
        `The stored traces of ${who} in this window that called ${kind === 'service' ? name : `${kind} ${name}`}: ${fmt.count(calls.traces.length)} shown of the ${fmt.count(calls.checked)} slowest looked into, the longest call first. The map's numbers count every call; these are the calls of the kept traces.`,
      );
      const links = h(
        'p',
        {},
        ...(caller !== undefined ? ['Caller: ', serviceLink(caller)] : []),
        ...(kind === 'service' ? [caller !== undefined ? ' · ' : '', 'Callee: ', serviceLink(name)] : []),
      );
      const endpoints =
        kind === 'service'
          ? section(
              `Endpoints of ${name} these calls reached`,
              calls.endpoints.length === 0
                ? h('p', { class: 'muted' }, 'None seen: no part of these traces from this service has arrived.')
                : h(
                  'table',
                  { class: 'table', 'data-callee-endpoints': '' },
                  h('thead', {}, h('tr', {}, h('th', { class: 'name' }, 'Endpoint'), h('th', { class: 'num' }, 'Traces'))),
                  h(
                    'tbody',
                    {},
                    ...calls.endpoints.map((e) =>
                      h(
                        'tr',
                        { 'data-endpoint': e.endpoint },
                        h('td', { class: 'name' }, h('a', { href: href(routeTo(route, { page: 'endpoint', service: e.service, endpoint: e.endpoint })) }, e.endpoint)),
                        h('td', { class: 'num' }, fmt.count(e.traces)),
                      ),
                    ),
                  ),
                ),
          )
          : null;
      const head = ['Start', 'Caller', 'Endpoint', 'Status', 'Calls', 'Failed', 'Longest call', kind === 'service' ? 'Callee endpoint' : 'Longest call is', ''];
      const traces =
        calls.traces.length === 0
          ? empty('No stored trace in this window made these calls.', 'Agents keep the slowest trace per endpoint every second, every error and a random share; widen the window or wait for one.')
          : section(
            'Traces',
            h(
              'table',
              { class: 'table traces', 'data-calls': '' },
              h('thead', {}, h('tr', {}, ...head.map((c, i) => h('th', { class: i === 0 || i === 1 || i === 2 || i === 7 ? 'name' : 'num' }, c)))),
              h('tbody', {}, ...calls.traces.map(traceRow)),
            ),
          );
      replace(body, h('section', { class: 'card' }, links, scope), endpoints, traces);
    },
  };
};
