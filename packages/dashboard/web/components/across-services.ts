/**
 * A trace that crossed services (`parts` of `GET /api/traces/:traceId`): a table of each service's
 * transaction nested under the one that called it, with its own cpu, external and blocking, and the
 * critical path across them as one lane on the trace's time axis, a colour per service (the same as
 * in the waterfall below, which nests each part under the very segment that called it). What only loopscope
 * can say, hop by hop: how much of each service's time was its own code, and how much it waited
 * for its event loop.
 */
import type { Trace } from '../api.js';
import { h } from '../dom.js';
import * as fmt from '../format.js';
import { serviceColors } from '../whole-trace.js';

type Part = Trace['parts'][number];

/** Parts in call order: each under the part whose segment called it, with its depth. */
function nested(parts: Part[]): Array<{ part: Part; depth: number }> {
  const owner = new Map<string, Part>();
  for (const p of parts) for (const s of p.segments) if (s.spanId !== undefined) owner.set(s.spanId, p);
  const children = new Map<Part | null, Part[]>();
  for (const p of parts) {
    const parent = (p.parentSpanId !== null ? owner.get(p.parentSpanId) : undefined) ?? null;
    const list = children.get(p === parts[0] ? null : parent) ?? [];
    list.push(p);
    children.set(p === parts[0] ? null : parent, list);
  }
  const out: Array<{ part: Part; depth: number }> = [];
  const visit = (p: Part, depth: number): void => {
    out.push({ part: p, depth });
    for (const c of (children.get(p) ?? []).sort((a, b) => a.start - b.start)) visit(c, depth + 1);
  };
  for (const root of children.get(null) ?? []) visit(root, 0);
  // orphans whose parent is not in the trace were listed under the root (parent null): shown there
  return out;
}

export function acrossServices(trace: Trace, serviceHref: (service: string) => string): HTMLElement | null {
  const parts = trace.parts ?? [];
  if (parts.length < 2) return null;
  const t0 = parts[0]!.start;
  const colorOf = serviceColors(parts);

  const rows = nested(parts).map(({ part: p, depth }) =>
    h(
      'tr',
      { 'data-part': p.spanId ?? '', 'data-service': p.service },
      h(
        'td',
        { class: 'name', style: `padding-left: ${0.6 + depth * 1.25}rem` },
        h('span', { class: 'swatch', style: `background: ${colorOf.get(p.service)}` }),
        ' ',
        h('a', { href: serviceHref(p.service) }, p.service),
        p.orphan ? h('span', { class: 'tag orphan', title: 'its caller did not ship its part of the trace (or not yet)' }, 'caller unknown') : null,
      ),
      h('td', { class: 'name' }, p.endpoint),
      h('td', { class: 'num' }, `+${fmt.ms(p.start - t0)}`),
      h('td', { class: 'num' }, fmt.ms(p.response)),
      h('td', { class: 'num' }, fmt.insideMs(p.cpu)),
      h('td', { class: 'num' }, fmt.insideMs(p.external)),
      h('td', { class: 'num' }, fmt.insideMs(p.blocking)),
    ),
  );

  const path = trace.path ?? [];
  const end = Math.max(t0 + trace.response, ...path.map((s) => s.end));
  const total = Math.max(end - t0, 1e-3);
  const lane = h(
    'div',
    { class: 'path-lane', 'data-path': String(path.length) },
    ...path.map((s) =>
      h('div', {
        class: `path-step ${s.kind === 'transaction' ? 'own' : 'call'}`,
        'data-service': s.service,
        style: `left: ${((s.start - t0) / total) * 100}%; width: ${Math.max(((s.end - s.start) / total) * 100, 0.3)}%; background: ${colorOf.get(s.service) ?? '#7d8590'}`,
        title: `${s.service}: ${s.kind === 'transaction' ? `its own time in ${s.name} (its code and its waits for the event loop)` : `${s.name} (${s.kind}), outside the service it called`} · ${fmt.ms(s.end - s.start)}`,
      }),
    ),
  );
  const byService = new Map<string, number>();
  for (const s of path) byService.set(s.service, (byService.get(s.service) ?? 0) + (s.end - s.start));
  return h(
    'section',
    { class: 'card', 'data-across': String(parts.length) },
    h('h3', {}, `Across ${colorOf.size} services`),
    h(
      'p',
      { class: 'muted' },
      "Each service's part of this request, under the call that reached it: its response as it saw it, its own code (cpu), what it waited for (external) and its waits for its event loop (blocking).",
    ),
    h(
      'table',
      { class: 'table parts' },
      h('thead', {}, h('tr', {}, ...['Service', 'Endpoint', 'Starts', 'Response', 'CPU', 'External', 'Blocking'].map((c, i) => h('th', i > 1 ? {} : { class: 'name' }, c)))),
      h('tbody', {}, ...rows),
    ),
    h('h4', {}, 'Critical path across services'),
    lane,
    h(
      'p',
      { class: 'path-summary' },
      [...byService].map(([service, ms]) => `${service} ${fmt.ms(ms)}`).join(' · '),
    ),
  );
}
