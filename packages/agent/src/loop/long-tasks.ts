/**
 * Long tasks: slices of JavaScript on the loop longer than LOOPSCOPE_LONG_TASK_MS. Each is kept with
 * the transaction it ran for (or none), the function that ran (named by the sampling profiler, or
 * the callback the loop called), and the transactions it kept waiting: every wait that overlaps a
 * recent long task is added to that task's count per endpoint, so "GET /report blocked 37 requests
 * for 1.2 s" is a fact, not a guess. The agent's own work (a flush, taking the profile) is never
 * part of one: its time is taken out of the slice it ran in.
 *
 * Endpoints are named as the transactions ended: a task that ran in middleware before routing, or a
 * request it kept waiting before its router had seen it, still has its raw path for a name at that
 * moment. A task keeps the transactions it names (its own and the waiting ones, at most
 * MAX_WAITING) and takes their names when it is shipped; a settled task that names a transaction
 * still open waits one batch more for it, then takes the name it has by then (docs/metrics.md).
 * Its location and stack are mapped through the files' source maps (source-maps.ts), the compiled
 * location kept beside; a task waits for its files' maps to be read, as long as for a name.
 */
import { LIMITS, roundMs, type WireLongTask } from '@loopscope/protocol';
import type { LongTaskSink } from './observer.js';
import type { Transaction } from '../transaction.js';
import type { Culprit, Profiler } from './profiler.js';
import { SourceMaps } from './source-maps.js';

export const MAX_LONG_TASKS_PER_BATCH = 100;
/** Long tasks waits are matched against (the latest ones). */
const RECENT = 16;
/** A task is shipped once this long has passed since it ended: the waits it caused are counted by then. */
const SETTLE_MS = 250;
/**
 * A task that names a transaction still open (its final name may yet come: a router after an auth
 * middleware that ran the task) waits for it this long at most, then goes with the names as they are.
 */
const MAX_DEFER_MS = 10_000;
const MAX_BLOCKED_ENDPOINTS = 100;
/** Waiting transactions a task keeps by reference until it is shipped; more are counted under their name of the moment. */
const MAX_WAITING = 1000;
/** Spans of the agent's own work kept to be taken out of the slices they ran in (the latest ones). */
const OWN_WORK = 16;

interface Task {
  start: number;
  /** the app's busy time in it */
  ms: number;
  /** how long the loop was busy from `start`: `ms`, and the agent's own work if it ran in between */
  span: number;
  /** the transaction it ran for: its name is read when the task is shipped */
  tx: Transaction | null;
  traceId: string | undefined;
  /** what the loop called, when it is known */
  callback: string | undefined;
  /** named from the profile taken after it ended (undefined: not yet, or no samples) */
  culprit: Culprit | undefined;
  explained: boolean;
  /** the transactions it kept waiting, and for how long (ms): named when the task is shipped */
  waiting: Map<Transaction, number>;
  /** beyond MAX_WAITING: per endpoint as named at the wait */
  blocked: Map<string, { count: number; ms: number }>;
  /** settled, but shipped one batch later, for a transaction it names that was still open */
}

/** The locations a culprit names: its function's, and its stack's. */
function locationsOf(culprit: Culprit | undefined): string[] {
  if (culprit === undefined) return [];
  return [...(culprit.location === undefined ? [] : [culprit.location]), ...culprit.stack.flatMap(SourceMaps.frameLocation)];
}

/** Still open: its name may change (a router, `setName`, a 4xx on an unmatched URL). */
function unsettledName(tx: Transaction | null): boolean {
  return tx !== null && tx.open;
}

function callbackName(resource: unknown): string | undefined {
  const r = resource as { _onTimeout?: unknown; _onImmediate?: unknown } | null;
  const fn = typeof r?._onTimeout === 'function' ? r._onTimeout : typeof r?._onImmediate === 'function' ? r._onImmediate : undefined;
  if (fn === undefined) return undefined;
  return (fn as { name?: string }).name || '(anonymous)';
}

export class LongTasks implements LongTaskSink {
  /** Left out beyond MAX_LONG_TASKS_PER_BATCH since the last batch. */
  dropped = 0;
  private pending: Task[] = [];
  private readonly recent: Task[] = [];
  /** when the agent's own work ran: [from, to, from, to, ...] (now() clock), oldest first */
  private readonly own: number[] = [];
  private readonly thresholdMs: number;
  readonly profiler: Profiler | null;
  private readonly sourceMaps = new SourceMaps((fn) => this.agentWork(fn));

  /** `thresholdMs`: LOOPSCOPE_LONG_TASK_MS, the shortest slice that is a long task. */
  constructor(thresholdMs: number, profiler: Profiler | null) {
    this.thresholdMs = thresholdMs;
    this.profiler = profiler;
  }

  /**
   * Runs `fn`, work of the agent's own (a flush, taking the profile), and returns what it returns:
   * its time is taken out of the slice it runs in, so it never makes a long task, nor is it named
   * as one. Two clock reads.
   */
  agentWork<T>(fn: () => T): T {
    const from = performance.now();
    try {
      return fn();
    } finally {
      if (this.own.length >= 2 * OWN_WORK) this.own.splice(0, 2);
      this.own.push(from, performance.now());
    }
  }

