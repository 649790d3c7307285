/**
 * One trace from many services (GET /api/traces/:traceId, GUIDE §3.5): the parts each service's
 * agent sent, joined by their W3C span ids. The root's record stays at the top level, as a
 * one-service trace always was; `parts` lists every part, root first, each with the span it
 * continues; a part whose parent never arrived (its caller's agent did not ship it, or not yet) is
 * kept and said to be an orphan, never dropped.
 */
import type { TraceRecord } from '@loopscope/protocol';
import type { TracePart } from './storage/storage.js';

export interface TracePartSummary {
  service: string;
  instance: string | null;
  endpoint: string;
  spanId: string | null;
  parentSpanId: string | null;
  /** the part names a parent span that no part of the trace has */
  orphan: boolean;
  start: number;
  response: number;
  duration: number;
  cpu: number | null;
  external: number | null;
  blocking: number | null;
  segments: TraceRecord['segments'];
  criticalPath: number[];
}

/** The span ids of every transaction and segment in the parts. */
function knownSpans(parts: TracePart[]): Set<string> {
  const spans = new Set<string>();
  for (const { record } of parts) {
    if (record.spanId !== undefined) spans.add(record.spanId);
    for (const seg of record.segments) if (seg.spanId !== undefined) spans.add(seg.spanId);
  }
  return spans;
}

/** The part the trace started in: the earliest one with no parent among the parts. */
export function rootPart(parts: TracePart[]): TracePart | undefined {
  const spans = knownSpans(parts);
  return parts.find(({ record }) => record.parentSpanId == null || !spans.has(record.parentSpanId)) ?? parts[0];
}

/** The trace as the API answers it: the root's record, and every part (root first). */
export function assembleTrace(parts: TracePart[]): (TraceRecord & { parts: TracePartSummary[] }) | undefined {
  const root = rootPart(parts);
  if (root === undefined) return undefined;
  const spans = knownSpans(parts);
  const ordered = [root, ...parts.filter((p) => p !== root)];
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
      response: r.response,
      duration: r.duration,
      cpu: r.cpu,
      external: r.external,
      blocking: r.blocking,
      segments: r.segments,
      criticalPath: r.criticalPath,
    })),
  };
}
