/**
 * Stored traces as OTLP spans (GUIDE §3.6, docs/opentelemetry.md, "OTLP out"): a transaction is a
 * server span of its service, each segment a client span (an internal one for kind `other`) under
 * the transaction or the segment it ran in, with loopscope's numbers as attributes:
 * `loopscope.cpu_ms`, `loopscope.blocking_ms`, `loopscope.external_ms` (absent when unknown),
 * `loopscope.response_ms`, and `loopscope.critical_path` on each segment. The shapes are those of
 * ExportTraceServiceRequest as protobufjs takes them (ids as bytes, times as ns).
 */
import { createHash } from 'node:crypto';
import type { TraceRecord } from '@loopscope/protocol';
import { SpanKind, STATUS_ERROR } from './decode.js';

type Value = { stringValue: string } | { intValue: number } | { doubleValue: number } | { boolValue: boolean };
export interface KeyValue {
  key: string;
  value: Value;
}
export interface PbSpan {
  traceId: Buffer;
  spanId: Buffer;
  parentSpanId?: Buffer;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: KeyValue[];
  status?: { code: number; message?: string };
}

const attr = (key: string, value: string | number | boolean): KeyValue => ({
  key,
  value: typeof value === 'string' ? { stringValue: value } : typeof value === 'boolean' ? { boolValue: value } : Number.isInteger(value) ? { intValue: value } : { doubleValue: value },
});

/** A trace id of OTLP's 16 bytes: loopscope's are 32 hex digits; an older or foreign one (16-64) is padded or cut. */
export const traceIdBytes = (id: string): Buffer => Buffer.from(id.length >= 32 ? id.slice(0, 32) : id.padStart(32, '0'), 'hex');

/** A span id for a record or segment sent without one (agents before trace context): the same every time. */
const derivedSpanId = (...parts: Array<string | number>): Buffer => createHash('sha256').update(parts.join('\n')).digest().subarray(0, 8);

/** ms since the epoch (with µs) as ns, a decimal string: a double of ns would lose the last digits. */
export const msToNs = (ms: number): string => (BigInt(Math.round(ms * 1000)) * 1000n).toString();

/** The spans of one stored transaction. */
export function spansOf(r: TraceRecord): PbSpan[] {
  const traceId = traceIdBytes(r.traceId);
  const own = r.spanId !== undefined ? Buffer.from(r.spanId, 'hex') : derivedSpanId(r.traceId, r.service, r.start);
  const attributes = [attr('loopscope.response_ms', r.response)];
  if (r.cpu !== null) attributes.push(attr('loopscope.cpu_ms', r.cpu));
  if (r.external !== null) attributes.push(attr('loopscope.external_ms', r.external));
  if (r.blocking !== null) attributes.push(attr('loopscope.blocking_ms', r.blocking));
  if (r.status > 0) attributes.push(attr('http.response.status_code', r.status));
  if (r.aborted === true) attributes.push(attr('loopscope.aborted', true));
  const transaction: PbSpan = {
    traceId,
    spanId: own,
    ...(r.parentSpanId ? { parentSpanId: Buffer.from(r.parentSpanId, 'hex') } : {}),
    name: r.endpoint,
    kind: SpanKind.SERVER,
    startTimeUnixNano: msToNs(r.start),
    endTimeUnixNano: msToNs(r.start + r.duration),
    attributes,
    ...(r.error ? { status: { code: STATUS_ERROR, ...(r.errorMessage !== undefined ? { message: r.errorMessage } : {}) } } : {}),
  };
  const ids = new Map(r.segments.map((s) => [s.id, s.spanId !== undefined ? Buffer.from(s.spanId, 'hex') : derivedSpanId(r.traceId, own.toString('hex'), s.id)]));
  const segments = r.segments.map((s): PbSpan => {
    const a = [attr('loopscope.critical_path', s.onCriticalPath), attr('loopscope.kind', s.kind)];
    if (s.operation !== undefined) a.push(attr(s.kind === 'queue' ? 'messaging.operation.name' : 'db.operation.name', s.operation));
    if (s.target !== undefined) a.push(attr('server.address', s.target));
    if (s.statement !== undefined) a.push(attr('db.query.text', s.statement));
    if (s.unfinished === true) a.push(attr('loopscope.unfinished', true));
    return {
      traceId,
      spanId: ids.get(s.id)!,
      parentSpanId: (s.parentId !== null ? ids.get(s.parentId) : undefined) ?? own,
      name: s.name,
      kind: s.kind === 'other' || s.kind === 'fs' || s.kind === 'dns' ? SpanKind.INTERNAL : SpanKind.CLIENT,
      startTimeUnixNano: msToNs(r.start + s.start),
      endTimeUnixNano: msToNs(r.start + s.end),
      attributes: a,
      ...(s.error !== undefined ? { status: { code: STATUS_ERROR, message: s.error } } : {}),
    };
  });
  return [transaction, ...segments];
}
