/**
 * OTLP spans as loopscope transactions (GUIDE §3.6, docs/opentelemetry.md). A server or consumer span, or a
 * span without a parent, is a transaction of its resource's `service.name`; its client, producer
 * and internal descendants (down to the next server or consumer span) are its segments. The
 * numbers are derived as the agent derives them (docs/metrics.md): response until the span ended,
 * duration until the last of its descendants ended, external the union of its client and producer
 * spans, per kind too; cpu and blocking are unknown (null): a span says when work began and ended,
 * not whether the event loop, or a thread, was running it.
 *
 * An SDK exports a span when it ends, children before their parent and not always in the same
 * request: a descendant whose transaction has not arrived waits for it here, at most PENDING_MS and
 * MAX_PENDING spans in all (the oldest go first, counted as `expired`).
 */
import { MAX_SEGMENTS } from '@loopscope/protocol/wire';
import { EXTERNAL_KINDS, LIMITS, SEGMENT_TEXT_LIMITS, criticalPath, normalizePath, roundMs, unionLength, type ExternalByKind, type SegmentKind, type SegmentRecord, type TraceRecord } from '@loopscope/protocol';
import { STATUS_ERROR, SpanKind, type AttributeValue, type OtlpResource, type OtlpSpan } from './decode.js';

export const PENDING_MS = 30_000;
export const MAX_PENDING = 100_000;

/** A transaction from OTLP, with what the interval's calls need of its segments. */
export interface OtlpTransaction {
  record: TraceRecord;
  /** its client and producer segments (the calls the service map counts) */
  calls: Array<{ kind: SegmentKind; name: string; target: string | undefined; external: boolean; start: number; end: number; error: string | undefined }>;
}

/** The transactions of one resource (one process of one service). */
export interface ResourceTransactions {
  service: string;
  instance: string;
  sdk: string;
  transactions: OtlpTransaction[];
}

const str = (v: AttributeValue | undefined): string | undefined => (v === undefined ? undefined : String(v));
const first = (attrs: Map<string, AttributeValue>, ...keys: string[]): string | undefined => {
  for (const k of keys) {
    const v = attrs.get(k);
    if (v !== undefined && v !== '') return String(v);
  }
  return undefined;
};
const cut = (s: string, max: number): string => (s.length > max ? s.slice(0, max) : s);
/** a name the wire format takes: not empty, not longer than `max` */
const nameOf = (s: string | undefined, fallback: string, max: number): string => cut(s === undefined || s === '' ? fallback : s, max);

const isTransaction = (s: OtlpSpan): boolean => s.kind === SpanKind.SERVER || s.kind === SpanKind.CONSUMER || s.parentSpanId === '';
const isCall = (s: OtlpSpan): boolean => s.kind === SpanKind.CLIENT || s.kind === SpanKind.PRODUCER;

const CACHES = new Set(['redis', 'memcached', 'valkey']);

const KINDS = new Set<string>(EXTERNAL_KINDS);

/** The segment kind of a span: loopscope's own (a span a loopscope collector exported), else from the semantic conventions. */
export function kindOf(s: OtlpSpan): SegmentKind {
  const a = s.attributes;
  const own = a.get('loopscope.kind');
  if (typeof own === 'string' && KINDS.has(own)) return own as SegmentKind;
  const db = first(a, 'db.system.name', 'db.system');
  if (db !== undefined) return CACHES.has(db) ? 'cache' : 'db';
  if (first(a, 'messaging.system') !== undefined || s.kind === SpanKind.PRODUCER) return 'queue';
  if (first(a, 'http.request.method', 'http.method', 'url.full', 'http.url') !== undefined) return 'http';
  return 'other';
}

/** host:port of a call, from server.address/port (or the older net.peer.*) or its URL. */
function hostOf(a: Map<string, AttributeValue>): string | undefined {
  const url = first(a, 'url.full', 'http.url');
  if (url !== undefined) {
    try {
      return new URL(url).host;
    } catch {
      // not a URL: the address attributes, if any
    }
  }
  const host = first(a, 'server.address', 'net.peer.name', 'net.peer.ip');
  const port = first(a, 'server.port', 'net.peer.port');
  return host === undefined ? undefined : port === undefined ? host : `${host}:${port}`;
}

