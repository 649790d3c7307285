/**
 * OTLP out (`loopscope up --otlp-endpoint URL`, docs/opentelemetry.md): every trace the collector
 * stores is forwarded as OTLP spans (spans.ts) to URL/v1/traces, and every interval's aggregates
 * as OTLP metrics (metrics.ts) to URL/v1/metrics, protobuf, gzip. In the background: ingest only
 * queues (an outbox per signal, ../outbox.ts: bounded, retried with backoff, refusals counted), a
 * timer sends a request per signal every FLUSH_MS. Nothing of this slows or fails ingest.
 */
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { TraceRecord, WireBatch, WireInterval } from '@loopscope/protocol';
import { MetricsRequestType, RequestType } from './decode.js';
import { metricsOf } from './metrics.js';
import { spansOf, type KeyValue } from './spans.js';
import { Outbox, type OutboxStats } from '../outbox.js';

const gzip = promisify(zlib.gzip);

export const FLUSH_MS = 1000;

export interface OtlpExportOptions {
  /** the backend's base URL (OTEL_EXPORTER_OTLP_ENDPOINT's meaning): URL/v1/traces and URL/v1/metrics */
  endpoint: string;
  /** headers sent with every request (an API key, say) */
  headers?: Record<string, string>;
  /** warnings (a backend that refuses): the collector's logger */
  warn: (message: string) => void;
}

/** Per signal: items (traces, or batches' intervals) sent, dropped, retried requests, queued. */
export type OtlpSignalStats = OutboxStats;

/** What one batch contributes, with who sent it. */
interface Item<T> {
  service: string;
  instance: string;
  value: T;
}

const str = (key: string, value: string): KeyValue => ({ key, value: { stringValue: value } });
const resourceOf = (service: string, instance: string) => ({ attributes: [str('service.name', service), str('service.instance.id', instance)] });

/** Items grouped by resource (service and instance), in order. */
function byResource<T>(items: Array<Item<T>>): Array<{ service: string; instance: string; values: T[] }> {
  const groups = new Map<string, { service: string; instance: string; values: T[] }>();
  for (const { service, instance, value } of items) {
    const key = `${service}\n${instance}`;
    let g = groups.get(key);
    if (g === undefined) groups.set(key, (g = { service, instance, values: [] }));
    g.values.push(value);
  }
  return [...groups.values()];
}

/** The ExportTraceServiceRequest of some stored traces. */
export function traceRequest(items: Array<Item<TraceRecord>>): Uint8Array {
  const resourceSpans = byResource(items).map((r) => ({ resource: resourceOf(r.service, r.instance), scopeSpans: [{ scope: { name: 'loopscope' }, spans: r.values.flatMap(spansOf) }] }));
  return RequestType.encode(RequestType.fromObject({ resourceSpans })).finish();
}

/** The ExportMetricsServiceRequest of some stored batches' intervals. */
export function metricsRequest(items: Array<Item<WireInterval[]>>): Uint8Array {
  const resourceMetrics = byResource(items).map((r) => ({ resource: resourceOf(r.service, r.instance), scopeMetrics: [{ scope: { name: 'loopscope' }, metrics: r.values.flatMap(metricsOf) }] }));
  return MetricsRequestType.encode(MetricsRequestType.fromObject({ resourceMetrics })).finish();
}

export class OtlpExporter {
  private readonly traces: Outbox<Item<TraceRecord>>;
  private readonly metrics: Outbox<Item<WireInterval[]>>;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: OtlpExportOptions) {
    const base = options.endpoint.replace(/\/+$/, '');
    // traces: up to 20 000 queued, 500 a request; metrics: a batch's intervals each, 2 000 batches queued, 100 a request
    const protobuf = <T>(encode: (items: T[]) => Uint8Array) => async (items: T[]) => ({
      body: await gzip(encode(items)),
      headers: { ...options.headers, 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' },
    });
    this.traces = new Outbox({ url: `${base}/v1/traces`, encode: protobuf(traceRequest), maxQueued: 20_000, perRequest: 500, warn: options.warn, what: 'OTLP export' });
    this.metrics = new Outbox({ url: `${base}/v1/metrics`, encode: protobuf(metricsRequest), maxQueued: 2000, perRequest: 100, warn: options.warn, what: 'OTLP export' });
  }

  get stats(): { traces: OtlpSignalStats; metrics: OtlpSignalStats } {
    return { traces: this.traces.stats, metrics: this.metrics.stats };
  }

  /** What a batch just stored adds: its traces, and its intervals. */
  offer(batch: WireBatch): void {
    this.traces.offer(batch.traces.map((value) => ({ service: batch.service, instance: batch.instance, value })));
    if (batch.intervals.length > 0) this.metrics.offer([{ service: batch.service, instance: batch.instance, value: batch.intervals }]);
  }

  start(): void {
    this.timer = setInterval(() => {
      void this.traces.tick();
      void this.metrics.tick();
    }, FLUSH_MS);
    this.timer.unref();
  }

  /** Stops the timer and sends what is queued, for at most 2 s. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([this.traces.flush(2000), this.metrics.flush(2000)]);
  }
}
