/**
 * The async-hook engine: it watches every callback the event loop calls and tells the loop
 * observer (loop/observer.ts) what it sees — each macrotask's kind, resource and transaction, and
 * libuv's idle counter — and gives the rest of the agent the observer's answers.
 *
 * One async_hooks `before` callback and no `after`: a slice lasts until the next callback of
 * another transaction (or of none), or until the loop polls. Before a macrotask (the only place the
 * loop can have polled), the hook reads libuv's idle-time counter; the clock is read only when the
 * running transaction changes or the loop has polled.
 */
import { createHook, executionAsyncId, executionAsyncResource } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import { callback, enableStorage, outside, promiseScopeOf, runningResource, scopeOf, takeRecentTick, tickScopeOf } from './context.js';
import { now } from './clock.js';
import { ioEnded } from './io.js';
import { Kind, LoopObserver, type LongTaskSink } from './loop/observer.js';
import type { Transaction, Scope } from './transaction.js';

const nodeTiming = performance.nodeTiming;

/** Offset from libuv's timer clock (ms since the loop started) to performance.now(). */
let uvToPerf = 0;
function calibrateTimerClock(): void {
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t = setTimeout(() => {}, 1e6) as unknown as { _idleStart: number };
    const off = now() - t._idleStart;
    clearTimeout(t as unknown as NodeJS.Timeout);
    if (off < best) best = off;
  }
  // _idleStart is libuv's clock floored to the millisecond: the true offset is half a ms less on average
  uvToPerf = best - 0.5;
}

/** A timer's due time (Node keeps it on libuv's millisecond clock), on the now() clock. */
function dueOf(timer: unknown): number {
  const r = timer as { _idleStart: unknown; _idleTimeout: unknown };
  return typeof r._idleStart === 'number' && typeof r._idleTimeout === 'number' ? r._idleStart + r._idleTimeout + uvToPerf : NaN;
}

const loop = new LoopObserver(now, dueOf, nodeTiming.idleTime);

/**
 * The callback whose `before` read libuv's idle counter last, and what it read. The counter moves
 * only while the loop polls, never inside a callback: while that callback runs, the reading holds
 * (and `enter`, `leave` and `settleRunningSlice`, called inside it, need not ask libuv again).
 */
let idleReadId = -1;
let idleRead = loop.idleAtSliceStart;

/** libuv's cumulative idle time (ms), now. */
function idleNow(): number {
  return executionAsyncId() === idleReadId ? idleRead : nodeTiming.idleTime;
}

/** How many polls the loop has made so far, as far as the agent sees them. */
export function pollCount(): number {
  return loop.polls;
}

/**
 * The latest I/O callback, while nothing but I/O (and the ticks and promise reactions after it)
 * has run since: its async id, resource and scope. The same id next (an HTTP parser calls back
 * three times per read) is the same resource, and its scope has not changed (only `runInScope`
 * sets one on a running resource, and it restores it), so the hook need not ask Node again.
 */
let lastIo: object | null = null;
let lastIoId = -1;
let lastIoScope: Scope | undefined;
/**
 * An unref'd immediate that re-arms itself first thing in every check phase (what any callback
 * queues comes after it), so that the observer sees the loop go round even when nothing but I/O
 * runs; it also runs the agent's once-per-iteration work (`everyIteration`), outside any transaction.
 */
let marker: NodeJS.Immediate | null = null;
const realSetImmediate = globalThis.setImmediate;
let iterationWork: (() => void) | null = null;
function markIteration(): void {
  loop.marker = marker = realSetImmediate(markIteration);
  marker.unref();
  if (iterationWork !== null) {
    try {
      iterationWork();
    } catch {
      hookErrors++;
    }
  }
}

/**
 * The classes of Node's timers and immediates (node:timers does not export them). The hook tells
 * a callback's kind by its resource's constructor: one property read, where the resources of every
 * kind meet (a megamorphic read is not cheap, and the hook runs for every callback).
 */
const TimeoutClass: unknown = (() => {
  const t = setTimeout(() => {}, 1e6);
  clearTimeout(t);
  return t.constructor;
})();
const ImmediateClass: unknown = (() => {
  const i = realSetImmediate(() => {});
  clearImmediate(i);
  return i.constructor;
})();

/** `work` runs once per loop iteration, after the poll, outside any transaction (null: nothing). */
export function everyIteration(work: (() => void) | null): void {
  iterationWork = work;
}

/**
 * The iteration work must run soon: the marker keeps the loop alive and the poll from sleeping
 * until it has run once (a script's last transaction, or one finished after the check phase).
 */
export function wakeNextIteration(): void {
  if (marker !== null && !marker.hasRef()) marker.ref();
}

/** The macrotask running now, as a serial number: a call made in the same one has waited for nothing. */
export function callbackSerial(): number {
  return loop.serial;
}

/** When the slice running now started (the code of its transaction, or of none, ran from then on). */
export function runningSince(): number {
  return loop.runningSince;
}

