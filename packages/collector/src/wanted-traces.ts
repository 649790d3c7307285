/**
 * Whole traces across services (docs/instrumentation.md, "Whole traces across services"): which traces the collector asks the agents for.
 * Each agent ships the traces it chose on its own and holds its other parts of traces that cross
 * services for a few seconds (agent: export/held.ts). When a stored trace is missing a part (a
 * call of one of its parts that went to another service has no part under it, or a part's caller
 * has none), its id is wanted for WANT_MS: every instance's next answer to a batch names the ids
 * that became wanted since its previous one, and the agents that hold a part of it ship it.
 */
import type { TraceRecord } from '@loopscope/protocol';
import type { TracePart } from './storage/storage.js';

export const WANT_MS = 10_000;
/** the most trace ids wanted at once (the oldest go first) and named in one answer */
export const MAX_WANTED = 10_000;
export const MAX_WANT_PER_ANSWER = 1000;

/** Segment kinds whose calls carry the trace on (http, https, fetch; message publishes). */
const CARRYING = new Set(['http', 'queue']);

/** Whether a part takes part in a trace across services: it continued a caller, or called out carrying its trace. */
export function crossesServices(record: TraceRecord): boolean {
  return record.parentSpanId != null || record.segments.some((s) => s.spanId !== undefined && CARRYING.has(s.kind));
}

/** Whether the trace misses a part: a carrying call with nothing under it, or a part whose caller is not there. */
export function incomplete(parts: readonly TracePart[]): boolean {
  const parents = new Set<string>();
  const spans = new Set<string>();
  for (const { record } of parts) {
    if (record.parentSpanId != null) parents.add(record.parentSpanId);
    if (record.spanId !== undefined) spans.add(record.spanId);
    for (const s of record.segments) if (s.spanId !== undefined) spans.add(s.spanId);
  }
  for (const { record } of parts) {
    if (record.parentSpanId != null && !spans.has(record.parentSpanId)) return true;
    for (const s of record.segments) if (s.spanId !== undefined && CARRYING.has(s.kind) && !parents.has(s.spanId)) return true;
  }
  return false;
}

export class WantedTraces {
  /** trace id → when it became wanted and its number in the order they did (insertion order is that order) */
  private readonly since = new Map<string, { at: number; seq: number }>();
  private seq = 0;
  /** per sending instance: the number of the last id it was told of */
  private readonly told = new Map<string, number>();

  /** The trace is missing a part (true) or is whole (false), as of `now`. */
  note(traceId: string, missing: boolean, now: number): void {
    // still missing a part: asked for already (the agents remember what they were asked)
    if (missing && this.since.has(traceId)) return;
    this.since.delete(traceId);
    if (!missing) return;
    if (this.since.size >= MAX_WANTED) this.since.delete(this.since.keys().next().value!);
    this.since.set(traceId, { at: now, seq: ++this.seq });
  }

  /** The ids to name in the answer to `instance`: wanted since its previous answer (all still wanted ones, the first time). */
  forAnswer(instance: string, now: number): string[] {
    const last = this.told.get(instance) ?? 0;
    this.told.delete(instance);
    this.told.set(instance, this.seq);
    if (this.told.size > MAX_WANTED) this.told.delete(this.told.keys().next().value!);
    const out: string[] = [];
    for (const [id, { at, seq }] of this.since) {
      if (now - at > WANT_MS) {
        this.since.delete(id);
        continue;
      }
      if (seq > last && out.length < MAX_WANT_PER_ANSWER) out.push(id);
    }
    return out;
  }
}