function pathOf(a: Map<string, AttributeValue>): string | undefined {
  const url = first(a, 'url.full', 'http.url');
  if (url !== undefined) {
    try {
      return new URL(url).pathname;
    } catch {
      // fall through
    }
  }
  const target = first(a, 'url.path', 'http.target');
  return target?.split('?')[0];
}

/** A transaction's endpoint: METHOD /route for HTTP (the route where the span has one), else its name. */
function endpointOf(s: OtlpSpan): string {
  const a = s.attributes;
  const method = first(a, 'http.request.method', 'http.method');
  if (method !== undefined) {
    const route = first(a, 'http.route');
    const path = route ?? pathOf(a);
    if (path !== undefined) return nameOf(`${method} ${route !== undefined ? route : normalizePath(path)}`, s.name, LIMITS.endpoint);
  }
  return nameOf(s.name, 'unnamed span', LIMITS.endpoint);
}

/** A segment's name, operation, target and statement, as the agent names its own. */
function describe(s: OtlpSpan, kind: SegmentKind): Pick<SegmentRecord, 'name' | 'operation' | 'target' | 'statement'> {
  const a = s.attributes;
  const out: Pick<SegmentRecord, 'name' | 'operation' | 'target' | 'statement'> = { name: nameOf(s.name, kind, LIMITS.segmentName) };
  if (a.has('loopscope.kind')) {
    // a segment a loopscope collector exported (spans.ts): as it was
    const operation = first(a, 'db.operation.name', 'messaging.operation.name');
    const target = first(a, 'server.address');
    const statement = first(a, 'db.query.text');
    if (operation !== undefined) out.operation = cut(operation, SEGMENT_TEXT_LIMITS.operation);
    if (target !== undefined) out.target = cut(target, SEGMENT_TEXT_LIMITS.target);
    if (statement !== undefined) out.statement = cut(statement, SEGMENT_TEXT_LIMITS.statement);
    return out;
  }
  const host = hostOf(a);
  if (kind === 'http') {
    const method = first(a, 'http.request.method', 'http.method') ?? 'GET';
    const path = pathOf(a);
    if (host !== undefined) out.name = cut(`${method} ${host}${path === undefined ? '' : normalizePath(path)}`, LIMITS.segmentName);
    if (host !== undefined) out.target = cut(host, SEGMENT_TEXT_LIMITS.target);
    out.operation = cut(method, SEGMENT_TEXT_LIMITS.operation);
    return out;
  }
  const operation = first(a, 'db.operation.name', 'db.operation', 'messaging.operation.name', 'messaging.operation', 'messaging.operation.type');
  if (operation !== undefined) out.operation = cut(operation, SEGMENT_TEXT_LIMITS.operation);
  const where = kind === 'queue' ? first(a, 'messaging.destination.name', 'messaging.destination') : first(a, 'db.namespace', 'db.name');
  const target = host === undefined ? where : where === undefined ? host : `${host}/${where}`;
  if (target !== undefined) out.target = cut(target, SEGMENT_TEXT_LIMITS.target);
  const statement = first(a, 'db.query.text', 'db.statement');
  if (statement !== undefined) out.statement = cut(statement, SEGMENT_TEXT_LIMITS.statement);
  return out;
}

const failure = (s: OtlpSpan): string | undefined => (s.statusCode === STATUS_ERROR ? cut(s.statusMessage || s.exception || 'error', LIMITS.segmentError) : undefined);

