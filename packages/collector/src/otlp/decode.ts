/**
 * The bytes of an OTLP/HTTP trace export (`ExportTraceServiceRequest`), protobuf or JSON, as plain
 * spans: ids in hex, times in ms since the epoch, the attributes loopscope reads as primitive
 * values. Decoded with protobufjs from the official protocol definitions (proto/README.md); the
 * JSON encoding follows the OTLP spec's mapping (lowerCamelCase fields, hex ids, int64 as strings
 * or numbers, enums as integers).
 *
 * The protocol definitions loaded here serve OTLP out too (its request and response types).
 *
 * A body that is not an ExportTraceServiceRequest at all throws HttpError (400, never retried);
 * a span that is malformed on its own (ids of the wrong length, times missing or ending before they
 * start) is rejected alone and counted, as OTLP's partial success has it.
 */
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { HttpError } from '../http-error.js';

const PROTO_DIR = fileURLToPath(new URL('../../../proto/', import.meta.url));

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => PROTO_DIR + target;
root.loadSync(['opentelemetry/proto/collector/trace/v1/trace_service.proto', 'opentelemetry/proto/collector/metrics/v1/metrics_service.proto', 'google/rpc/status.proto']);
export const RequestType = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
export const ResponseType = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');
export const StatusType = root.lookupType('google.rpc.Status');
/** What OTLP out sends to /v1/metrics (metrics.ts). */
export const MetricsRequestType = root.lookupType('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest');

