/** The view controls: time range, percentile, and live / paused. Each one changes the URL. */
import { h } from '../dom.js';
import * as fmt from '../format.js';
import { PERCENTILES, RANGES, windowOf, type PercentileName, type RangeName, type Route } from '../route.js';

export type Navigate = (route: Route) => void;

function group(label: string, items: HTMLElement[]): HTMLElement {
  return h('div', { class: 'control', role: 'group', 'aria-label': label }, ...items);
}

export function controls(route: Route, navigate: Navigate, opts: { percentile: boolean }): HTMLElement {
  const ranges = (Object.keys(RANGES) as RangeName[]).map((r) =>
    h('button', { type: 'button', class: r === route.range ? 'on' : null, 'data-range': r, onclick: () => navigate({ ...route, range: r }) }, r),
  );
  const percentiles = (Object.keys(PERCENTILES) as PercentileName[]).map((p) =>
    h('button', { type: 'button', class: p === route.percentile ? 'on' : null, 'data-percentile': p, onclick: () => navigate({ ...route, percentile: p }) }, p),
  );
  const live =
    route.to === undefined
      ? h('button', { type: 'button', class: 'live on', title: 'refreshes every second; click to pause', onclick: () => navigate({ ...route, to: windowOf(route).to }) }, h('span', { class: 'dot' }), 'Live')
      : h('button', { type: 'button', class: 'live', title: 'click to follow the present again', onclick: () => navigate({ ...route, to: undefined }) }, `Paused at ${fmt.clock(route.to).slice(11, 19)}`);
  return h('div', { class: 'controls' }, group('range', ranges), opts.percentile ? group('percentile', percentiles) : null, live);
}
