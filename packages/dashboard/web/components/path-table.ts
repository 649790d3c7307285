/**
 * Where an endpoint's time goes over many requests (GET /api/critical-path): each step on its
 * critical path with its share of the time, a bar of it, its mean and p95 there and how often it was
 * on the path when it ran; then the service's own cpu and its blocking.
 */
import type { CriticalPath } from '../api.js';
import { COLORS } from '../colors.js';
import { h } from '../dom.js';
import * as fmt from '../format.js';

const COLUMNS = ['Step', 'Share of the time', 'Mean on the path', 'p95 on the path', 'On the path when it ran'];

function shareCell(share: number | null, color: string): HTMLElement {
  return h(
    'td',
    { class: 'num', 'data-col': 'share' },
    h('span', { class: 'share-bar', style: `width: ${Math.round(Math.min(1, share ?? 0) * 120)}px; background: ${color}` }),
    ' ',
    fmt.percent(share),
  );
}

export function pathTable(path: CriticalPath): HTMLElement {
  if (path.requests === 0) return h('p', { class: 'muted', 'data-path': 'none' }, 'No stored traces of this endpoint in this window.');
  const basis =
    path.basis === 'random'
      ? `Over ${fmt.counted(path.requests, 'trace')} drawn at random (mean duration ${fmt.ms(path.duration)}).`
      : `Over all ${fmt.counted(path.requests, 'stored trace')} (mean duration ${fmt.ms(path.duration)}): too few were drawn at random, so the slowest and the failed requests weigh more. Raise LOOPSCOPE_SAMPLE_RATE for a fair sample.`;
  const steps = path.steps.map((s) =>
    h(
      'tr',
      { 'data-step': `${s.kind} ${s.name}` },
      h('td', { class: 'name', title: s.name }, h('span', { class: 'kind', style: `color: ${COLORS[s.kind]}` }, s.kind), ' ', s.name),
      shareCell(s.share, COLORS[s.kind]),
      h('td', { class: 'num', 'data-col': 'mean' }, s.onPath > 0 ? fmt.ms(s.mean) : '–'),
      h('td', { class: 'num', 'data-col': 'p95' }, s.onPath > 0 ? fmt.ms(s.p95) : '–'),
      h('td', { class: 'num', 'data-col': 'on-path' }, fmt.percent(s.onPath)),
    ),
  );
  const own = (label: string, key: 'cpu' | 'blocking', title: string): HTMLElement =>
    h(
      'tr',
      { 'data-own': key, class: 'own' },
      h('td', { class: 'name', title }, label),
      shareCell(path.own[key], COLORS[key]),
      h('td', { class: 'num' }, ''),
      h('td', { class: 'num' }, ''),
      h('td', { class: 'num' }, ''),
    );
  return h(
    'div',
    { class: 'critical-path' },
    h('p', { class: 'muted', 'data-path': path.basis }, basis),
    h(
      'table',
      { class: 'table path' },
      h('thead', {}, h('tr', {}, ...COLUMNS.map((c, i) => h('th', { class: i === 0 ? 'name' : 'num' }, c)))),
      h(
        'tbody',
        {},
        ...steps,
        own("the service's own code (cpu)", 'cpu', 'its own JavaScript on the event loop'),
        own('waiting behind other work (blocking)', 'blocking', 'ready to run, but the loop was busy with other requests'),
      ),
    ),
  );
}
