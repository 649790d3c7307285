/**
 * The alerts of the collector's rules (`loopscope up --rules`): firing and pending first, then the
 * recently resolved, each in words with its state and since when; the service's name links to its
 * page. Nothing at all when there is no alert to show (a collector without rules).
 */
import { describeAlert } from '@loopscope/protocol';
import type * as api from '../api.js';
import { h } from '../dom.js';
import * as fmt from '../format.js';

/** `link(service)`: the service's page. */
export function alertsPanel(alerts: api.Alert[], link: (service: string) => string): HTMLElement | string {
  if (alerts.length === 0) return '';
  const rows = alerts.map((a) => {
    const when = a.state === 'firing' ? `firing since ${fmt.clock(a.firedAt!)}` : a.state === 'pending' ? `pending since ${fmt.clock(a.since)}` : `resolved ${fmt.ago(a.resolvedAt!)}`;
    return h(
      'tr',
      { 'data-alert': a.name, 'data-state': a.state },
      h('td', {}, h('span', { class: `alert-state ${a.state}` }, a.state)),
      h('td', { class: 'name' }, a.name),
      h('td', { class: 'name' }, h('a', { href: link(a.service) }, a.service)),
      h('td', { 'data-col': 'summary' }, describeAlert(a)),
      h('td', { class: 'num', title: fmt.clock(a.since) }, when),
    );
  });
  const active = alerts.filter((a) => a.state !== 'resolved').length;
  return h(
    'section',
    { class: 'card alerts', 'data-active': active },
    h('h3', {}, active > 0 ? `Alerts — ${active} active` : 'Alerts — none active'),
    h('table', { class: 'table' }, h('thead', {}, h('tr', {}, ...['State', 'Rule', 'Service', 'What', 'When'].map((c, i) => h('th', { class: i === 4 ? 'num' : 'name' }, c)))), h('tbody', {}, ...rows)),
  );
}
