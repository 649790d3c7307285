/**
 * One trace from many services (GET /api/traces/:traceId, GUIDE §3.5): the parts each service's
 * agent sent, joined by their W3C span ids. The root's record stays at the top level, as a
 * one-service trace always was; `parts` lists every part, root first, each with the span it
 * continues; a part whose parent never arrived (its caller's agent did not ship it, or not yet) is
 * kept and said to be an orphan, never dropped. `path` is the critical path across services: where
 * the limiting call of one service was a call to another, it goes on inside the callee's part.
 */
import { MAX_TRACE_PARTS, type PathStep, type TraceAnswer, type TraceRecord } from '@loopscope/protocol';
import type { TracePart } from './storage/storage.js';

/** The span ids of every transaction and segment in the parts. */
function knownSpans(parts: TracePart[]): Set<string> {
  const spans = new Set<string>();
  for (const { record } of parts) {
    if (record.spanId !== undefined) spans.add(record.spanId);
    for (const seg of record.segments) if (seg.spanId !== undefined) spans.add(seg.spanId);
  }
  return spans;
}

/**
 * The part the trace started in: the earliest with no parent at all; failing that (its first
 * service shipped no part of it, or not yet), the earliest whose parent is not among the parts.
 * (Parts come in start order, but starts from different processes are bounds, not exact: a callee's
 * agent dates a request that came while its loop was busy from the loop's last poll, which can be
 * before its caller began.)
 */
export function rootPart(parts: TracePart[]): TracePart | undefined {
  const spans = knownSpans(parts);
  return parts.find(({ record }) => record.parentSpanId == null) ?? parts.find(({ record }) => !spans.has(record.parentSpanId!)) ?? parts[0];
}

/** The parts root first, each after the part whose span it continues (siblings in start order), then any others. */
function treeOrder(parts: TracePart[], root: TracePart): TracePart[] {
  const owner = new Map<string, TracePart>();
  for (const p of parts) {
    if (p.record.spanId !== undefined) owner.set(p.record.spanId, p);
    for (const seg of p.record.segments) if (seg.spanId !== undefined) owner.set(seg.spanId, p);
  }
  const children = new Map<TracePart, TracePart[]>();
  for (const p of parts) {
    const parent = p.record.parentSpanId == null ? undefined : owner.get(p.record.parentSpanId);
    if (parent === undefined || parent === p) continue;
    const list = children.get(parent);
    if (list === undefined) children.set(parent, [p]);
    else list.push(p);
  }
  const out: TracePart[] = [];
  const seen = new Set<TracePart>();
  // depth first, without recursion (a 100-part chain), and each part once (a hostile cycle)
  for (const start of [root, ...parts]) {
    const stack = [start];
    while (stack.length > 0) {
      const p = stack.pop()!;
      if (seen.has(p)) continue;
      seen.add(p);
      out.push(p);
      stack.push(...(children.get(p) ?? []).toReversed());
    }
  }
  return out;
}

/** How far the path descends from service to service (a loop of calls in a hostile trace ends there). */
const MAX_DEPTH = 32;
const round = (ms: number): number => Math.round(ms * 1000) / 1000;

/** Where a part's path ends, in ms from its start: an HTTP transaction's at its response, another's at its end. */
const pathEnd = (r: TraceRecord): number => (r.status > 0 ? r.response : r.duration);

/**
 * The critical path across services from `part`: its own critical path, each call on it replaced
 * by the callee's path when the callee's part is there (the one of them that ended last). The
 * callee's steps are placed inside the call, and the steps follow each other (one never starts
 * before the previous one ended). Both ends of a call and of a part are bounds, not exact: a
 * request or an answer that arrived while a loop was busy is dated from that loop's last poll, so a
 * callee's part can seem to start before the call (unless the caller's agent said when it called)
 * and to end after the caller had its answer (a response is over when the kernel took its last
 * bytes, which Node can report an iteration late). The caller's view wins: the callee's steps are
 * cut to the call. Only a part that lies wholly outside its call (two machines whose clocks
 * disagree) is moved, to end with the call. The call's remainder before and after the callee's part is the caller's (the
 * network, and the callee's queue before its server saw the request), under the call's name.
 */
