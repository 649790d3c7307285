/**
 * OTLP/HTTP trace receiver (`POST /v1/traces`, GUIDE §3.6, docs/opentelemetry.md): the body, protobuf or
 * JSON, becomes the transactions of each resource (transactions.ts), stored as batches of the
 * wire format under the sender `opentelemetry`: one interval per second with the five sketches
 * (cpu and blocking null: unknown), every transaction as a trace (an OTLP sender has sampled
 * already), and the calls for the service map. The answer follows the OTLP/HTTP spec: 200 with
 * a partial success naming the spans rejected, 400 for a body that is no export at all (the
 * client must not retry it), 413 too large, 415 for another content type, each in the request's
 * encoding.
 */
import { randomUUID } from 'node:crypto';
import { IntervalAggregate, MAX_CALL_TARGETS, MAX_TRACES, WIRE_VERSION, type WireBatch, type WireCalls, type WireInterval, type WireTrace } from '@loopscope/protocol';
import { traceProblem, validBatch } from '../ingest.js';
import { HttpError } from '../http-error.js';
import { ResponseType, StatusType, decodeJson, decodeProtobuf, type DecodedTraces } from './decode.js';
import type { OtlpAssembler, OtlpTransaction, ResourceTransactions } from './transactions.js';

/** The most spans one request may carry; the rest are rejected (partial success). */
export const MAX_SPANS_PER_REQUEST = 50_000;

export type OtlpEncoding = 'protobuf' | 'json';

/** The encoding of a Content-Type, or an HttpError 415. */
export function encodingOf(contentType: string | undefined): OtlpEncoding {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/x-protobuf' || type === 'application/protobuf') return 'protobuf';
  if (type === 'application/json') return 'json';
  throw new HttpError(415, `Content-Type must be application/x-protobuf or application/json (OTLP/HTTP), not "${type}"`);
}

export function decodeTraces(bytes: Buffer, encoding: OtlpEncoding): DecodedTraces {
  return encoding === 'protobuf' ? decodeProtobuf(bytes, MAX_SPANS_PER_REQUEST) : decodeJson(bytes, MAX_SPANS_PER_REQUEST);
}

/** The body of a success: an empty response, or the partial success. */
export function successBody(encoding: OtlpEncoding, rejected: number, reason: string | undefined): Buffer | object {
  const response = rejected > 0 ? { partialSuccess: { rejectedSpans: rejected, errorMessage: reason ?? '' } } : {};
  return encoding === 'json' ? response : Buffer.from(ResponseType.encode(ResponseType.fromObject(response)).finish());
}

/** The body of an error (google.rpc.Status). */
export function errorBody(encoding: OtlpEncoding, code: number, message: string): Buffer | object {
  const status = { code, message };
  return encoding === 'json' ? status : Buffer.from(StatusType.encode(StatusType.fromObject(status)).finish());
}

/** The second a transaction is counted in: the one it ended in, as the agent's intervals count it. */
const secondOf = (t: WireTrace): number => Math.floor((t.start + t.duration) / 1000) * 1000;

/** One resource's transactions as batches of at most MAX_TRACES traces. */
function batchesOf(r: ResourceTransactions, receivedAt: number): WireBatch[] {
  const out: WireBatch[] = [];
  for (let i = 0; i < r.transactions.length; i += MAX_TRACES) {
    const chunk = r.transactions.slice(i, i + MAX_TRACES);
    const seconds = new Map<number, IntervalAggregate>();
    for (const { record, calls } of chunk) {
      const second = secondOf(record);
      let interval = seconds.get(second);
      if (interval === undefined) seconds.set(second, (interval = new IntervalAggregate(second)));
      interval.entry(record.endpoint).add(record, record.error);
      interval.addCalls(calls);
    }
    const intervals: WireInterval[] = [];
    const calls: WireCalls[] = [];
    for (const [second, interval] of seconds) {
      intervals.push(...interval.toWire(second + 1000));
      calls.push(...interval.callsToWire(second + 1000));
    }
    out.push({
      v: WIRE_VERSION,
      batchId: `otlp-${randomUUID()}`,
      service: r.service,
      instance: r.instance,
      agent: { name: 'opentelemetry', version: r.sdk },
      sentAt: Math.min(receivedAt, Math.round(Math.max(...chunk.map((t) => t.record.start + t.record.duration)))),
      intervals,
      traces: chunk.map((t) => t.record),
      // more targets than a batch may name, over several seconds: the first ones
      calls: calls.slice(0, MAX_CALL_TARGETS),
      dropped: { batches: 0, transactions: 0, traces: 0 },
    });
  }
  return out;
}

export interface Received {
  batches: WireBatch[];
  /** spans rejected: malformed alone, or their transaction broke a rule of the wire format */
  rejected: number;
  reason: string | undefined;
}

/** The batches to store from a decoded request, and what was rejected. */
export function receive(decoded: DecodedTraces, assembler: OtlpAssembler, receivedAt: number): Received {
  let { rejected, reason } = decoded;
  const batches: WireBatch[] = [];
  for (const r of assembler.assemble(decoded.resources, receivedAt)) {
    const kept: OtlpTransaction[] = [];
    for (const t of r.transactions) {
      const problem = traceProblem(t.record, receivedAt);
      if (problem === undefined) kept.push(t);
      else {
        rejected += 1 + t.record.segments.length + t.record.droppedSegments;
        reason ??= `a transaction (span ${t.record.spanId}) cannot be stored: ${problem}`;
      }
    }
    // built from valid transactions, a batch is valid; checked all the same, as an agent's is
    for (const batch of batchesOf({ ...r, transactions: kept }, receivedAt)) batches.push(validBatch(batch, receivedAt).batch);
  }
  return { batches, rejected, reason };
}
