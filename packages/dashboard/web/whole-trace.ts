/**
 * One segment tree for a trace that crossed services: every other service's part (its transaction)
 * becomes a row under the segment whose call reached it (the segment's span id is the part's
 * parent span), with that part's own segments under it, all on the root's time axis (ms from the
 * root transaction's start). A part whose caller is not in the trace sits at the top, marked.
 *
 * On the critical path: the root's segments as its agent marked them; another part, and its
 * segments its agent marked, only where the path across services (`trace.path`) goes through it.
 */
import type { Segment, Trace } from './api.js';

type Part = Trace['parts'][number];

export interface WholeTrace {
  segments: Segment[];
  /** the rows that are another service's transaction, by their id in `segments` */
  parts: Map<number, Part>;
  /** the service of each row that is not the root's */
  serviceOf: Map<number, string>;
}

/** One colour per service, in the order they appear in the trace. */
const SERVICE_COLORS = ['#2f6fdf', '#d9822b', '#2aa198', '#8e6cc9', '#b22222', '#2e8b3a', '#7d8590'];

export function serviceColors(parts: Part[]): Map<string, string> {
  const colors = new Map<string, string>();
  for (const p of parts) if (!colors.has(p.service)) colors.set(p.service, SERVICE_COLORS[colors.size % SERVICE_COLORS.length]!);
  return colors;
}

/** The trace's segments with the other services' parts nested in; the root's own segments alone when it has no other part. */
export function wholeTrace(trace: Trace): WholeTrace {
  const parts = trace.parts ?? [];
  const out: WholeTrace = { segments: [], parts: new Map(), serviceOf: new Map() };
  const onPath = new Set((trace.path ?? []).filter((s) => s.kind === 'transaction' && s.spanId !== null).map((s) => s.spanId));
  const bySpan = new Map<string, number>();
  let next = 1;
  // each part's segments, renumbered: ids are per transaction
  const renumbered = parts.map((p, i) => {
    const root = i === 0;
    const offset = p.start - trace.start;
    const ids = new Map(p.segments.map((s) => [s.id, next++]));
    const segments = p.segments.map((s) => {
      const id = ids.get(s.id)!;
      if (s.spanId !== undefined) bySpan.set(s.spanId, id);
      return {
        ...s,
        id,
        parentId: s.parentId === null ? null : (ids.get(s.parentId) ?? null),
        start: s.start + offset,
        end: s.end + offset,
        onCriticalPath: s.onCriticalPath && (root || (p.spanId !== null && onPath.has(p.spanId))),
      };
    });
    return { part: p, segments, offset, row: root ? undefined : next++ };
  });
  for (const { part, segments, offset, row } of renumbered) {
    if (row !== undefined) {
      out.segments.push({
        id: row,
        parentId: part.parentSpanId === null ? null : (bySpan.get(part.parentSpanId) ?? null),
        name: `${part.service} ${part.endpoint}`,
        kind: 'other',
        start: offset,
        end: offset + part.duration,
        onCriticalPath: part.spanId !== null && onPath.has(part.spanId),
      });
      out.parts.set(row, part);
      out.serviceOf.set(row, part.service);
    }
    for (const s of segments) {
      // a root segment without a parent stays at the top; another part's, under its transaction's row
      out.segments.push(row !== undefined && s.parentId === null ? { ...s, parentId: row } : s);
      if (row !== undefined) out.serviceOf.set(s.id, part.service);
    }
  }
  if (parts.length === 0) out.segments = trace.segments;
  return out;
}