/** The transaction of span `tx` and its descendants (in start order). */
export function transactionOf(service: string, tx: OtlpSpan, descendants: OtlpSpan[]): OtlpTransaction {
  const t0 = tx.start;
  const rel = (ms: number): number => roundMs(Math.max(0, ms - t0));
  const kept = descendants.slice(0, MAX_SEGMENTS);
  const index = new Map(kept.map((s, i) => [s.spanId, i]));
  const segments: SegmentRecord[] = [];
  const calls: OtlpTransaction['calls'] = [];
  const byKind = new Map<SegmentKind, Array<[number, number]>>();
  let end = tx.end;
  kept.forEach((s, id) => {
    const kind = kindOf(s);
    const error = failure(s);
    const segment: SegmentRecord = {
      id,
      parentId: index.get(s.parentSpanId) ?? null,
      spanId: s.spanId,
      ...describe(s, kind),
      kind,
      start: rel(s.start),
      end: rel(s.end),
      onCriticalPath: false,
      ...(s.attributes.get('loopscope.unfinished') === true ? { unfinished: true } : {}),
      ...(error !== undefined ? { error } : {}),
    };
    segments.push(segment);
    if (s.end > end) end = s.end;
    if (isCall(s)) {
      calls.push({ kind, name: segment.name, target: segment.target, external: true, start: segment.start, end: segment.end, error });
      const list = byKind.get(kind) ?? [];
      list.push([segment.start, segment.end]);
      byKind.set(kind, list);
    }
  });
  const duration = rel(end);
  // a span a loopscope collector exported says what its agent measured: taken as it is
  const said = (key: string): number | undefined => {
    const v = tx.attributes.get(`loopscope.${key}_ms`);
    return typeof v === 'number' && v >= 0 ? v : undefined;
  };
  const marked = kept.every((s) => typeof s.attributes.get('loopscope.critical_path') === 'boolean') && kept.length > 0;
  const path = marked ? segments.filter((_, i) => kept[i]!.attributes.get('loopscope.critical_path') === true).map((s) => s.id) : criticalPath(segments, duration);
  const onPath = new Set(path);
  for (const s of segments) s.onCriticalPath = onPath.has(s.id);
  const externalByKind: ExternalByKind = {};
  const all: Array<[number, number]> = [];
  for (const [kind, spans] of byKind) {
    all.push(...spans);
    externalByKind[kind] = roundMs(unionLength(spans));
  }
  const statusAttr = Number(first(tx.attributes, 'http.response.status_code', 'http.status_code') ?? 0);
  const status = Number.isInteger(statusAttr) && statusAttr >= 0 && statusAttr <= 999 ? statusAttr : 0;
  const message = failure(tx);
  const record: TraceRecord = {
    traceId: tx.traceId,
    spanId: tx.spanId,
    parentSpanId: tx.parentSpanId === '' ? null : tx.parentSpanId,
    service,
    endpoint: endpointOf(tx),
    start: roundMs(t0),
    status,
    error: message !== undefined || status >= 500,
    ...(message !== undefined ? { errorMessage: cut(message, LIMITS.errorMessage) } : {}),
    response: said('response') ?? rel(tx.end),
    duration,
    cpu: said('cpu') ?? null,
    external: said('external') ?? roundMs(unionLength(all)),
    externalByKind,
    blocking: said('blocking') ?? null,
    ...(tx.attributes.get('loopscope.aborted') === true ? { aborted: true } : {}),
    segments,
    criticalPath: path,
    truncated: false,
    droppedSegments: descendants.length - kept.length,
  };
  return { record, calls };
}

interface Waiting {
  key: string;
  span: OtlpSpan;
  at: number;
}

/** Who a resource is: its service, its process, its SDK. */
export function identify(attrs: Map<string, AttributeValue>): { service: string; instance: string; sdk: string } {
  const service = nameOf(str(attrs.get('service.name')), 'unknown_service', LIMITS.service);
  const host = first(attrs, 'host.name');
  const pid = first(attrs, 'process.pid');
  const instance = nameOf(first(attrs, 'service.instance.id') ?? (host !== undefined || pid !== undefined ? `${host ?? 'unknown'}:${pid ?? '?'}` : undefined), 'otlp', LIMITS.instance);
  const sdk = nameOf([first(attrs, 'telemetry.sdk.language'), first(attrs, 'telemetry.sdk.version')].filter(Boolean).join(' '), 'unknown', 64);
  return { service, instance, sdk };
}

