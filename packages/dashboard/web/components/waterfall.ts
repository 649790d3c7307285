/**
 * A trace's waterfall: the transaction and each of its segments as a bar on one time axis (ms from
 * the transaction start), children under their parent, coloured by kind. Segments on the critical
 * path — the chain that decided when the transaction finished — get a red outline, as in the
 * diagrams of Amy Boyle's talk "Monitoring Asynchronous Applications". Hover shows a segment's
 * numbers; a click pins them in the details panel.
 *
 * A trace that crossed services draws every service's part under the segment that called it, with
 * that part's own segments under it (whole-trace.ts), a colour per service; the critical path goes
 * on into a part only where the path across services does.
 *
 * Above the segments, the "event loop" lane: when the transaction's own code ran (its cpu slices)
 * and when it was ready but the loop ran other work (its waits, hatched yellow as the talk draws
 * blocking; the wait before its first slice, "queued before start", in a darker yellow). A wait
 * links to what held the loop then (a long task, or another request), when the collector knows.
 */
import type { LoopHolder, Segment, Trace, TraceHolders } from '../api.js';
import { COLORS } from '../colors.js';
import { h, replace } from '../dom.js';
import * as fmt from '../format.js';
import { QUEUED, QUEUED_COLOR, queuedBeforeStart, type Interval } from '../partition.js';
import { serviceColors, wholeTrace, type WholeTrace } from '../whole-trace.js';

/** Beyond this many rows the page would crawl; the rest are counted, not drawn. */
const MAX_ROWS = 3000;

interface Placed {
  segment: Segment;
  depth: number;
}

/** Segments in tree order (each parent followed by its children, siblings by start), iteratively: a trace can hold 10 000 segments. */
export function treeOrder(segments: Segment[]): Placed[] {
  const ids = new Set(segments.map((s) => s.id));
  const children = new Map<number | null, Segment[]>();
  for (const s of segments) {
    const parent = s.parentId !== null && ids.has(s.parentId) ? s.parentId : null;
    const list = children.get(parent) ?? [];
    list.push(s);
    children.set(parent, list);
  }
  for (const list of children.values()) list.sort((a, b) => a.start - b.start || a.id - b.id);
  const out: Placed[] = [];
  const stack: Placed[] = (children.get(null) ?? []).map((segment) => ({ segment, depth: 0 })).reverse();
  while (stack.length > 0) {
    const next = stack.pop()!;
    out.push(next);
    const kids = children.get(next.segment.id) ?? [];
    for (let i = kids.length - 1; i >= 0; i--) stack.push({ segment: kids[i]!, depth: next.depth + 1 });
  }
  return out;
}

/** Round tick spacing (1, 2 or 5 × 10^k ms) for about six ticks over `total`. */
export function tickStep(total: number): number {
  const raw = Math.max(total, 1e-3) / 6;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw)!;
}

const kindColor = (kind: string): string => (kind in COLORS ? COLORS[kind as keyof typeof COLORS] : COLORS.other);

/** A database, cache or queue call: what, where, and the statement (values already replaced by `?` in the agent). */
function callFacts(s: Segment): Array<[string, string]> {
  const rows: Array<[string, string]> = [];
  if (s.operation !== undefined) rows.push(['operation', s.operation]);
  if (s.target !== undefined) rows.push(['target', s.target]);
  if (s.statement !== undefined) rows.push(['statement', s.statement]);
  return rows;
}

/** A row that is another service's transaction: its part of the request, as its agent measured it. */
function partFacts(p: Trace['parts'][number], s: Segment): Array<[string, string]> {
  return [
    ['service', p.instance ? `${p.service} (${p.instance})` : p.service],
    ['endpoint', p.endpoint],
    ['status', p.status === 0 ? 'not HTTP' : String(p.status)],
    ...(p.error ? [['error', p.errorMessage ?? 'failed'] as [string, string]] : []),
    ['start', `${fmt.ms(s.start)} after the root transaction's start`],
    ['response', fmt.ms(p.response)],
    ['duration', fmt.ms(p.duration)],
    ['cpu', fmt.insideMs(p.cpu)],
    ['external', fmt.insideMs(p.external)],
    ['blocking', fmt.insideMs(p.blocking)],
    ['critical path', s.onCriticalPath ? 'yes: the path across services goes through it' : 'no'],
    ...(p.orphan ? [['caller', 'not in the trace: its part was not shipped (or not yet)'] as [string, string]] : []),
  ];
}

