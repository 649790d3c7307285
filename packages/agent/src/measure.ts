/**
 * The numbers of a finished transaction, from its raw observations (docs/metrics.md defines them):
 *
 * - response: from when the request was ready to when its response finished.
 * - duration: from the same start to the end of its last slice, segment or response.
 * - cpu: the sum of its slices on the event loop.
 * - external: the union of the intervals of its segments of an external kind (and per kind), less
 *   the time it was blocked meanwhile (a callback of its own ready while a call was in flight).
 * - blocking: the time it was ready to run while the loop ran something else.
 *
 * The slices, waits and segment ends are observed by loop/observer.ts; this module only adds them
 * up, and builds the record the rest of loopscope sees. Pure: no clock, no hooks.
 */
import { criticalPath, roundMs, unionLengthOutside, type ExternalByKind, type MetricName, type SegmentKind, type SegmentRecord, type TransactionRecord } from '@loopscope/protocol';
import type { Segment, Transaction } from './transaction.js';

const round = roundMs;

/** duration's end: the latest of its last slice, its response and its segments. */
function lastWorkEnd(tx: Transaction): number {
  let end = tx.lastSliceEnd;
  if (tx.responseEnd > end) end = tx.responseEnd;
  for (const seg of tx.segments) if (seg.end > end) end = seg.end;
  return end;
}

/** The five numbers of a finished transaction (ms), and the times they were measured between. */
export interface Measures extends Record<MetricName, number> {
  /** external time by kind of segment (each kind's own union) */
  externalByKind: ExternalByKind;
  /** when the transaction ended (duration's end), on the now() clock */
  end: number;
  /** when the response finished (or `end` if it never did), on the now() clock */
  responseEnd: number;
}

const NO_EXTERNAL: ExternalByKind = Object.freeze({});

/** The numbers only, without the record (the exporter needs these for every transaction); `closedAt` for one closed early. */
export function measure(tx: Transaction, closedAt?: number): Measures {
  const end = closedAt ?? lastWorkEnd(tx);
  const responseEnd = tx.responseEnd >= 0 ? tx.responseEnd : end;
  let external = 0;
  let externalByKind = NO_EXTERNAL;
  if (tx.segments.length > 0) {
    const spans: Array<[number, number]> = [];
    let kind: SegmentKind | undefined;
    let mixed = false;
    for (const seg of tx.segments) {
      if (!seg.external) continue;
      pushSpans(spans, seg, end);
      if (kind === undefined) kind = seg.kind;
      else if (seg.kind !== kind) mixed = true;
    }
    external = round(unionLengthOutside(spans, tx.waits));
    if (kind !== undefined) externalByKind = mixed ? unionByKind(tx, end) : { [kind]: external };
  }
  return {
    end,
    responseEnd,
    response: round(responseEnd - tx.start),
    duration: round(end - tx.start),
    cpu: round(tx.cpu),
    external,
    externalByKind,
    blocking: round(tx.blocking),
  };
}

/**
 * A segment's external intervals: its span, or for a burst of file-system or name-resolution
 * operations (io.ts) each operation's own (the burst's span holds the code between them); one
 * still in flight at `end` counts to `end`.
 */
function pushSpans(spans: Array<[number, number]>, seg: Segment, end: number): void {
  const io = seg.io;
  if (io === null || seg.end < 0) {
    spans.push([seg.start, seg.end >= 0 ? seg.end : end]);
    return;
  }
  for (let i = 0; i < io.parts.length; i += 2) spans.push([io.parts[i]!, io.parts[i + 1]!]);
}

function unionByKind(tx: Transaction, end: number): ExternalByKind {
  const byKind = new Map<SegmentKind, Array<[number, number]>>();
  for (const seg of tx.segments) {
    if (!seg.external) continue;
    let list = byKind.get(seg.kind);
    if (list === undefined) byKind.set(seg.kind, (list = []));
    pushSpans(list, seg, end);
  }
  const out: ExternalByKind = {};
  for (const [kind, spans] of byKind) out[kind] = round(unionLengthOutside(spans, tx.waits));
  return out;
}

/** The finished transaction as the rest of loopscope sees it, from its measures. */
export function buildRecord(tx: Transaction, service: string, m: Measures): TransactionRecord {
  const { end } = m;
  const segments: SegmentRecord[] = [];
  for (const seg of tx.segments) segments.push(segmentRecord(seg, tx.start, seg.end >= 0 ? seg.end : end));
  // for HTTP transactions the path ends at the response: later work did not make the user wait
  const pathEnd = (tx.isHttp ? m.responseEnd : end) - tx.start;
  const path = criticalPath(segments.map((s, i) => ({ id: s.id, parentId: s.parentId, start: s.start, end: s.end, awaited: tx.segments[i]!.awaited })), pathEnd);
  const onPath = new Set(path);
  for (const s of segments) s.onCriticalPath = onPath.has(s.id);
  return {
    traceId: tx.traceId,
    spanId: tx.spanId,
    parentSpanId: tx.parentSpanId,
    service,
    endpoint: tx.endpoint,
    start: tx.startEpoch,
    status: tx.status,
    error: tx.error,
    ...(tx.errorMessage !== undefined ? { errorMessage: tx.errorMessage } : {}),
    ...(tx.aborted ? { aborted: true } : {}),
    response: m.response,
    duration: m.duration,
    cpu: m.cpu,
    external: m.external,
    externalByKind: { ...m.externalByKind },
    blocking: m.blocking,
    segments,
    criticalPath: path,
    truncated: tx.truncated,
    droppedSegments: tx.droppedSegments,
    ...(tx.slices !== null ? { slices: timeline(tx.slices, tx.start) } : {}),
    ...(tx.waits !== null ? { waits: timeline(tx.waits, tx.start) } : {}),
  };
}

/** start, end pairs on the now() clock → [start, end] in ms from the transaction's start. */
function timeline(flat: number[], txStart: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < flat.length; i += 2) out.push([round(flat[i]! - txStart), round(flat[i + 1]! - txStart)]);
  return out;
}

function segmentRecord(seg: Segment, txStart: number, end: number): SegmentRecord {
  const rec: SegmentRecord = {
    id: seg.id,
    parentId: seg.parentId,
    spanId: seg.spanId,
    name: seg.io !== null && seg.io.ops > 1 ? `${seg.name} ×${seg.io.ops}` : seg.name,
    kind: seg.kind,
    start: round(seg.start - txStart),
    end: round(end - txStart),
    onCriticalPath: false,
  };
  if (seg.error !== undefined) rec.error = seg.error;
  if (seg.end < 0) rec.unfinished = true;
  if (seg.operation !== undefined) rec.operation = seg.operation;
  if (seg.target !== undefined) rec.target = seg.target;
  if (seg.statement !== undefined) rec.statement = seg.statement;
  return rec;
}