/** OTLP span kinds (trace.proto's Span.SpanKind). */
export const SpanKind = { UNSPECIFIED: 0, INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;
/** Status.StatusCode: ERROR is 2. */
export const STATUS_ERROR = 2;

export type AttributeValue = string | number | boolean;

export interface OtlpSpan {
  traceId: string;
  spanId: string;
  /** '' for a root span */
  parentSpanId: string;
  name: string;
  kind: number;
  /** ms since the epoch */
  start: number;
  end: number;
  attributes: Map<string, AttributeValue>;
  /** Status.code (0 unset, 1 ok, 2 error) and its message */
  statusCode: number;
  statusMessage: string;
  /** the message of its first `exception` event, if any */
  exception: string | undefined;
}

/** The spans of one resource: one process of one service. */
export interface OtlpResource {
  attributes: Map<string, AttributeValue>;
  spans: OtlpSpan[];
}

export interface DecodedTraces {
  resources: OtlpResource[];
  /** spans rejected on their own, and why (the first reason) */
  rejected: number;
  reason: string | undefined;
}

// ---- the protobuf encoding ----------------------------------------------------------------------

type Long = number | string | protobuf.Long | null | undefined;
/**
 * ns since the epoch (a uint64: a Long, a decimal string, or a number) as ms, exact to the µs (a
 * double of ns is not: 1.8e18 has no room for its last digits); NaN when absent or not an integer.
 */
function nsToMs(value: Long): number {
  if (value === null || value === undefined) return NaN;
  if (typeof value === 'string' && !/^\d{1,20}$/.test(value)) return NaN;
  if (typeof value === 'number' && !Number.isSafeInteger(value)) return Number.isFinite(value) ? value / 1e6 : NaN;
  return Number(BigInt(typeof value === 'object' ? value.toString() : value) / 1000n) / 1000;
}

/** bytes as hex; protobufjs gives a Buffer, or an empty array for a field that is absent */
const hex = (bytes: Uint8Array | null | undefined): string => (!bytes || bytes.length === 0 ? '' : Buffer.isBuffer(bytes) ? bytes.toString('hex') : Buffer.from(bytes).toString('hex'));

interface PbAnyValue {
  stringValue?: string | null;
  boolValue?: boolean | null;
  intValue?: Long;
  doubleValue?: number | null;
}
interface PbKeyValue {
  key?: string | null;
  value?: PbAnyValue | null;
}
interface PbSpan {
  traceId?: Uint8Array;
  spanId?: Uint8Array;
  parentSpanId?: Uint8Array;
  name?: string;
  kind?: number;
  startTimeUnixNano?: Long;
  endTimeUnixNano?: Long;
  attributes?: PbKeyValue[];
  events?: Array<{ name?: string; attributes?: PbKeyValue[] }>;
  status?: { code?: number; message?: string } | null;
}
interface PbRequest {
  resourceSpans?: Array<{ resource?: { attributes?: PbKeyValue[] } | null; scopeSpans?: Array<{ spans?: PbSpan[] }> }>;
}

/** What a decoded value is as one of ours, the way both encodings give it. */
function primitive(v: { stringValue?: unknown; boolValue?: unknown; intValue?: unknown; doubleValue?: unknown } | null | undefined): AttributeValue | undefined {
  if (v === null || v === undefined || typeof v !== 'object') return undefined;
  // own properties only: a decoded protobuf message has the other members of the oneof as defaults on its prototype
  const has = (key: string): boolean => Object.hasOwn(v, key);
  if (has('stringValue') && typeof v.stringValue === 'string') return v.stringValue;
  if (has('boolValue') && typeof v.boolValue === 'boolean') return v.boolValue;
  if (has('intValue') && v.intValue !== null) {
    const n = typeof v.intValue === 'object' ? protobuf.util.LongBits.from(v.intValue as protobuf.Long).toNumber() : Number(v.intValue);
    return Number.isFinite(n) ? n : undefined;
  }
  if (has('doubleValue') && (typeof v.doubleValue === 'number' || typeof v.doubleValue === 'string')) {
    const n = Number(v.doubleValue);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

function attributes(list: unknown): Map<string, AttributeValue> {
  const out = new Map<string, AttributeValue>();
  if (!Array.isArray(list)) return out;
  for (const kv of list as Array<{ key?: unknown; value?: unknown } | null>) {
    if (kv === null || typeof kv !== 'object' || typeof kv.key !== 'string') continue;
    const v = primitive(kv.value as PbAnyValue);
    if (v !== undefined) out.set(kv.key, v);
  }
  return out;
}

/** The message of a span's first `exception` event (the semantic conventions' exception.message). */
function exceptionOf(events: unknown): string | undefined {
  if (!Array.isArray(events)) return undefined;
  for (const e of events as Array<{ name?: unknown; attributes?: unknown } | null>) {
    if (e === null || typeof e !== 'object' || e.name !== 'exception') continue;
    const attrs = attributes(e.attributes);
    const message = attrs.get('exception.message') ?? attrs.get('exception.type');
    if (message !== undefined) return String(message);
  }
  return undefined;
}

/** Collects the spans, rejecting those malformed on their own. */
class Collector {
  readonly resources: OtlpResource[] = [];
  rejected = 0;
  reason: string | undefined;
  private count = 0;

  constructor(private readonly maxSpans: number) {}

  reject(why: string, n = 1): void {
    this.rejected += n;
    this.reason ??= why;
  }

  /** Whether there is room for another span (the rest of a request past maxSpans is rejected). */
  room(): boolean {
    if (this.count < this.maxSpans) return true;
    this.reject(`more than ${this.maxSpans} spans in one request; send smaller batches`);
    return false;
  }

  add(resource: OtlpResource, span: OtlpSpan): void {
    this.count++;
    if (!/^[0-9a-f]{32}$/.test(span.traceId) || /^0+$/.test(span.traceId)) return this.reject('a span has a trace id that is not 16 bytes, or is all zeros');
    if (!/^[0-9a-f]{16}$/.test(span.spanId) || /^0+$/.test(span.spanId)) return this.reject('a span has a span id that is not 8 bytes, or is all zeros');
    if (!Number.isFinite(span.start) || !Number.isFinite(span.end) || span.start <= 0) return this.reject('a span has no start or end time');
    if (span.end < span.start) return this.reject('a span ends before it starts');
    // a parent of the wrong length, or itself, is no parent
    if (!/^[0-9a-f]{16}$/.test(span.parentSpanId) || span.parentSpanId === span.spanId || /^0+$/.test(span.parentSpanId)) span.parentSpanId = '';
    resource.spans.push(span);
  }
}

export function decodeProtobuf(bytes: Buffer, maxSpans: number): DecodedTraces {
  let request: PbRequest;
  try {
    request = RequestType.decode(bytes) as unknown as PbRequest;
  } catch (err) {
    throw new HttpError(400, `not an OTLP ExportTraceServiceRequest in protobuf: ${(err as Error).message}`);
  }
  const c = new Collector(maxSpans);
  for (const rs of request.resourceSpans ?? []) {
    const resource: OtlpResource = { attributes: attributes(rs.resource?.attributes), spans: [] };
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        if (!c.room()) continue;
        c.add(resource, {
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          parentSpanId: hex(s.parentSpanId),
          name: s.name ?? '',
          kind: s.kind ?? 0,
          start: nsToMs(s.startTimeUnixNano),
          end: nsToMs(s.endTimeUnixNano),
          attributes: attributes(s.attributes),
          statusCode: s.status?.code ?? 0,
          statusMessage: s.status?.message ?? '',
          exception: exceptionOf(s.events),
        });
      }
    }
    if (resource.spans.length > 0) c.resources.push(resource);
  }
  return { resources: c.resources, rejected: c.rejected, reason: c.reason };
}

// ---- the JSON encoding --------------------------------------------------------------------------

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const list = (v: unknown, where: string): unknown[] => {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new HttpError(400, `${where} must be an array`);
  return v;
};
/** A uint64 of OTLP/JSON: a decimal string or a number. */
const jsonNs = (v: unknown): number => (typeof v === 'string' || typeof v === 'number' ? nsToMs(v) : NaN);
const jsonHex = (v: unknown): string => (typeof v === 'string' ? v.toLowerCase() : '');

export function decodeJson(bytes: Buffer, maxSpans: number): DecodedTraces {
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, `not an OTLP ExportTraceServiceRequest in JSON: ${(err as Error).message}`);
  }
  if (!isObject(body)) throw new HttpError(400, 'an OTLP/JSON export must be an object with resourceSpans');
  const c = new Collector(maxSpans);
  list(body.resourceSpans, 'resourceSpans').forEach((rs, i) => {
    if (!isObject(rs)) throw new HttpError(400, `resourceSpans[${i}] must be an object`);
    const resource: OtlpResource = { attributes: attributes(isObject(rs.resource) ? rs.resource.attributes : undefined), spans: [] };
    list(rs.scopeSpans, `resourceSpans[${i}].scopeSpans`).forEach((ss, j) => {
      if (!isObject(ss)) throw new HttpError(400, `resourceSpans[${i}].scopeSpans[${j}] must be an object`);
      for (const s of list(ss.spans, `resourceSpans[${i}].scopeSpans[${j}].spans`)) {
        if (!c.room()) continue;
        if (!isObject(s)) {
          c.reject('a span is not an object');
          continue;
        }
        const status = isObject(s.status) ? s.status : {};
        c.add(resource, {
          traceId: jsonHex(s.traceId),
          spanId: jsonHex(s.spanId),
          parentSpanId: jsonHex(s.parentSpanId),
          name: typeof s.name === 'string' ? s.name : '',
          kind: typeof s.kind === 'number' ? s.kind : 0,
          start: jsonNs(s.startTimeUnixNano),
          end: jsonNs(s.endTimeUnixNano),
          attributes: attributes(s.attributes),
          statusCode: typeof status.code === 'number' ? status.code : 0,
          statusMessage: typeof status.message === 'string' ? status.message : '',
          exception: exceptionOf(s.events),
        });
      }
    });
    if (resource.spans.length > 0) c.resources.push(resource);
  });
  return { resources: c.resources, rejected: c.rejected, reason: c.reason };
}