export class OtlpAssembler {
  /** descendants waiting for their transaction, by trace (insertion order is age order) */
  private readonly pending = new Map<string, Waiting[]>();
  private count = 0;
  /** pending spans dropped: their transaction did not come within PENDING_MS, or room ran out */
  expired = 0;

  /** The transactions of the resources' spans, with the descendants that waited for them. */
  assemble(resources: OtlpResource[], now: number): ResourceTransactions[] {
    this.sweep(now);
    const out: ResourceTransactions[] = [];
    for (const resource of resources) {
      const who = identify(resource.attributes);
      const key = `${who.service}\n${who.instance}`;
      const transactions: OtlpTransaction[] = [];
      // children by parent, this request's and those that waited
      const children = new Map<string, OtlpSpan[]>();
      const adopt = (s: OtlpSpan): void => {
        const list = children.get(s.parentSpanId);
        if (list === undefined) children.set(s.parentSpanId, [s]);
        else list.push(s);
      };
      const traces = new Set<string>();
      for (const s of resource.spans) {
        if (s.parentSpanId !== '') adopt(s);
        traces.add(s.traceId);
      }
      for (const traceId of traces) for (const w of this.pending.get(traceId) ?? []) if (w.key === key) adopt(w.span);
      const used = new Set<OtlpSpan>();
      for (const tx of resource.spans) {
        if (!isTransaction(tx)) continue;
        const descendants: OtlpSpan[] = [];
        // breadth first, never into another transaction, never twice (a cycle of parents)
        const queue = [tx.spanId];
        const seen = new Set([tx.spanId]);
        for (let q = 0; q < queue.length; q++) {
          for (const child of children.get(queue[q]!) ?? []) {
            if (isTransaction(child) || seen.has(child.spanId) || child.traceId !== tx.traceId) continue;
            seen.add(child.spanId);
            descendants.push(child);
            used.add(child);
            queue.push(child.spanId);
          }
        }
        descendants.sort((a, b) => a.start - b.start);
        transactions.push(transactionOf(who.service, tx, descendants));
      }
      for (const traceId of traces) this.forget(traceId, used);
      // the rest wait for their transaction
      for (const s of resource.spans) if (!isTransaction(s) && !used.has(s)) this.wait(s.traceId, { key, span: s, at: now });
      if (transactions.length > 0) out.push({ ...who, transactions });
    }
    return out;
  }

  private wait(traceId: string, w: Waiting): void {
    if (this.count >= MAX_PENDING) this.dropOldest();
    const list = this.pending.get(traceId);
    if (list === undefined) this.pending.set(traceId, [w]);
    else list.push(w);
    this.count++;
  }

  private forget(traceId: string, used: Set<OtlpSpan>): void {
    const list = this.pending.get(traceId);
    if (list === undefined) return;
    const left = list.filter((w) => !used.has(w.span));
    this.count -= list.length - left.length;
    if (left.length === 0) this.pending.delete(traceId);
    else this.pending.set(traceId, left);
  }

  private dropOldest(): void {
    const [traceId, list] = this.pending.entries().next().value as [string, Waiting[]];
    this.pending.delete(traceId);
    this.count -= list.length;
    this.expired += list.length;
  }

  private sweep(now: number): void {
    // a trace's list is as old as its first span: traces are in the order they began to wait
    for (const [traceId, list] of this.pending) {
      if (list[0]!.at > now - PENDING_MS) break;
      const left = list.filter((w) => w.at > now - PENDING_MS);
      this.expired += list.length - left.length;
      this.count -= list.length - left.length;
      if (left.length === 0) this.pending.delete(traceId);
      else this.pending.set(traceId, left);
    }
  }

  /** Spans waiting for their transaction now. */
  get waiting(): number {
    return this.count;
  }
}
