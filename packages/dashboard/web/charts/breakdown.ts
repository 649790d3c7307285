/**
 * Where the time went: one stacked bar per row (an endpoint, or one trace), all rows on one scale.
 * An endpoint's row is the mean per request of cpu, external (by kind when known) and blocking:
 * measured separately, they need not add up to the response time (idle time between them, or work
 * after the response, is in neither; a call's time overlaps the code that ran meanwhile). A trace's
 * row is its duration split into parts that do not overlap (partition.ts). Each row also states its
 * response time.
 */
import type { EndpointRow, ExternalKind } from '../api.js';
import { COLORS } from '../colors.js';
import { h, type Child } from '../dom.js';
import * as fmt from '../format.js';
import { KINDS, type Part } from '../partition.js';

export type { Part };

export interface BreakdownRow {
  label: Child;
  parts: Part[];
  response: number;
}

/**
 * cpu, external (split by kind when the numbers are there) and blocking of one request; the ones
 * that are unknown (null: seen from outside the process) are left out — none of them, for a proxy.
 */
export function partsOf(t: { cpu: number | null; external: number | null; blocking: number | null; externalByKind?: Partial<Record<ExternalKind, number>> | undefined }): Part[] {
  const byKind = t.externalByKind;
  const external: Part[] =
    t.external === null
      ? []
      : byKind !== undefined
        ? KINDS.filter((k) => (byKind[k] ?? 0) > 0).map((k) => ({ label: `external: ${k}`, color: COLORS[k], ms: byKind[k]! }))
        : [{ label: 'external', color: COLORS.external, ms: t.external }];
  return [
    ...(t.cpu === null ? [] : [{ label: 'cpu', color: COLORS.cpu, ms: t.cpu }]),
    ...external,
    ...(t.blocking === null ? [] : [{ label: 'blocking', color: COLORS.blocking, ms: t.blocking, hatched: true }]),
  ];
}

/** The mean of each part over an endpoint's requests. */
export const meanParts = (row: EndpointRow): Part[] =>
  partsOf({ cpu: row.cpu?.mean ?? null, external: row.external?.mean ?? null, blocking: row.blocking?.mean ?? null, externalByKind: row.externalByKind });

/** The bars; when cpu, external and blocking are all unknown (a service seen from outside), a note that says so. */
export function breakdown(rows: BreakdownRow[]): HTMLElement {
  if (rows.length > 0 && rows.every((r) => r.parts.length === 0)) {
    return h('p', { class: 'muted', 'data-unknown': 'breakdown' }, `cpu, external and blocking are ${fmt.UNKNOWN_WHY.replace(/^unknown: /, 'unknown here: ')}. Run the app under the agent to see where its time goes.`);
  }
  const scale = Math.max(1e-9, ...rows.map((r) => Math.max(r.response, r.parts.reduce((s, p) => s + p.ms, 0))));
  const legend = new Map<string, Part>();
  for (const r of rows) for (const p of r.parts) legend.set(p.label, p);
  return h(
    'div',
    { class: 'breakdown' },
    h('div', { class: 'legend' }, ...[...legend.values()].map((p) => h('span', { class: 'legend-item' }, swatch(p), p.label))),
    ...rows.map((r) =>
      h(
        'div',
        { class: 'breakdown-row' },
        h('div', { class: 'breakdown-label' }, r.label),
        h(
          'div',
          { class: 'breakdown-track' },
          h(
            'div',
            { class: 'breakdown-bar' },
            ...r.parts
              .filter((p) => p.ms > 0)
              .map((p) =>
                h('span', {
                  class: `part${p.hatched ? ' hatched' : ''}`,
                  style: `width:${(p.ms / scale) * 100}%;--c:${p.color}`,
                  title: `${p.label}: ${fmt.ms(p.ms)}${p.of === undefined ? '' : ` here, of its ${fmt.ms(p.of)} (the rest overlapped the parts before it)`}`,
                  'data-part': p.label,
                  'data-ms': p.ms,
                }),
              ),
          ),
          h('span', { class: 'response-mark', style: `left:${(r.response / scale) * 100}%`, title: `response ${fmt.ms(r.response)}` }),
        ),
        h(
          'div',
          { class: 'breakdown-values' },
          h('strong', {}, `response ${fmt.ms(r.response)}`),
          h('br'),
          h(
            'span',
            { class: 'muted' },
            ...r.parts.flatMap((p, i) => [
              i > 0 ? ' · ' : '',
              h('span', { 'data-value': p.label }, `${p.label.replace('external: ', '')} ${fmt.ms(p.ms)}${p.of === undefined ? '' : ` of ${fmt.ms(p.of)}`}`),
            ]),
          ),
        ),
      ),
    ),
  );
}

const swatch = (p: Part): HTMLElement => h('span', { class: `swatch${p.hatched ? ' hatched' : ''}`, style: `--c:${p.color}` });
