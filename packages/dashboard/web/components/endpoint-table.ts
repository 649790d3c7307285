/**
 * The endpoint table of a service: one row per endpoint with its volume, errors and latency
 * percentiles over the window; sortable by any column, the sort kept in the URL.
 */
import type { EndpointRow } from '../api.js';
import { h } from '../dom.js';
import * as fmt from '../format.js';

interface Column {
  key: string;
  title: string;
  /** null: unknown (cpu, external, blocking of a service seen from outside) */
  value(row: EndpointRow, seconds: number): number | string | null;
  format(v: number): string;
}

const latency = (key: string, title: string, pick: (r: EndpointRow) => number | null): Column => ({ key, title, value: pick, format: fmt.ms });

const COLUMNS: Column[] = [
  { key: 'endpoint', title: 'Endpoint', value: (r) => r.endpoint, format: String },
  { key: 'count', title: 'Requests', value: (r) => r.count, format: fmt.count },
  { key: 'throughput', title: 'Throughput', value: (r, s) => r.count / s, format: fmt.rate },
  { key: 'errors', title: 'Error rate', value: (r) => (r.count === 0 ? 0 : r.errors / r.count), format: fmt.percent },
  latency('p50', 'p50 response', (r) => r.response.p50),
  latency('p95', 'p95 response', (r) => r.response.p95),
  latency('p99', 'p99 response', (r) => r.response.p99),
  latency('cpu', 'p95 cpu', (r) => r.cpu?.p95 ?? null),
  latency('external', 'p95 external', (r) => r.external?.p95 ?? null),
  latency('blocking', 'p95 blocking', (r) => r.blocking?.p95 ?? null),
];

export interface SortState {
  key: string;
  ascending: boolean;
}

/** `sort` from the URL: a column key, `-` in front for ascending; default busiest first. */
export function parseSort(sort: string | undefined): SortState {
  const ascending = sort?.startsWith('-') ?? false;
  const key = sort?.replace(/^-/, '') ?? 'count';
  return { key: COLUMNS.some((c) => c.key === key) ? key : 'count', ascending };
}

export const formatSort = (s: SortState): string => `${s.ascending ? '-' : ''}${s.key}`;

export function endpointTable(
  rows: EndpointRow[],
  opts: { seconds: number; sort: SortState; link(endpoint: string): string; onSort(sort: SortState): void },
): HTMLElement {
  const column = COLUMNS.find((c) => c.key === opts.sort.key)!;
  // one unit for the whole throughput column, so that its numbers compare at a glance
  const unit = fmt.rateUnit(Math.max(0, ...rows.map((r) => r.count / opts.seconds)));
  // (but for a rate that would read 0.00 in it: req/min or req/h, as that rate needs)
  const format = (c: Column, v: number): string => (c.key !== 'throughput' ? c.format(v) : v > 0 && /^0(?:\.0+)? /.test(fmt.rate(v, unit)) ? fmt.rate(v) : fmt.rate(v, unit));
  const cell = (c: Column, r: EndpointRow): HTMLElement => {
    const v = c.value(r, opts.seconds);
    if (v === null) return h('td', { class: 'num muted', 'data-col': c.key, title: fmt.UNKNOWN_WHY }, '—');
    return h('td', { class: c.key === 'errors' && r.errors > 0 ? 'num bad' : 'num', 'data-col': c.key }, format(c, v as number));
  };
  const sorted = [...rows].sort((a, b) => {
    const x = column.value(a, opts.seconds);
    const y = column.value(b, opts.seconds);
    const order = typeof x === 'string' || typeof y === 'string' ? String(x).localeCompare(String(y)) : (x ?? -Infinity) - (y ?? -Infinity) || 0;
    return opts.sort.ascending ? order : -order;
  });
  const header = COLUMNS.map((c) => {
    const active = c.key === opts.sort.key;
    const arrow = active ? (opts.sort.ascending ? ' ▲' : ' ▼') : '';
    const next: SortState = { key: c.key, ascending: active ? !opts.sort.ascending : c.key === 'endpoint' };
    return h(
      'th',
      { class: c.key === 'endpoint' ? 'name' : 'num', 'data-col': c.key, 'aria-sort': active ? (opts.sort.ascending ? 'ascending' : 'descending') : null },
      h('button', { type: 'button', class: 'sort', onclick: () => opts.onSort(next) }, c.title, arrow),
    );
  });
  const body = sorted.map((r) =>
    h(
      'tr',
      { 'data-endpoint': r.endpoint },
      ...COLUMNS.map((c) =>
        c.key === 'endpoint'
          ? h('td', { class: 'name', 'data-col': c.key }, h('a', { href: opts.link(r.endpoint), title: r.endpoint }, r.endpoint))
          : cell(c, r),
      ),
    ),
  );
  return h('table', { class: 'table endpoints' }, h('thead', {}, h('tr', {}, ...header)), h('tbody', {}, ...body));
}
