/**
 * The export side of the agent: every finished transaction goes into the aggregate of the current
 * interval (and maybe into the sampled traces); every `flushMs` (aligned on the wall clock) the
 * interval becomes a batch for the transport. Nothing here runs on the request path but `observe`,
 * which adds five values to five sketches.
 *
 * Senders that watch from outside the process (`loopscope proxy`, `loopscope probe`) ship through
 * the same Exporter (`loopscope/export`), under their own sender name, with cpu, external and
 * blocking null.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { MAX_TRACES, WIRE_VERSION, fitBatch, roundMs, type TraceRecord, type WireBatch, type WireContextLoss, type WireLoop } from '@loopscope/protocol';
import type { AgentConfig } from '../config.js';
import type { LoopHealth } from '../loop/health.js';
import type { LongTasks } from '../loop/long-tasks.js';
import { IntervalAggregate, type CallLike, type Observation } from '@loopscope/protocol';
import { HeldTraces } from './held.js';
import { TraceSampler } from './sampling.js';
import { Transport } from './transport.js';
import { warn } from '../log.js';

/** An idle process still says it is alive this often. */
const HEARTBEAT_MS = 10_000;
/** How long shutdown and exit signals wait for the last batches. */
export const FINAL_FLUSH_MS = 2000;

export const agentVersion = ((): string => {
  try {
    // by the package's own name: the same from dist/src and from the bundle (dist/bundle)
    return (createRequire(import.meta.url)('loopscope/package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

export interface ExporterOptions extends Pick<AgentConfig, 'service' | 'collector' | 'token' | 'flushMs' | 'sampleRate' | 'maxQueue'> {
  /** the sender's name in every batch (`agent.name`); default `loopscope`, the agent */
  sender?: string;
  /** runs the exporter's timers; the agent keeps them out of every transaction's context */
  schedule?: <T>(fn: () => T) => T;
}

export class Exporter {
  private readonly transport: Transport;
  private readonly config: ExporterOptions;
  private readonly sender: string;
  private readonly schedule: <T>(fn: () => T) => T;
  private readonly instance = `${hostname()}:${process.pid}`;
  private readonly sampler: TraceSampler;
  private readonly held = new HeldTraces();
  private interval = new IntervalAggregate(Date.now());
  private timer: NodeJS.Timeout | null = null;
  /** a flush failed once (said once) */
  private faulted = false;
  private lastSent = 0;
  /** Event-loop health and long tasks, shipped with every batch when set. */
  loop: { health: LoopHealth; longTasks: LongTasks } | undefined;
  /** Where requests lost their context (the agent's), shipped with every batch when set. */
  contextLoss: { take(): WireContextLoss[] } | undefined;
  /** What the process's resident memory grew by across the agent's start (bytes; agent.ts). */
  startRss = 0;
  /** Transactions finished since the agent's own time was last shipped. */
  private sinceCost = 0;

  constructor(config: ExporterOptions) {
    this.config = config;
    this.sender = config.sender ?? 'loopscope';
    this.schedule = config.schedule ?? ((fn) => fn());
    this.sampler = new TraceSampler(config.sampleRate);
    this.transport = new Transport({ collector: config.collector, token: config.token, maxQueue: config.maxQueue, onWant: (ids) => this.held.want(ids, Date.now()) });
  }

  start(): void {
    // intervals end on multiples of flushMs of the wall clock, so every process's seconds line up
    const first = this.config.flushMs - (Date.now() % this.config.flushMs);
    this.timer = this.schedule(() => setTimeout(() => this.tick(), first));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.transport.stop();
  }

  /**
   * A finished transaction: five values into its endpoint's sketches; its record only if sampled.
   * `keep`: a trace something else links to (a long task ran in it). `aborted`: its connection
   * closed before its response was finished; its trace is kept as an error's is. `crossing`: it
   * continued a caller's trace (export/held.ts). `calls`: its segments, counted by target.
   */
  observe(
    endpoint: string,
    error: boolean,
    keep: boolean,
    m: Observation,
    build: () => TraceRecord,
    aborted = false,
    crossing?: { traceId: string; spanId: string },
    calls: readonly CallLike[] = [],
  ): void {
    const entry = this.interval.entry(endpoint);
    entry.add(m, error, aborted);
    if (calls.length > 0) this.interval.addCalls(calls);
    this.sampler.offer(entry, m.duration, error || keep || aborted, build);
    // `crossing`: a callee's part of a trace, held in case another service keeps the trace
    if (crossing !== undefined) this.held.hold(crossing.traceId, crossing.spanId, build, Date.now());
  }

  /** Closes the interval into a batch and sends what is queued, within FINAL_FLUSH_MS. */
  async flush(): Promise<void> {
    this.own(() => this.cut(true));
    await this.transport.flush(FINAL_FLUSH_MS);
  }

  /** The last flush, then what could not be shipped, said (when the process ends). */
  async finish(): Promise<void> {
    try {
      await this.flush();
    } finally {
      this.transport.sayLosses();
    }
  }

  /**
   * Sends the last batches when the process is about to end: when the loop runs dry
   * (`beforeExit`) and on SIGINT/SIGTERM. A signal the app does not handle itself still ends the
   * process, after the flush, as it would have without the agent. `settle` delivers the
   * transactions that are done but not delivered yet. Returns the uninstaller.
   */
  flushOnExit(settle: () => void): () => void {
    let flushedDry = false;
    const onBeforeExit = (): void => {
      if (flushedDry) return;
      flushedDry = true; // once: the flush itself makes the loop run again
      settle();
      void this.finish();
    };
    const onSignal = (signal: NodeJS.Signals): void => {
      process.removeListener(signal, onSignal);
      const appHandles = process.listenerCount(signal) > 0;
      settle();
      // (the signal again once the warning, written on the next tick, is out)
      void this.finish().finally(() => {
        if (!appHandles) setImmediate(() => process.kill(process.pid, signal));
      });
    };
    process.on('beforeExit', onBeforeExit);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    return () => {
      process.removeListener('beforeExit', onBeforeExit);
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
    };
  }

  private tick(): void {
    // the timer fires at the boundary give or take a millisecond of libuv's clock: the interval
    // ends at the boundary itself, so that it is filed under the second it covers
    const flushMs = this.config.flushMs;
    const end = Math.round(Date.now() / flushMs) * flushMs;
    try {
      this.own(() => this.cut(false, end));
    } catch (err) {
      // a fault of the agent's never reaches the app (an exception in a timer would end it): said once, and the next flush goes on
      if (!this.faulted) warn(`a flush failed (${(err as Error).message}); its interval is lost, the next ones are shipped as usual. Please report it`);
      this.faulted = true;
    }
    if (this.timer === null) return; // stopped
    this.timer = this.schedule(() => setTimeout(() => this.tick(), Math.max(1, end + flushMs - Date.now())));
    this.timer.unref();
  }

  /** Runs `fn`, the exporter's own work: when long tasks are watched, it is never one. */
  private own(fn: () => void): void {
    if (this.loop === undefined) fn();
    else this.loop.longTasks.agentWork(fn);
  }

  private loopSample(start: number, end: number, transactions: number): WireLoop {
    const { health, longTasks } = this.loop!;
    const sample: WireLoop = { start: Math.round(start), ms: Math.max(1, Math.round(end - start)), ...health.collect(), longTasks: longTasks.take() };
    if (longTasks.dropped > 0) sample.droppedLongTasks = longTasks.dropped;
    longTasks.dropped = 0;
    // what the agent cost: its own time, read from the profiles taken (in `take` above, or now and
    // then), with the transactions finished over the same time
    this.sinceCost += transactions;
    const cost = longTasks.profiler?.cost();
    sample.agent = { rss: this.startRss };
    if (cost !== undefined) {
      sample.agent.cpu = { ms: roundMs(cost.ownMs), processMs: roundMs(cost.processMs), transactions: this.sinceCost };
      this.sinceCost = 0;
    }
    return sample;
  }

  /** The current interval as a batch (skipped when empty, but for a heartbeat now and then). */
  private cut(force: boolean, end = Date.now()): void {
    const interval = this.interval;
    this.interval = new IntervalAggregate(end);
    const traces = this.sampler.take(interval.endpoints.values());
    traces.push(...this.held.take(traces, end, MAX_TRACES - traces.length));
    this.transport.dropped.traces += this.sampler.skipped;
    this.sampler.skipped = 0;
    const calls = interval.callsToWire(end);
    const losses = this.contextLoss?.take() ?? [];
    const empty = interval.endpoints.size === 0 && traces.length === 0 && this.loop === undefined && losses.length === 0;
    if (empty && !force && end - this.lastSent < HEARTBEAT_MS) return;
    this.lastSent = end;
    const batch: WireBatch = {
      v: WIRE_VERSION,
      batchId: randomUUID(),
      service: this.config.service,
      instance: this.instance,
      agent: { name: this.sender, version: agentVersion },
      sentAt: end,
      intervals: interval.toWire(end),
      traces,
      ...(this.loop !== undefined ? { loop: this.loopSample(interval.start, end, interval.count) } : {}),
      ...(calls.length > 0 ? { calls } : {}),
      ...(losses.length > 0 ? { contextLoss: losses } : {}),
      dropped: { ...this.transport.dropped },
    };
    // fitted to the wire format's limits: what the collector refuses is never sent
    this.transport.dropped.cut += fitBatch(batch);
    this.transport.enqueue(batch, interval.count);
  }
}
