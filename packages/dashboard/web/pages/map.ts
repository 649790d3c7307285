/**
 * The service map (`/api/servicemap`): the services that reported in the window, the databases,
 * caches, queues and hosts their calls went to, and an arrow per kind of call with its rate, errors
 * and p95. Laid out by dagre (layered, left to right: callers before what they call). A service
 * leads to its page; an arrow to the calls it stands for (the traces that made them and, to a
 * service, the callee's endpoints they reached); a database, cache, queue or host to the calls of
 * every service to it.
 */
import dagre from '@dagrejs/dagre';
import * as api from '../api.js';
import { COLORS } from '../colors.js';
import { controls } from '../components/controls.js';
import { empty } from '../components/states.js';
import { h, replace } from '../dom.js';
import * as fmt from '../format.js';
import { href, reportedSeconds, routeTo, windowOf } from '../route.js';
import { heading, type PageFactory } from './page.js';

const SVG = 'http://www.w3.org/2000/svg';
const NODE_H = 44;

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, ...children: Array<SVGElement | string>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

/** Calls per second, or how many when that is under 0.1/s. */
function rate(count: number, seconds: number): string {
  const perSecond = count / seconds;
  if (perSecond >= 10) return `${perSecond.toFixed(0)}/s`;
  if (perSecond >= 0.1) return `${perSecond.toFixed(1)}/s`;
  return fmt.counted(count, 'call');
}

const kindColor = (kind: string): string => (kind in COLORS ? COLORS[kind as keyof typeof COLORS] : COLORS.other);

export const mapPage: PageFactory = ({ route, navigate }) => {
  const body = h('div', {});
  const element = h('div', { class: 'page' }, heading('Service map', controls(route, navigate, { percentile: false })), body);

  return {
    element,
    live: route.to === undefined,
    async refresh() {
      const w = windowOf(route);
      const [map, services] = await Promise.all([api.serviceMap(w), api.services(w)]);
      if (map.nodes.length === 0) {
        replace(body, empty('No service has reported in this window yet.', 'The map draws the services that report and what their calls go to.'));
        return;
      }
      // a call rate over the time its caller reported
      const seconds = (caller: string): number => reportedSeconds(w, services.find((s) => s.service === caller));
      const g = new dagre.graphlib.Graph({ multigraph: true });
      g.setGraph({ rankdir: 'LR', nodesep: 28, ranksep: 120, marginx: 16, marginy: 16 });
      g.setDefaultEdgeLabel(() => ({}));
      for (const n of map.nodes) g.setNode(n.id, { width: Math.min(260, 40 + n.name.length * 7.5), height: NODE_H });
      map.edges.forEach((e, i) => g.setEdge(e.from, e.to, { width: 150, height: 30, labelpos: 'c' }, String(i)));
      dagre.layout(g);
      const size = g.graph();
      const drawing = svg('svg', { class: 'service-map', width: size.width ?? 0, height: size.height ?? 0, viewBox: `0 0 ${size.width ?? 0} ${size.height ?? 0}` });
      drawing.append(
        svg('defs', {}, svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 8, markerHeight: 8, orient: 'auto-start-reverse' }, svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#7d8590' }))),
      );
      map.edges.forEach((e, i) => {
        const laid = g.edge({ v: e.from, w: e.to, name: String(i) }) as { points: Array<{ x: number; y: number }>; x: number; y: number };
        const d = laid.points.map((p, k) => `${k === 0 ? 'M' : 'L'} ${p.x} ${p.y}`).join(' ');
        const from = map.nodes.find((n) => n.id === e.from)!;
        const link = svg(
          'a',
          { href: href(routeTo(route, { page: 'calls', service: from.name, node: e.to })), 'data-edge': `${e.from} -> ${e.to}` },
          svg('title', {}, `${from.name} → ${e.to.replace(/^[a-z]+:/, '')}: ${fmt.counted(e.count, `${e.kind} call`)}, ${fmt.count(e.errors)} failed, p95 ${fmt.ms(e.p95)}`),
          svg('path', { d, fill: 'none', stroke: kindColor(e.kind), 'stroke-width': 2, 'marker-end': 'url(#arrow)' }),
          svg('text', { x: laid.x, y: laid.y - 4, 'text-anchor': 'middle', class: 'edge-label' }, `${e.kind} ${rate(e.count, seconds(from.name))}`),
          svg('text', { x: laid.x, y: laid.y + 10, 'text-anchor': 'middle', class: e.errors > 0 ? 'edge-label bad' : 'edge-label' }, `p95 ${fmt.ms(e.p95)}${e.errors > 0 ? ` · ${fmt.counted(e.errors, 'error')}` : ''}`),
        );
        drawing.append(link);
      });
      for (const n of map.nodes) {
        const { x, y, width, height } = g.node(n.id) as { x: number; y: number; width: number; height: number };
        const box = svg(
          'g',
          { 'data-node': n.id, class: `map-node ${n.kind}` },
          svg('rect', { x: x - width / 2, y: y - height / 2, width, height, rx: n.kind === 'service' ? 8 : 20 }),
          svg('text', { x, y: y + 4, 'text-anchor': 'middle' }, n.name),
        );
        const to = n.kind === 'service' ? routeTo(route, { page: 'service', service: n.name }) : routeTo(route, { page: 'calls', node: n.id });
        drawing.append(svg('a', { href: href(to) }, box));
      }
      replace(
        body,
        h('section', { class: 'card' }, h('p', { class: 'muted' }, 'Every call the agents counted in the window, by kind: rate, p95 as the caller saw it, errors. A service leads to its page; an arrow, a database, cache, queue or host to the traces of those calls.'), h('div', { class: 'map-scroll' }, drawing)),
      );
    },
  };
};