function facts(s: Segment, byId: Map<number, Segment>, whole: WholeTrace): Array<[string, string]> {
  const part = whole.parts.get(s.id);
  if (part) return partFacts(part, s);
  const parent = s.parentId === null ? undefined : byId.get(s.parentId);
  const service = whole.serviceOf.get(s.id);
  return [
    ...(service !== undefined ? [['service', service] as [string, string]] : []),
    ['name', s.name],
    ['kind', s.kind],
    ...callFacts(s),
    ['start', `${fmt.ms(s.start)} after the ${service !== undefined ? "root transaction's" : 'transaction'} start`],
    ['end', fmt.ms(s.end)],
    ['duration', fmt.ms(s.end - s.start)],
    ['critical path', s.onCriticalPath ? 'yes: it decided when the transaction finished' : 'no'],
    ...(parent ? [['parent', parent.name] as [string, string]] : []),
    ...(s.error !== undefined ? [['error', s.error] as [string, string]] : []),
    ...(s.unfinished ? [['unfinished', 'still open when the transaction was closed'] as [string, string]] : []),
  ];
}

const factList = (rows: Array<[string, string]>): HTMLElement => h('dl', { class: 'facts' }, ...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));

/** "15.0 → 80.0 ms (65.0 ms)" */
export const span = ([start, end]: Interval): string => `${fmt.ms(start).replace(/ ms$/, '')} → ${fmt.ms(end)} (${fmt.ms(end - start)})`;

/** What held the loop, in words: "long task of GET /report in render (app.js:1:1), 115 ms: 15.0 ms of this wait". */
export function describeHolder(holder: LoopHolder): string {
  const share = `${fmt.ms(holder.overlap)} of this wait`;
  if (holder.kind === 'trace') return `${holder.endpoint} (another request): ${share}`;
  const where = holder.location ? ` (${holder.location})` : '';
  return `long task of ${holder.endpoint ?? 'no transaction'} in ${holder.function || '(anonymous)'}${where}, ${fmt.ms(holder.ms)}: ${share}`;
}

/** The lane's options: what held the loop in each wait (the record's order), and the address a holder links to. */
export interface LoopLane {
  holders?: TraceHolders | undefined;
  linkOf: (holder: LoopHolder) => string;
}

/** The waits shown in the "who held the loop" list: the longest ones that have a holder. */
const HELD_LISTED = 10;

/** The "event loop" row (cpu slices and waits) and the list of who held the loop in the longest waits; undefined for a trace without them. */
function loopLane(trace: Trace, pct: (ms: number) => string, lane: LoopLane | undefined): { row: HTMLElement; held: HTMLElement | null } | undefined {
  if (trace.slices === undefined && trace.waits === undefined) return undefined;
  const slices = trace.slices ?? [];
  const waits = trace.waits ?? [];
  const queuedEnd = queuedBeforeStart(trace).reduce((end, [, e]) => Math.max(end, e), 0);
  const box = ([start, end]: Interval, color: string): string => `left:${pct(start)};width:max(1px, calc(${pct(end)} - ${pct(start)}));--c:${color}`;
  const holdersOf = (i: number): LoopHolder[] => {
    const w = lane?.holders?.waits[i];
    return w && w.start === waits[i]![0] && w.end === waits[i]![1] ? w.holders : [];
  };
  const items = [
    ...slices.map((s) => h('span', { class: 'wf-slice', style: box(s, COLORS.cpu), title: `cpu ${span(s)}: its own code ran`, 'data-start': s[0], 'data-end': s[1] })),
    ...waits.map((w, i) => {
      const queued = w[0] < queuedEnd;
      const holders = holdersOf(i);
      const first = holders[0];
      const title = [
        queued ? `${QUEUED} ${span(w)}: the request waited before the server ran it` : `blocked ${span(w)}: ready to run, it waited for the loop`,
        ...(holders.length > 0 ? ['the loop ran:', ...holders.map((x) => `• ${describeHolder(x)}`)] : lane?.holders ? ['no long task or kept trace held the loop then'] : []),
      ].join('\n');
      const attrs = {
        class: `wf-wait hatched${queued ? ' queued' : ''}`,
        style: box(w, queued ? QUEUED_COLOR : COLORS.blocking),
        title,
        'data-start': w[0],
        'data-end': w[1],
        'data-holder': first ? (first.kind === 'trace' ? `trace ${first.traceId}` : `long-task ${first.at}`) : null,
      };
      return first && lane ? h('a', { ...attrs, href: lane.linkOf(first) }) : h('span', attrs);
    }),
  ];
  const row = h(
    'div',
    { class: 'wf-row wf-loop', 'data-lane': 'loop' },
    h('div', { class: 'wf-name', title: 'when its own code ran on the event loop (cpu) and when it was ready but waited for the loop (blocking)' }, (trace.parts?.length ?? 0) > 1 && trace.service ? `event loop (${trace.service})` : 'event loop'),
    h('div', { class: 'wf-track' }, ...items),
  );
  const held = waits
    .map((w, i) => ({ w, holders: holdersOf(i) }))
    .filter((x) => x.holders.length > 0)
    .sort((a, b) => b.w[1] - b.w[0] - (a.w[1] - a.w[0]))
    .slice(0, HELD_LISTED);
  return {
    row,
    held:
      held.length === 0 || !lane
        ? null
        : h(
          'div',
          { class: 'wf-held' },
          h('h4', {}, 'Who held the loop while it waited'),
          h(
            'ul',
            {},
            ...held.map(({ w, holders }) =>
              h(
                'li',
                { 'data-wait': `${w[0]}-${w[1]}` },
                  `${w[0] < queuedEnd ? 'Queued' : 'Blocked'} ${span(w)}: `,
                  ...holders.flatMap((x, i) => [i > 0 ? ' · ' : '', h('a', { href: lane.linkOf(x) }, describeHolder(x))]),
              ),
            ),
          ),
        ),
  };
}