function pathFrom(part: TracePart, children: Map<string, TracePart>, shift: number, within: { from: number; to: number }, depth: number, out: PathStep[]): void {
  const r = part.record;
  const t0 = r.start + shift;
  const step = (spanId: string | null | undefined, name: string, kind: string, from: number, to: number): void => {
    const previous = out.length > 0 ? out[out.length - 1]! : undefined;
    const start = Math.max(from, within.from, previous?.end ?? -Infinity);
    const end = Math.min(to, within.to);
    if (end - start <= 0.0005) return;
    // the same step again right after itself (around a call that took no time): one step
    if (previous !== undefined && previous.service === r.service && previous.kind === kind && previous.spanId === (spanId ?? null) && round(start) === previous.end) previous.end = round(end);
    else out.push({ service: r.service, spanId: spanId ?? null, name, kind, start: round(start), end: round(end) });
  };
  const byId = new Map(r.segments.map((s) => [s.id, s]));
  let cursor = 0;
  for (const id of r.criticalPath) {
    const s = byId.get(id);
    if (s === undefined || s.end <= cursor) continue;
    const from = Math.max(s.start, cursor);
    step(r.spanId, r.endpoint, 'transaction', t0 + cursor, t0 + from);
    const child = s.spanId === undefined || depth >= MAX_DEPTH ? undefined : children.get(s.spanId);
    if (child === undefined) step(s.spanId, s.name, s.kind, t0 + from, t0 + s.end);
    else {
      const callStart = t0 + from;
      const callEnd = t0 + s.end;
      const length = pathEnd(child.record);
      const childEnd = child.record.start + length;
      const moved = childEnd <= callStart || child.record.start >= callEnd ? callEnd - childEnd : 0;
      step(s.spanId, s.name, s.kind, callStart, child.record.start + moved);
      pathFrom(child, children, moved, { from: Math.max(within.from, callStart), to: Math.min(within.to, callEnd) }, depth + 1, out);
      step(s.spanId, s.name, s.kind, childEnd + moved, callEnd);
    }
    cursor = s.end;
  }
  step(r.spanId, r.endpoint, 'transaction', t0 + cursor, t0 + Math.max(cursor, pathEnd(r)));
}

/** The critical path across services, from the root part. */
export function crossServicePath(parts: TracePart[], root: TracePart): PathStep[] {
  const children = new Map<string, TracePart>();
  for (const p of parts) {
    const parent = p.record.parentSpanId;
    if (parent == null || p === root) continue;
    const other = children.get(parent);
    // called twice under one span (a retry the agent did not see): the one that ended last
    if (other === undefined || p.record.start + pathEnd(p.record) > other.record.start + pathEnd(other.record)) children.set(parent, p);
  }
  const out: PathStep[] = [];
  pathFrom(root, children, 0, { from: -Infinity, to: Infinity }, 0, out);
  return out;
}

/** The trace as the API answers it: the root's record, every part (root first) and the path across them. */
export function assembleTrace(parts: TracePart[]): TraceAnswer | undefined {
  const root = rootPart(parts);
  if (root === undefined) return undefined;
  const spans = knownSpans(parts);
  const ordered = treeOrder(parts, root);
  return {
    ...root.record,
    parts: ordered.map(({ record: r, instance }) => ({
      service: r.service,
      instance,
      endpoint: r.endpoint,
      spanId: r.spanId ?? null,
      parentSpanId: r.parentSpanId ?? null,
      orphan: r.parentSpanId != null && !spans.has(r.parentSpanId),
      start: r.start,
      status: r.status,
      error: r.error,
      ...(r.errorMessage !== undefined ? { errorMessage: r.errorMessage } : {}),
      response: r.response,
      duration: r.duration,
      cpu: r.cpu,
      external: r.external,
      blocking: r.blocking,
      segments: r.segments,
      criticalPath: r.criticalPath,
    })),
    path: crossServicePath(parts, root),
    atPartLimit: parts.length >= MAX_TRACE_PARTS,
  };
}
