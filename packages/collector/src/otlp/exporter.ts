/**
 * OTLP out (`loopscope up --otlp-endpoint URL`, docs/opentelemetry.md): every trace the collector
 * stores is forwarded as OTLP spans (spans.ts) to URL/v1/traces, protobuf, gzip. In the background:
 * ingest only queues (bounded: MAX_QUEUED traces, the oldest dropped and counted), a timer sends
 * at most MAX_PER_REQUEST traces a request every FLUSH_MS. A backend that is down or says to wait
 * (a network error, 429, 502, 503, 504) is retried with backoff (1 s doubling to 30 s, or its
 * Retry-After); one that refuses a request (another 4xx or 5xx) has that request's traces dropped
 * and counted. Nothing of this slows ingest or fails it.
 */
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { TraceRecord, WireBatch } from '@loopscope/protocol';
import { RequestType } from './decode.js';
import { spansOf, type KeyValue } from './spans.js';

const gzip = promisify(zlib.gzip);

export const MAX_QUEUED = 20_000;
export const MAX_PER_REQUEST = 500;
export const FLUSH_MS = 1000;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30_000;
/** How long one request may take before it counts as failed (and is retried). */
const REQUEST_TIMEOUT_MS = 10_000;

export interface OtlpExportOptions {
  /** the backend's base URL (OTEL_EXPORTER_OTLP_ENDPOINT's meaning): traces go to URL/v1/traces */
  endpoint: string;
  /** headers sent with every request (an API key, say) */
  headers?: Record<string, string>;
  /** warnings (a backend that refuses): the collector's logger */
  warn: (message: string) => void;
}

export interface OtlpExportStats {
  /** traces forwarded and acknowledged */
  sent: number;
  /** traces dropped: the queue was full, or the backend refused them */
  dropped: number;
  /** requests that failed and were (or will be) retried */
  retries: number;
  /** traces waiting to be sent */
  queued: number;
}

interface Queued {
  service: string;
  instance: string;
  record: TraceRecord;
}

const str = (key: string, value: string): KeyValue => ({ key, value: { stringValue: value } });

/** The ExportTraceServiceRequest of some stored traces: one resource per service and instance. */
export function traceRequest(items: Queued[]): Uint8Array {
  const byResource = new Map<string, { service: string; instance: string; spans: ReturnType<typeof spansOf> }>();
  for (const { service, instance, record } of items) {
    const key = `${service}\n${instance}`;
    let r = byResource.get(key);
    if (r === undefined) byResource.set(key, (r = { service, instance, spans: [] }));
    r.spans.push(...spansOf(record));
  }
  const message = RequestType.fromObject({
    resourceSpans: [...byResource.values()].map((r) => ({
      resource: { attributes: [str('service.name', r.service), str('service.instance.id', r.instance)] },
      scopeSpans: [{ scope: { name: 'loopscope' }, spans: r.spans }],
    })),
  });
  return RequestType.encode(message).finish();
}

export class OtlpExporter {
  private queue: Queued[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  private backoff = 0;
  private notBefore = 0;
  private readonly url: string;
  readonly stats: OtlpExportStats = { sent: 0, dropped: 0, retries: 0, queued: 0 };

  constructor(private readonly options: OtlpExportOptions) {
    this.url = `${options.endpoint.replace(/\/+$/, '')}/v1/traces`;
  }

  /** The traces of a batch just stored: queued, the oldest dropped past MAX_QUEUED. */
  offer(batch: WireBatch): void {
    for (const record of batch.traces) this.queue.push({ service: batch.service, instance: batch.instance, record });
    const over = this.queue.length - MAX_QUEUED;
    if (over > 0) {
      this.queue.splice(0, over);
      this.stats.dropped += over;
    }
    this.stats.queued = this.queue.length;
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), FLUSH_MS);
    this.timer.unref();
  }

  /** Sends what is queued, request by request, as long as the backend takes it; at most `deadlineMs`. */
  async flush(deadlineMs = 2000): Promise<void> {
    const until = Date.now() + deadlineMs;
    while (this.queue.length > 0 && Date.now() < until) {
      const before = this.queue.length;
      await this.tick(true);
      if (this.queue.length >= before) break; // the backend did not take it: left to the retries
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.sending;
    await this.flush();
  }

  private tick(now = false): Promise<void> {
    if (this.sending !== undefined || this.queue.length === 0 || (!now && Date.now() < this.notBefore)) return this.sending ?? Promise.resolve();
    this.sending = this.send().finally(() => (this.sending = undefined));
    return this.sending;
  }

  private async send(): Promise<void> {
    const items = this.queue.slice(0, MAX_PER_REQUEST);
    let status = 0;
    let retryAfter: string | null = null;
    try {
      const body = await gzip(traceRequest(items));
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
    this.options.warn(`OTLP export to ${this.url} refused with ${status}: ${items.length} traces dropped`);
  }

  private take(n: number): void {
    this.queue.splice(0, n);
    this.stats.queued = this.queue.length;
  }
}