export function waterfall(trace: Trace, lane?: LoopLane): HTMLElement {
  const whole = wholeTrace(trace);
  const placed = treeOrder(whole.segments);
  const byId = new Map(whole.segments.map((s) => [s.id, s]));
  const colorOf = serviceColors(trace.parts ?? []);
  const timeline = [...(trace.slices ?? []), ...(trace.waits ?? [])].map(([, e]) => e);
  const total = Math.max(trace.duration, trace.response, ...whole.segments.map((s) => s.end), ...timeline, 1e-3);
  const pct = (ms: number): string => `${(Math.min(Math.max(ms, 0), total) / total) * 100}%`;
  const step = tickStep(total);

  const ticks: HTMLElement[] = [];
  for (let t = 0; t <= total + 1e-9; t += step) ticks.push(h('span', { class: 'wf-tick', style: `left:${pct(t)}` }, fmt.ms(t)));

  const bar = (cls: string, start: number, end: number, color: string, text: string): HTMLElement =>
    h('div', { class: cls, style: `left:${pct(start)};width:max(2px, calc(${pct(end)} - ${pct(start)}));--c:${color}` }, h('span', { class: 'wf-bar-text' }, text));

  const transactionRow = h(
    'div',
    { class: 'wf-row wf-transaction' },
    h('div', { class: 'wf-name', title: trace.endpoint }, colorOf.size > 1 && trace.service ? `${trace.service} ${trace.endpoint}` : trace.endpoint),
    h(
      'div',
      { class: 'wf-track' },
      // the whole duration, with the part until the response was sent drawn darker
      bar('wf-bar wf-duration', 0, trace.duration, COLORS.duration, `response ${fmt.ms(trace.response)} · duration ${fmt.ms(trace.duration)}`),
      h('div', { class: 'wf-bar wf-until-response', style: `left:0;width:${pct(trace.response)};--c:${COLORS.duration}` }),
      h('span', { class: 'wf-response', style: `left:${pct(trace.response)}`, title: `response sent at ${fmt.ms(trace.response)}` }),
    ),
  );
  const rows = placed.slice(0, MAX_ROWS).map(({ segment: s, depth }) => {
    const part = whole.parts.get(s.id);
    const service = whole.serviceOf.get(s.id);
    const color = service === undefined ? undefined : colorOf.get(service);
    return h(
      'div',
      {
        class: `wf-row${part ? ' wf-part' : ''}${s.onCriticalPath ? ' critical' : ''}${s.error !== undefined || part?.error ? ' failed' : ''}`,
        'data-segment': s.id,
        'data-service': service ?? null,
        style: color ? `--s:${color}` : null,
        tabindex: 0,
      },
      h(
        'div',
        { class: 'wf-name', style: `padding-left:${0.5 + Math.min(depth, 12) * 1}rem`, title: s.name },
        part ? h('span', { class: 'swatch', style: `--c:${color}` }) : null,
        part ? ' ' : null,
        s.name,
        part?.orphan ? h('span', { class: 'tag orphan' }, 'caller unknown') : null,
      ),
      h(
        'div',
        { class: 'wf-track' },
        part
          ? bar('wf-bar', s.start, s.end, color!, `${part.service}: response ${fmt.ms(part.response)} · cpu ${fmt.insideMs(part.cpu)} · blocking ${fmt.insideMs(part.blocking)}`)
          : bar('wf-bar', s.start, s.end, kindColor(s.kind), fmt.ms(s.end - s.start)),
      ),
    );
  });

  const loop = loopLane(trace, pct, lane);
  const details = h('div', { class: 'wf-details muted' }, 'Click a segment for its details.');
  const tooltip = h('div', { class: 'tooltip', hidden: true });
  const rowsBox = h('div', { class: 'wf-rows' }, transactionRow, loop?.row, ...rows);
  const segmentOf = (e: Event): Segment | undefined => {
    const row = (e.target as Element).closest<HTMLElement>('[data-segment]');
    return row ? byId.get(Number(row.dataset['segment'])) : undefined;
  };
  let selected: Segment | undefined;
  rowsBox.addEventListener('mousemove', (e) => {
    const s = segmentOf(e);
    // (the selected segment's facts are in the details panel already)
    if (!s || s === selected) return void (tooltip.hidden = true);
    replace(tooltip, factList(facts(s, byId, whole).slice(0, 9 + callFacts(s).length)));
    tooltip.hidden = false;
    tooltip.style.left = `${e.clientX + 14}px`;
    tooltip.style.top = `${e.clientY + 14}px`;
    // never over the details panel: above the cursor when below it would cover the panel
    const tip = tooltip.getBoundingClientRect();
    const panel = details.getBoundingClientRect();
    const covers = tip.left < panel.right && tip.right > panel.left && tip.top < panel.bottom && tip.bottom > panel.top;
    if (covers && !details.classList.contains('muted')) tooltip.style.top = `${Math.max(0, e.clientY - 14 - tip.height)}px`;
  });
  rowsBox.addEventListener('mouseleave', () => (tooltip.hidden = true));
  const select = (e: Event): void => {
    const s = segmentOf(e);
    if (!s) return;
    for (const r of rowsBox.querySelectorAll('.selected')) r.classList.remove('selected');
    (e.target as Element).closest('[data-segment]')!.classList.add('selected');
    selected = s;
    tooltip.hidden = true;
    details.classList.remove('muted');
    replace(details, h('h4', {}, whole.parts.has(s.id) ? 'Service' : 'Segment'), factList(facts(s, byId, whole)));
  };
  rowsBox.addEventListener('click', select);
  rowsBox.addEventListener('keydown', (e) => (e.key === 'Enter' || e.key === ' ') && select(e));

  const legend = h(
    'div',
    { class: 'legend' },
    ...(loop
      ? [
          h('span', { class: 'legend-item' }, h('span', { class: 'swatch', style: `--c:${COLORS.cpu}` }), 'cpu (its code ran)'),
          h('span', { class: 'legend-item' }, h('span', { class: 'swatch hatched', style: `--c:${COLORS.blocking}` }), 'blocked (waited for the loop)'),
          queuedBeforeStart(trace).length > 0 ? h('span', { class: 'legend-item' }, h('span', { class: 'swatch hatched', style: `--c:${QUEUED_COLOR}` }), QUEUED) : null,
        ]
      : []),
    ...(colorOf.size > 1 ? [...colorOf].map(([service, c]) => h('span', { class: 'legend-item', 'data-legend-service': service }, h('span', { class: 'swatch', style: `--c:${c}` }), service)) : []),
    ...[...new Set(whole.segments.filter((s) => !whole.parts.has(s.id)).map((s) => s.kind))].map((k) => h('span', { class: 'legend-item' }, h('span', { class: 'swatch', style: `--c:${kindColor(k)}` }), k)),
    h('span', { class: 'legend-item' }, h('span', { class: 'swatch critical' }), 'critical path'),
    h('span', { class: 'legend-item' }, h('span', { class: 'swatch response' }), 'response sent'),
  );
  const hidden = placed.length - rows.length;
  const critical = trace.segments.filter((s) => s.onCriticalPath);
  const criticalMs = critical.reduce((sum, s) => sum + (s.end - s.start), 0);
  return h(
    'section',
    { class: 'card waterfall' },
    h('h3', {}, 'Timeline'),
    trace.segments.length > 0
      ? h('p', { class: 'muted critical-summary' }, `${fmt.count(critical.length)} of ${fmt.counted(trace.segments.length, 'segment')} on the critical path: ${fmt.ms(criticalMs)} of the ${fmt.ms(trace.duration)} duration.`)
      : null,
    legend,
    h('div', { class: 'wf-axis' }, h('div', { class: 'wf-name' }), h('div', { class: 'wf-track' }, ...ticks)),
    rowsBox,
    hidden > 0 ? h('p', { class: 'muted' }, `${fmt.counted(hidden, 'more segment')} ${hidden === 1 ? 'is' : 'are'} not drawn.`) : null,
    trace.segments.length === 0 ? h('p', { class: 'muted' }, 'This transaction made no external calls: it has no segments.') : null,
    !loop && trace.cpu !== null
      ? h('p', { class: 'muted', 'data-no-lane': '' }, 'This trace lists no slices or waits (sent by an older agent): its cpu and blocking are known as totals only.')
      : null,
    loop?.held,
    // (nothing to click on a trace without segments)
    whole.segments.length > 0 ? details : null,
    tooltip,
  );
}
