/**
 * Ships batches to the collector in the background: gzip-compressed JSON over HTTP, one request at
 * a time, a bounded queue, retries with backoff while the collector cannot be reached, and counts
 * of what had to be dropped (reported to the collector in every later batch). Given several
 * collectors (a comma-separated list: collectors that share one ClickHouse), a batch one of them
 * could not take goes to the next at once, and the agent stays with the one that took it; the
 * backoff starts only when every one has failed in a row. A batch is sent again only when its
 * request failed, and the collectors recognize a batch they have stored by its id. It says on
 * stderr (log.ts) when batches stop reaching a collector or are refused, when they reach one again,
 * and at exit what could not be shipped: a line per change of state. It never throws into the app
 * and never keeps the process alive by itself: its timers are unref'd, and a request in flight is
 * the only thing that holds the loop.
 */
import type { Agent } from 'node:http';
import { gzip } from 'node:zlib';
import type { WireBatch } from '@loopscope/protocol';
import { warn } from '../log.js';

export interface Dropped {
  batches: number;
  transactions: number;
  traces: number;
  /** values cut to the wire format's limits before sending (protocol's fitBatch) */
  cut: number;
}

interface Queued {
  batch: WireBatch;
  transactions: number;
}

type Outcome = 'sent' | 'refused' | 'retry';

/** One collector: its ingest URL and the keep-alive connection to it. */
interface Target {
  url: URL;
  client: typeof http | typeof https;
  keepAlive: Agent;
}

// not `import`: see instrument/http-server.ts (an ES module's import of node:http loads undici)
const http = process.getBuiltinModule('node:http');
const https = process.getBuiltinModule('node:https');

const REQUEST_TIMEOUT_MS = 10_000;
const TRACE_ID = /^[0-9a-f]{16,64}$/;
const MIN_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30_000;
/** The kinds of record a collector may leave out of a batch (its answer's `rejected`), singular and plural. */
const REJECTED = [
  ['traces', 'trace', 'traces'],
  ['longTasks', 'long task', 'long tasks'],
  ['contextLoss', 'context loss', 'context losses'],
] as const;

/** What to do about a collector's certificate that the process does not trust (a private CA's, a self-signed one). */
const untrusted = (error: NodeJS.ErrnoException): string =>
  /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/.test(error.code ?? '') ? ' (give the certificate of the CA that signed the collector\'s in NODE_EXTRA_CA_CERTS)' : '';

export class Transport {
  readonly dropped: Dropped = { batches: 0, transactions: 0, traces: 0, cut: 0 };
  /** What went wrong last (for diagnostics), undefined after a success. */
  lastError: string | undefined;
  private readonly targets: Target[];
  /** the collector batches go to, until one fails */
  private current = 0;
  /** failed attempts in a row, over every collector */
  private failures = 0;
  private readonly headers: Record<string, string>;
  private readonly maxQueue: number;
  private readonly queue: Queued[] = [];
  private inflight: Promise<Outcome> | null = null;
  private backoffMs = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  /**
   * What the operator was last told is wrong (`unreachable`, or the status a collector refused
   * batches with); undefined while all is well. A line is said when it changes, no more.
   */
  private told: string | undefined;
  /** Whether the operator was told of records a collector left out of a batch (said once). */
  private toldRejected = false;
  private stopped = false;

  /** Called with the trace ids a collector's answer asks for (export/held.ts). */
  private readonly onWant: ((traceIds: string[]) => void) | undefined;