  slice(start: number, ms: number, tx: Transaction | null, resource: unknown): void {
    const span = ms;
    // the agent's work inside the slice (busy from `start` for `ms`) is not the app's: what is left
    // may be too short to be a long task
    for (let i = 0; i < this.own.length; i += 2) {
      const overlap = Math.min(this.own[i + 1]!, start + span) - Math.max(this.own[i]!, start);
      if (overlap > 0) ms -= overlap;
    }
    if (ms < this.thresholdMs) return;
    const task: Task = {
      start,
      ms,
      span,
      tx,
      traceId: tx?.traceId,
      callback: callbackName(resource),
      culprit: undefined,
      explained: false,
      waiting: new Map(),
      blocked: new Map(),
    };
    if (tx !== null) tx.ranLongTask();
    if (this.pending.length < MAX_LONG_TASKS_PER_BATCH) this.pending.push(task);
    else this.dropped++;
    this.recent.push(task);
    if (this.recent.length > RECENT) this.recent.shift();
  }

  blocked(tx: Transaction, from: number, to: number): void {
    for (const task of this.recent) {
      const overlap = Math.min(to, task.start + task.span) - Math.max(from, task.start);
      if (overlap <= 0) continue;
      const ms = task.waiting.get(tx);
      if (ms !== undefined || task.waiting.size < MAX_WAITING) {
        task.waiting.set(tx, (ms ?? 0) + overlap);
        continue;
      }
      let entry = task.blocked.get(tx.endpoint);
      if (entry === undefined) {
        if (task.blocked.size >= MAX_BLOCKED_ENDPOINTS) continue;
        task.blocked.set(tx.endpoint, (entry = { count: 0, ms: 0 }));
      }
      entry.ms += overlap;
      if (tx.blockedBehind(task)) entry.count++;
    }
  }

  /** The long tasks that have settled, with the functions that ran; the rest wait for the next batch. */
  take(): WireLongTask[] {
    // every task that has ended is explained now, settled or not: taking the profile uses up its samples
    const unexplained = this.pending.filter((t) => !t.explained);
    if (unexplained.length > 0 && this.profiler !== null) {
      const culprits = this.profiler.explain(unexplained.map((t) => ({ start: t.start, ms: t.span })));
      unexplained.forEach((task, i) => {
        task.culprit = culprits[i];
        task.explained = true;
      });
    } else this.profiler?.maintain();
    const settledBefore = performance.now() - SETTLE_MS;
    const deferredBefore = performance.now() - MAX_DEFER_MS;
    const ready: Task[] = [];
    const later: Task[] = [];
    for (const task of this.pending) {
      if (task.start + task.span >= settledBefore) later.push(task);
      else if (
        task.start + task.span >= deferredBefore &&
        // (while the queue has room: a task dropped for waiting would lose more than a name)
        this.pending.length < MAX_LONG_TASKS_PER_BATCH / 2 &&
        (unsettledName(task.tx) || [...task.waiting.keys()].some(unsettledName) || !this.sourceMaps.ready(locationsOf(task.culprit)))
      ) {
        // a transaction it names is still open (its final name is known once it ends), or its
        // files' source maps are being read
        later.push(task);
      } else ready.push(task);
    }
    if (ready.length === 0) return [];
    this.pending = later;
    // a shipped task counts no more waits: it lets go of the transactions it named
    for (let i = this.recent.length - 1; i >= 0; i--) if (ready.includes(this.recent[i]!)) this.recent.splice(i, 1);
    return ready.map((task): WireLongTask => {
      const culprit = task.culprit;
      const byName = task.blocked;
      for (const [tx, ms] of task.waiting) {
        const name = tx.endpoint;
        const entry = byName.get(name);
        if (entry !== undefined) {
          entry.count++;
          entry.ms += ms;
        } else if (byName.size < MAX_BLOCKED_ENDPOINTS) byName.set(name, { count: 1, ms });
      }
      task.waiting.clear();
      const blocked = [...byName]
        .map(([endpoint, b]) => ({ endpoint, count: b.count, ms: roundMs(b.ms) }))
        .sort((a, b) => b.ms - a.ms);
      const tx = task.tx;
      const mapped = culprit?.location === undefined ? undefined : this.sourceMaps.map(culprit.location);
      return {
        at: performance.timeOrigin + task.start,
        ms: roundMs(task.ms),
        ...(tx !== null ? { endpoint: tx.endpoint.slice(0, LIMITS.endpoint), traceId: task.traceId! } : {}),
        function: (culprit?.function ?? task.callback ?? '(unknown)').slice(0, LIMITS.taskFunction),
        ...(culprit?.location !== undefined ? { location: (mapped ?? culprit.location).slice(0, LIMITS.location) } : {}),
        ...(mapped !== undefined ? { compiledLocation: culprit!.location!.slice(0, LIMITS.location) } : {}),
        ...(culprit !== undefined ? { stack: culprit.stack.map((s) => this.sourceMaps.mapFrame(s).slice(0, LIMITS.stackFrame)) } : {}),
        blocked,
      };
    });
  }
}