/** When a call of an external kind that started at `start`, in macrotask `serial`, and ends now, was complete. */
export function completedAt(start: number, serial: number): number {
  return loop.completedAt(start, serial);
}

/** When the I/O being delivered now became ready, at the earliest (see docs/metrics.md). */
export function ioReadySince(): number {
  return loop.ioReadySince();
}

export function watchLongTasks(thresholdMs: number, sink: LongTaskSink | null): void {
  loop.watchLongTasks(thresholdMs, sink);
}

/** Exceptions inside the hook would kill the process: they are counted instead. */
export let hookErrors = 0;

const hook = createHook({
  before(asyncId) {
    try {
      // the same I/O callback's resource right after itself (an HTTP parser's callbacks for one
      // read): known already, and the loop has not polled in between, so libuv's idle counter has
      // not moved
      if (asyncId === lastIoId) {
        const resource = lastIo!;
        callback.id = asyncId;
        callback.resource = resource;
        if (callback.scope !== lastIoScope) callback.scope = lastIoScope;
        loop.sameIo(resource, lastIoScope === undefined ? null : lastIoScope.tx);
        return;
      }
      const tick = takeRecentTick(asyncId);
      if (tick !== null) {
        // a nextTick callback: it runs in the turn of the callback before it (see below)
        const scope = tickScopeOf(tick);
        // (stores of new objects into the long-lived `callback` cost a write barrier each: the tick
        // is not kept, and the scope is mostly the same as the last callback's)
        callback.id = asyncId;
        callback.resource = null;
        if (callback.scope !== scope) callback.scope = scope;
        if (scope !== undefined) loop.reaction(tick, scope.tx);
        return;
      }
      const resource = executionAsyncResource();
      // the class first: the scope of a tick or a promise is read where only its kind is seen
      const cls = (resource as { constructor?: unknown }).constructor;
      const scope = cls === Object ? tickScopeOf(resource) : cls === Promise ? promiseScopeOf(resource) : scopeOf(resource);
      callback.id = asyncId;
      callback.resource = resource;
      if (callback.scope !== scope) callback.scope = scope;
      // promise reactions and nextTick callbacks (whose resource is a plain object) run in the same
      // turn as the callback before them: the loop cannot have polled in between, so libuv's idle
      // counter need not be read. One that belongs to no transaction is charged to the transaction
      // running: in that turn it is mostly Node's own work for the request (its streams' ticks,
      // created before the request was seen)
      if (cls === Object || cls === Promise || (cls !== ImmediateClass && cls !== TimeoutClass && resource instanceof Promise)) {
        if (scope !== undefined) loop.reaction(resource, scope.tx);
        return;
      }
      const kind = cls === ImmediateClass ? Kind.Immediate : cls === TimeoutClass ? Kind.Timer : Kind.Io;
      const idle = (idleRead = nodeTiming.idleTime);
      idleReadId = asyncId;
      loop.macrotask(kind, resource, scope === undefined ? null : scope.tx, idle);
      // a file-system or name-resolution operation of the transaction ended (io.ts)
      if (scope !== undefined && scope.tx.ioOps !== null && scope.tx.ioOps.size > 0) ioEnded(scope.tx, asyncId, completedAt);
      if (kind === Kind.Io && loop.lastKind === Kind.Io) {
        lastIo = resource;
        lastIoId = asyncId;
        lastIoScope = scope;
      } else {
        lastIo = null;
        lastIoId = -1;
      }
    } catch {
      hookErrors++;
    }
  },
});

export function startTiming(): void {
  enableStorage();
  calibrateTimerClock();
  loop.restart(now(), nodeTiming.idleTime);
  idleReadId = -1;
  hook.enable();
  outside(markIteration);
}

export function stopTiming(): void {
  hook.disable();
  if (marker !== null) clearImmediate(marker);
  loop.marker = marker = null;
  loop.running = null;
}

/**
 * `tx` runs from now inside the current callback (`transaction(fn)`, a wrapped callback or a
 * library's callback called from elsewhere); returns the previous transaction, for `leave`.
 */
export function enter(tx: Transaction): Transaction | null {
  return loop.enter(tx, idleNow());
}

/**
 * A new transaction `tx`, created a moment ago for I/O that arrived (a request, a message), runs
 * from now and starts when that I/O was ready (loop/observer.ts); returns the previous
 * transaction, for `leave`.
 */
export function enterArrived(tx: Transaction, notBefore?: number, acceptReady?: number): Transaction | null {
  return loop.enterArrived(tx, idleNow(), runningResource(), notBefore, acceptReady);
}

/** The synchronous part started by `enter` is over; `prev` runs again. */
export function leave(prev: Transaction | null): void {
  loop.leave(prev, idleNow());
}

/** The slice running now, closed as of now: for a transaction ending inside its own slice. */
export function settleRunningSlice(tx: Transaction): void {
  loop.settle(tx, idleNow());
}