  /**
   * `collector`: a base URL, or several separated by commas. One that is not an http:// or https://
   * URL is left out with a warning; none left, and the constructor throws (the agent stays off).
   */
  constructor(opts: { collector: string; token: string | undefined; maxQueue: number; onWant?: (traceIds: string[]) => void }) {
    this.onWant = opts.onWant;
    this.targets = [];
    for (const c of opts.collector.split(',').map((e) => e.trim())) {
      const url = URL.canParse(c) ? new URL('/v1/ingest', c) : undefined;
      if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
        warn(`LOOPSCOPE_COLLECTOR: ${JSON.stringify(c)} is not an http:// or https:// URL (such as http://127.0.0.1:4400); it is left out`);
        continue;
      }
      const client = url.protocol === 'https:' ? https : http;
      this.targets.push({ url, client, keepAlive: new client.Agent({ keepAlive: true, maxSockets: 1 }) });
    }
    if (this.targets.length === 0) throw new Error(`LOOPSCOPE_COLLECTOR ${JSON.stringify(opts.collector)} names no collector to ship to`);
    this.maxQueue = opts.maxQueue;
    this.headers = { 'content-type': 'application/json', 'content-encoding': 'gzip' };
    if (opts.token !== undefined) this.headers.authorization = `Bearer ${opts.token}`;
  }

  /** Queues a batch and sends it as soon as the collector can take it. */
  enqueue(batch: WireBatch, transactions: number): void {
    if (this.stopped) return;
    this.queue.push({ batch, transactions });
    // the batch in flight (the first) is never the one dropped
    while (this.queue.length > this.maxQueue) {
      if (this.dropped.batches === 0) {
        warn(`more than ${this.maxQueue} batches wait for the collector (${this.lastError ?? 'it is slow'}); dropping the oldest and counting what they held`);
      }
      this.drop(this.queue.splice(this.inflight === null ? 0 : 1, 1)[0]!);
    }
    this.pump();
  }

  /** Sends everything queued now, one attempt per batch, within `timeoutMs`. */
  async flush(timeoutMs: number): Promise<void> {
    this.clearRetry();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'expired'>((resolve) => {
      timer = setTimeout(resolve, timeoutMs, 'expired');
      timer.unref();
    });
    try {
      // every collector gets its chance: stop at the first one that answers nothing, or expiry
      let tries = 0;
      while (this.queue.length > 0 && !this.stopped) {
        const outcome = await Promise.race([this.inflight ?? this.sendFirst(), expired]);
        if (outcome === 'expired' || (outcome === 'retry' && ++tries >= this.targets.length)) break;
        if (outcome !== 'retry') tries = 0;
      }
    } finally {
      clearTimeout(timer);
      this.pump(); // whatever is left goes on with backoff
    }
  }

  /**
   * At exit, after the last flush: says how many batches never reached a collector (dropped, or
   * still queued), if any.
   */
  sayLosses(): void {
    const batches = this.dropped.batches + this.queue.length;
    if (batches === 0) return;
    const transactions = this.dropped.transactions + this.queue.reduce((n, q) => n + q.transactions, 0);
    warn(`${batches} ${batches === 1 ? 'batch' : 'batches'} (${transactions} ${transactions === 1 ? 'transaction' : 'transactions'}) could not be shipped${this.lastError === undefined ? '' : `; last: ${this.lastError}`}`);
  }

  stop(): void {
    this.stopped = true;
    this.clearRetry();
    for (const t of this.targets) t.keepAlive.destroy();
  }

  private drop(q: Queued): void {
    this.dropped.batches++;
    this.dropped.transactions += q.transactions;
    this.dropped.traces += q.batch.traces.length;
  }

  private clearRetry(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private pump(): void {
    if (this.inflight !== null || this.retryTimer !== null || this.queue.length === 0 || this.stopped) return;
    void this.sendFirst().then((outcome) => {
      // the next collector is tried at once; the backoff, once all have failed in a row
      if (outcome === 'retry' && this.failures % this.targets.length !== 0) this.pump();
      else if (outcome === 'retry') {
        this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs === 0 ? MIN_BACKOFF_MS : this.backoffMs * 2);
        const delay = this.backoffMs * (0.5 + Math.random() / 2);
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.pump();
        }, delay);
        this.retryTimer.unref();
      } else {
        this.backoffMs = 0;
        this.pump();
      }
    });
  }

  /** One attempt at the first queued batch; settles its fate in the queue. */
  private sendFirst(): Promise<Outcome> {
    const q = this.queue[0]!;
    // the drop counts are cumulative, so a lost batch never loses them
    q.batch.dropped = { ...this.dropped };
    this.inflight = this.post(q.batch, this.targets[this.current]!).then((outcome) => {
      this.inflight = null;
      if (outcome === 'retry') {
        this.failures++;
        this.current = (this.current + 1) % this.targets.length;
      } else this.failures = 0;
      if (outcome !== 'retry') {
        const i = this.queue.indexOf(q);
        if (i !== -1) this.queue.splice(i, 1);
        if (outcome === 'refused') this.drop(q);
      }
      return outcome;
    });
    return this.inflight;
  }

  private post(batch: WireBatch, { url, client, keepAlive }: Target): Promise<Outcome> {
    return new Promise((resolve) => {
      let body: string;
      try {
        body = JSON.stringify(batch);
      } catch (error) {
        this.lastError = `batch could not be serialized: ${String(error)}`;
        resolve('refused');
        return;
      }
      gzip(body, (zipError, zipped) => {
        if (zipError !== null) {
          this.lastError = `gzip failed: ${zipError.message}`;
          resolve('refused');
          return;
        }
        let req: ReturnType<typeof client.request>;
        try {
          req = client.request(url, { method: 'POST', agent: keepAlive, timeout: REQUEST_TIMEOUT_MS, headers: { ...this.headers, 'content-length': String(zipped.length) } });
        } catch (error) {
          // (in a gzip callback: a throw here would end the app)
          this.trouble('request', `cannot send to the collector at ${url.origin}: ${String(error)}`, ' (batches are dropped and counted)');
          resolve('refused');
          return;
        }
        req.on('response', (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', () => resolve('retry'));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) {
              this.lastError = undefined;
              if (this.told !== undefined) warn(`batches reach the collector at ${url.origin} again`);
              this.told = undefined;
              this.answered(chunks);
              resolve('sent');
              return;
            }
            const message = `collector at ${url.origin} answered ${status}: ${Buffer.concat(chunks).toString('utf8').slice(0, 300)}`;
            // refused for good (bad token, invalid batch): retrying would not help
            const permanent = status >= 400 && status < 500 && status !== 408 && status !== 429;
            if (permanent) this.trouble(String(status), message, ' (batches refused like this are dropped and counted)');
            else this.trouble('unreachable', message, this.waiting());
            resolve(permanent ? 'refused' : 'retry');
          });
        });
        req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
        req.on('error', (error) => {
          this.trouble('unreachable', `cannot reach the collector at ${url.origin}: ${error.message}${untrusted(error)}`, this.waiting());
          resolve('retry');
        });
        req.end(zipped);
      });
    });
  }

  /**
   * A collector's answer may name trace ids it wants whole (`want`), and the records it left out of
   * the batch for not being valid (`rejected`: said once); anything else in it is ignored.
   */
  private answered(chunks: Buffer[]): void {
    if (chunks.length === 0) return;
    let answer: { want?: unknown; rejected?: unknown };
    try {
      answer = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof answer;
    } catch {
      return; // not JSON: an older collector, or something else answering
    }
    if (answer === null || typeof answer !== 'object') return;
    if (!this.toldRejected && answer.rejected !== null && typeof answer.rejected === 'object') {
      const r = answer.rejected as Record<string, unknown>;
      const parts = REJECTED.map(([key, one, many]) => [Number(r[key]), one, many] as const)
        .filter(([n]) => n > 0)
        .map(([n, one, many]) => `${n} ${n === 1 ? one : many}`);
      if (parts.length > 0) {
        this.toldRejected = true;
        warn(`the collector left out ${parts.join(', ')} of a batch: ${String(r.message).slice(0, 300)} (records like this are dropped; the rest of each batch is stored)`);
      }
    }
    if (this.onWant === undefined || !Array.isArray(answer.want)) return;
    const ids = answer.want.filter((id): id is string => typeof id === 'string' && TRACE_ID.test(id));
    if (ids.length > 0) this.onWant(ids);
  }

  /** What happens to batches while no collector takes them. */
  private waiting(): string {
    return `; batches wait and are sent when it answers (the oldest dropped and counted past ${this.maxQueue})`;
  }

  /** Remembers the problem; says it, with what becomes of the batches, when it is not the one the operator was last told of. */
  private trouble(state: string, message: string, consequence: string): void {
    this.lastError = message;
    if (this.told === state) return;
    this.told = state;
    warn(message + consequence);
  }
}
