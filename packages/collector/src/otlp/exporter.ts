/**
 * OTLP out (`loopscope up --otlp-endpoint URL`, docs/opentelemetry.md): every trace the collector
 * stores is forwarded as OTLP spans (spans.ts) to URL/v1/traces, and every interval's aggregates
 * as OTLP metrics (metrics.ts) to URL/v1/metrics, protobuf, gzip. In the background: ingest only
 * queues (bounded per signal, the oldest dropped and counted), a timer sends a request per signal
 * every FLUSH_MS. A backend that is down or says to wait (a network error, 429, 502, 503, 504) is
 * retried with backoff (1 s doubling to 30 s, or its Retry-After); one that refuses a request
 * (another 4xx or 5xx) has what it held dropped and counted. Nothing of this slows or fails ingest.
 */
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { TraceRecord, WireBatch, WireInterval } from '@loopscope/protocol';
import { MetricsRequestType, RequestType } from './decode.js';
import { metricsOf } from './metrics.js';
import { spansOf, type KeyValue } from './spans.js';

const gzip = promisify(zlib.gzip);

export const FLUSH_MS = 1000;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30_000;
/** How long one request may take before it counts as failed (and is retried). */
const REQUEST_TIMEOUT_MS = 10_000;

export interface OtlpExportOptions {
  /** the backend's base URL (OTEL_EXPORTER_OTLP_ENDPOINT's meaning): URL/v1/traces and URL/v1/metrics */
  endpoint: string;
  /** headers sent with every request (an API key, say) */
  headers?: Record<string, string>;
  /** warnings (a backend that refuses): the collector's logger */
  warn: (message: string) => void;
}

export interface OtlpSignalStats {
  /** items forwarded and acknowledged: traces, or batches' intervals */
  sent: number;
  /** dropped: the queue was full, or the backend refused them */
  dropped: number;
  /** requests that failed and were (or will be) retried */
  retries: number;
  /** waiting to be sent */
  queued: number;
}

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

/** One signal's queue and its sending. */
class Channel<T> {
  private queue: Array<Item<T>> = [];
  private sending: Promise<void> | undefined;
  private backoff = 0;
  private notBefore = 0;
  readonly stats: OtlpSignalStats = { sent: 0, dropped: 0, retries: 0, queued: 0 };

  constructor(
    private readonly url: string,
    private readonly options: OtlpExportOptions,
    private readonly encode: (items: Array<Item<T>>) => Uint8Array,
    private readonly maxQueued: number,
    private readonly perRequest: number,
  ) {}

  offer(items: Array<Item<T>>): void {
    this.queue.push(...items);
    const over = this.queue.length - this.maxQueued;
    if (over > 0) {
      this.queue.splice(0, over);
      this.stats.dropped += over;
    }
    this.stats.queued = this.queue.length;
  }

  get idle(): boolean {
    return this.queue.length === 0;
  }

  tick(now = false): Promise<void> {
    if (this.sending !== undefined || this.queue.length === 0 || (!now && Date.now() < this.notBefore)) return this.sending ?? Promise.resolve();
    this.sending = this.send().finally(() => (this.sending = undefined));
    return this.sending;
  }

  /** Sends what is queued as long as the backend takes it, for at most `deadlineMs`. */
  async flush(deadlineMs: number): Promise<void> {
    await this.sending;
    const until = Date.now() + deadlineMs;
    while (this.queue.length > 0 && Date.now() < until) {
      const before = this.queue.length;
      await this.tick(true);
      if (this.queue.length >= before) break; // the backend did not take it
    }
  }

  private async send(): Promise<void> {
    const items = this.queue.slice(0, this.perRequest);
    let status = 0;
    let retryAfter: string | null = null;
    try {
      const body = await gzip(this.encode(items));
      const res = await fetch(this.url, {
        method: 'POST',
        headers: { ...this.options.headers, 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' },
        body,
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      status = res.status;
      retryAfter = res.headers.get('retry-after');
      await res.arrayBuffer();
    } catch {
      status = 0; // the backend is down or too slow
    }
    if (status >= 200 && status < 300) {
      this.take(items.length);
      this.stats.sent += items.length;
      this.backoff = 0;
      return;
    }
    if (status === 0 || status === 429 || status === 502 || status === 503 || status === 504) {
      this.stats.retries++;
      this.backoff = Math.min(BACKOFF_MAX_MS, this.backoff === 0 ? BACKOFF_MIN_MS : this.backoff * 2);
      const asked = retryAfter !== null && /^\d+$/.test(retryAfter) ? Number(retryAfter) * 1000 : 0;
      this.notBefore = Date.now() + Math.min(BACKOFF_MAX_MS, Math.max(this.backoff, asked));
      return;
    }
    this.take(items.length);
    this.stats.dropped += items.length;
    this.options.warn(`OTLP export to ${this.url} refused with ${status}: ${items.length} dropped`);
  }

  private take(n: number): void {
    this.queue.splice(0, n);
    this.stats.queued = this.queue.length;
  }
}

export class OtlpExporter {
  private readonly traces: Channel<TraceRecord>;
  private readonly metrics: Channel<WireInterval[]>;
  private timer: NodeJS.Timeout | undefined;

  constructor(options: OtlpExportOptions) {
    const base = options.endpoint.replace(/\/+$/, '');
    // traces: up to 20 000 queued, 500 a request; metrics: a batch's intervals each, 2 000 batches queued, 100 a request
    this.traces = new Channel(`${base}/v1/traces`, options, traceRequest, 20_000, 500);
    this.metrics = new Channel(`${base}/v1/metrics`, options, metricsRequest, 2000, 100);
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
