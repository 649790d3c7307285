/**
 * What the collector sends to another system in the background (OTLP export, alert receivers): a
 * bounded queue (the oldest dropped and counted when full) and one request at a time, made when
 * `tick` is called (a timer of the owner's). A receiver that is down or says to wait (a network
 * error, 429, 502, 503, 504) is retried with backoff (1 s doubling to 30 s, or its Retry-After);
 * one that refuses a request (another 4xx or 5xx) has what it held dropped and counted, with one
 * warning. Nothing of this slows or fails the caller of `offer`.
 */

const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30_000;
/** How long one request may take before it counts as failed (and is retried). */
const REQUEST_TIMEOUT_MS = 10_000;

export interface OutboxStats {
  /** items delivered and acknowledged */
  sent: number;
  /** dropped: the queue was full, or the receiver refused them */
  dropped: number;
  /** requests that failed and were (or will be) retried */
  retries: number;
  /** waiting to be sent */
  queued: number;
}

/** One request's body and headers, made of the items it carries. */
export interface OutboxRequest {
  body: Uint8Array | string;
  headers: Record<string, string>;
}

export interface OutboxOptions<T> {
  url: string;
  /** the request that carries `items` */
  encode: (items: T[]) => OutboxRequest | Promise<OutboxRequest>;
  /** at most this many waiting; more drop the oldest */
  maxQueued: number;
  /** at most this many in one request */
  perRequest: number;
  /** a receiver that refuses: the collector's logger */
  warn: (message: string) => void;
  /** what the items are, for the warning ("OTLP traces", "alerts") */
  what: string;
}

export class Outbox<T> {
  private queue: T[] = [];
  private sending: Promise<void> | undefined;
  private backoff = 0;
  private notBefore = 0;
  readonly stats: OutboxStats = { sent: 0, dropped: 0, retries: 0, queued: 0 };

  constructor(private readonly options: OutboxOptions<T>) {}

  offer(items: T[]): void {
    for (const item of items) this.queue.push(item);
    const over = this.queue.length - this.options.maxQueued;
    if (over > 0) {
      this.queue.splice(0, over);
      this.stats.dropped += over;
    }
    this.stats.queued = this.queue.length;
  }

  get idle(): boolean {
    return this.queue.length === 0;
  }

  /** Sends a request if there is something to send and no backoff to wait out (`now`: never mind the backoff). */
  tick(now = false): Promise<void> {
    if (this.sending !== undefined || this.queue.length === 0 || (!now && Date.now() < this.notBefore)) return this.sending ?? Promise.resolve();
    this.sending = this.send().finally(() => (this.sending = undefined));
    return this.sending;
  }

  /** Sends what is queued as long as the receiver takes it, for at most `deadlineMs`. */
  async flush(deadlineMs: number): Promise<void> {
    await this.sending;
    const until = Date.now() + deadlineMs;
    while (this.queue.length > 0 && Date.now() < until) {
      const before = this.queue.length;
      await this.tick(true);
      if (this.queue.length >= before) break; // the receiver did not take it
    }
  }

  private async send(): Promise<void> {
    const items = this.queue.slice(0, this.options.perRequest);
    let status = 0;
    let retryAfter: string | null = null;
    try {
      const { body, headers } = await this.options.encode(items);
      const res = await fetch(this.options.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      status = res.status;
      retryAfter = res.headers.get('retry-after');
      await res.arrayBuffer();
    } catch {
      status = 0; // the receiver is down or too slow
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
    this.options.warn(`${this.options.what} to ${this.options.url} refused with ${status}: ${items.length} dropped`);
  }

  private take(n: number): void {
    this.queue.splice(0, n);
    this.stats.queued = this.queue.length;
  }
}
