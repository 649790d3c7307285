/**
 * The one place where loopscope's numbers are defined (docs/metrics.md explains them in prose).
 *
 * - response: request seen → response finished.
 * - duration: request seen → end of the last slice, segment or response of the transaction.
 * - cpu: the sum of the synchronous slices that ran on the event loop in the transaction's context.
 * - external: the union of the intervals of its segments (and per kind).
 * - blocking: time it was ready to run while the loop ran something else.
 *
 * Slices are found with one async_hooks `before` callback and no `after`: a slice of transaction T
 * runs from the moment T's code starts until the loop starts running another transaction's code or
 * a macrotask of none (see the hook for what else stays in T's slice), or goes idle. The hook compares the current transaction with the previous one and, before a
 * macrotask (the only place the loop can have polled), reads libuv's idle-time counter; the clock
 * is read only when the owner changes or the loop has polled. Idle time is taken out with libuv's
 * own counter, so waiting in epoll never counts as cpu.
 */
import { createHook, executionAsyncId, executionAsyncResource } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import { criticalPath, roundMs, type ExternalByKind, type MetricName, type SegmentKind, type SegmentRecord, type TransactionRecord } from '@loopscope/protocol';
import { current, enableStorage, outside, promiseScopeOf, runningResource, scopeOf, takeRecentTick, tickScopeOf, type Scope } from './context.js';
import type { Segment, Transaction } from './transaction.js';

import { now } from './clock.js';

export { now };
const nodeTiming = performance.nodeTiming;

/** A poll that waited at least this long (ms) was idle: the I/O it returned arrived at its end. */
const REAL_WAIT_MS = 0.05;

// ---- the loop as the agent sees it -------------------------------------------------------------

/** The transaction whose slice is running (null: none, or agent/startup code). */
let owner: Transaction | null = null;
/** When the running slice started. */
let sliceStart = now();
/** libuv's cumulative idle time (ms) when the running slice started. */
let idleAtSliceStart = nodeTiming.idleTime;
/**
 * The callback whose `before` read libuv's idle counter last, and what it read. The counter moves
 * only while the loop polls, never inside a callback: while that callback runs, the reading holds
 * (and `enter`, `leave` and `settleRunningSlice`, called inside it, need not ask libuv again).
 */
let idleReadId = -1;
let idleRead = idleAtSliceStart;

/** libuv's cumulative idle time (ms), now. */
function idleNow(): number {
  return executionAsyncId() === idleReadId ? idleRead : nodeTiming.idleTime;
}

/** When the loop came back from its latest poll, and from the one before. */
let pollEnd = sliceStart;
let previousPollEnd = sliceStart;
/** Whether the latest poll really waited (then its I/O arrived at its end). */
let pollWaited = true;
/** The polls seen so far. */
let polls = 0;

/** How many polls the loop has made so far (as far as the agent sees them: see `polledBefore`). */
export function pollCount(): number {
  return polls;
}

/** The kinds of callback the loop calls: the hook tells them apart by their resource's class. */
const enum Kind {
  Timer,
  Io,
  Immediate,
}

/**
 * What kind of macrotask ran last. The loop's phases come in a fixed order, timers → poll (I/O) →
 * check (immediates) → close, so a poll has happened between two macrotasks when I/O follows a
 * timer or an immediate, or an immediate follows a timer. Two polls with nothing but I/O between
 * them would look like one; an unref'd immediate (the marker) runs in every check phase to stand
 * between them. It re-arms itself first thing, so it is the first immediate of every check phase
 * (what any callback queues comes after it), and an immediate before it in the same phase cannot
 * be mistaken for the start of the next: when the marker follows an immediate, the loop has gone
 * round and polled. A poll that returns at once leaves no trace in libuv's idle counter; these
 * transitions show it anyway, so the I/O bound below never reaches back further than one
 * iteration. The same immediate runs the agent's once-per-iteration work (`everyIteration`),
 * outside any transaction.
 */
let lastMacrotask = Kind.Immediate;
/**
 * The latest I/O callback, while nothing but I/O (and the ticks and promise reactions after it)
 * has run since: its async id, resource and scope. The same id next (an HTTP parser calls back
 * three times per read) is the same resource, and its scope has not changed (only `runInScope`
 * sets one on a running resource, and it restores it), so the hook need not ask Node again.
 */
let lastIo: unknown = null;
let lastIoId = -1;
let lastIoScope: Scope | undefined;
let marker: NodeJS.Immediate | null = null;
const realSetImmediate = globalThis.setImmediate;
let iterationWork: (() => void) | null = null;
function markIteration(): void {
  marker = realSetImmediate(markIteration);
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
 * kind meet (a megamorphic read is not cheap, and the hook runs ~14 times per request).
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

/** Whether the loop has polled since the previous macrotask, which was of `lastMacrotask`'s kind; updates it. */
function polledBefore(resource: { fd?: unknown }, cls: unknown, asyncId: number, scope: Scope | undefined): boolean {
  const last = lastMacrotask;
  if (cls === ImmediateClass) {
    lastMacrotask = Kind.Immediate;
    lastIo = null;
    lastIoId = -1;
    return last === Kind.Timer || (last === Kind.Immediate && resource === marker);
  }
  if (cls === TimeoutClass) {
    lastMacrotask = Kind.Timer;
    lastIo = null;
    lastIoId = -1;
    return false;
  }
  if (last !== Kind.Io) {
    // a handle's close callback (close phase, after the check phase) looks like I/O: a closed
    // stream handle has no file descriptor any more
    if (last === Kind.Immediate && typeof resource.fd === 'number' && resource.fd < 0) return false;
    lastMacrotask = Kind.Io;
  }
  lastIo = resource;
  lastIoId = asyncId;
  lastIoScope = scope;
  return last !== Kind.Io;
}

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

/**
 * The macrotask the loop is running (the callback it called: I/O, a timer, an immediate), which
 * the promise reactions and nextTick callbacks after it run in the turn of; and a count of them. A
 * transaction's code that runs in this turn (its own callback, a reaction, a callback a library
 * calls for it) was ready at the earliest when this macrotask was; a call that completes in it
 * completed then (docs/metrics.md, "When was a callback ready?").
 */
let macroKind = Kind.Io;
let macroResource: unknown = null;
let macroSerial = 0;

/** The macrotask running now, as a serial number: a call made in the same one has waited for nothing. */
export function callbackSerial(): number {
  return macroSerial;
}

/** When the macrotask running now was ready to run, at the earliest (Infinity: not known). */
function macroReady(): number {
  switch (macroKind) {
    case Kind.Timer: {
      // a timer is ready at its due time: exact to libuv's millisecond clock; when the loop was
      // waiting for it, it ran on time
      const r = macroResource as { _idleStart: unknown; _idleTimeout: unknown };
      if (typeof r._idleStart !== 'number' || typeof r._idleTimeout !== 'number') return Infinity;
      const due = r._idleStart + r._idleTimeout + uvToPerf;
      return pollWaited ? Math.max(due, pollEnd) : due;
    }
    // an immediate waits for the poll phase to pass from whenever it was queued: not known here
    case Kind.Immediate:
      return Infinity;
    // I/O: its completion is known only to have happened between two polls
    default:
      return ioReadySince();
  }
}

/** The earliest time code of `tx` running in this macrotask could have run. */
function readySince(tx: Transaction): number {
  // an immediate the transaction queued was ready from the end of the slice that queued it
  if (macroKind === Kind.Immediate) return scopeOf(macroResource as object)?.tx === tx ? tx.lastSliceEnd : Infinity;
  return macroReady();
}

/**
 * When a call of an external kind that started at `start`, in macrotask `serial`, and ends now,
 * was complete: when the macrotask it ends in was ready (its answer arrived), never before it
 * started; now if it started in this same macrotask (it waited for nothing) or the macrotask's
 * readiness is not known.
 */
export function completedAt(start: number, serial: number): number {
  const t = now();
  if (serial === macroSerial) return t;
  const ready = macroReady();
  return ready <= start ? start : ready < t ? ready : t;
}

/** When the I/O being delivered now became ready, at the earliest (see docs/metrics.md). */
export function ioReadySince(): number {
  return pollWaited ? pollEnd : previousPollEnd;
}

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

// ---- long tasks ---------------------------------------------------------------------------------

/** What hears of slices longer than the threshold, and of the waits they may have caused. */
export interface LongTaskSink {
  /** A slice of `owner` (null: no transaction) that ran `ms` from `start` (now() clock); `resource` is what the loop called. */
  slice(start: number, ms: number, owner: Transaction | null, resource: unknown): void;
  /** `tx` was ready but kept waiting from `from` to `to` (now() clock). */
  blocked(tx: Transaction, from: number, to: number): void;
}

let longTaskMs = Infinity;
let longTasks: LongTaskSink | null = null;
/** End of the latest long task: a wait that ended before it cannot have been caused by one. */
let lastLongTaskEnd = -Infinity;
/** What the loop called to start the running slice (null when it was entered by hand). */
let sliceResource: unknown = null;

export function watchLongTasks(thresholdMs: number, sink: LongTaskSink | null): void {
  longTaskMs = sink === null ? Infinity : thresholdMs;
  longTasks = sink;
}

/**
 * The owner of the loop changes (or the loop has polled): close the running slice, open the next.
 * `resource`: what the loop is calling (null: a slice entered by hand). `waited`: `tx` has been
 * waiting for this (its callback, a reaction, a library calling it back), so the time since it was
 * ready is blocking; not when it only resumes a slice it was running (`leave`, `settle`).
 */
function switchTo(tx: Transaction | null, idle: number, resource: unknown, waited: boolean, polled: boolean, t = now()): void {
  const idled = idle - idleAtSliceStart;
  if (idled > 0 || polled) {
    previousPollEnd = pollEnd;
    pollEnd = t;
    pollWaited = idled >= REAL_WAIT_MS;
    polls++;
  }
  const prev = owner;
  const busy = t - sliceStart - idled;
  if (busy >= longTaskMs) {
    lastLongTaskEnd = sliceStart + busy;
    longTasks!.slice(sliceStart, busy, prev, sliceResource);
  }
  // a slice of a transaction that was done before it and still is afterwards was a library's
  // housekeeping (a socket closing): not the transaction's work
  if (prev !== null && !(prev.afterDone && prev.isDone())) prev.ran(sliceStart, sliceStart + (busy > 0 ? busy : 0));
  if (prev !== null) prev.afterDone = false;
  if (tx !== null && tx.open) {
    // a transaction that is done waits for nothing: its callbacks from now on are housekeeping,
    // unless they start new work
    if (tx.finishing && tx.isDone()) tx.afterDone = true;
    else if (waited) addBlocking(tx, readySince(tx), t);
  }
  owner = tx;
  sliceStart = t;
  idleAtSliceStart = idle;
  sliceResource = resource;
}

function addBlocking(tx: Transaction, ready: number, t: number): void {
  const from = ready > tx.blockedUntil ? ready : tx.blockedUntil;
  if (t > from) countBlocking(tx, from, t);
  tx.blockedUntil = t;
}

function countBlocking(tx: Transaction, from: number, to: number): void {
  tx.waited(from, to);
  if (lastLongTaskEnd > from) longTasks?.blocked(tx, from, to);
}

/** Exceptions inside the hook would kill the process: they are counted instead. */
export let hookErrors = 0;

const hook = createHook({
  before(asyncId) {
    try {
      // the same I/O callback's resource right after itself (an HTTP parser's callbacks for one
      // read): known already, and the loop has not polled in between, so libuv's idle counter has
      // not moved
      const again = asyncId === lastIoId;
      const tick = again ? null : takeRecentTick(asyncId);
      if (tick !== null) {
        // a nextTick callback: it runs in the turn of the callback before it (see below)
        const scope = tickScopeOf(tick);
        // (stores of new objects into the long-lived `current` cost a write barrier each: the tick
        // is not kept, and the scope is mostly the same as the last callback's)
        current.id = asyncId;
        current.resource = null;
        if (current.scope !== scope) current.scope = scope;
        if (scope !== undefined && scope.tx !== owner) switchTo(scope.tx, idleAtSliceStart, tick, true, false);
        return;
      }
      const resource = again ? (lastIo as object) : executionAsyncResource();
      // the class first: the scope of a tick or a promise is read where only its kind is seen
      const cls = again ? null : (resource as { constructor?: unknown }).constructor;
      const scope = again ? lastIoScope : cls === Object ? tickScopeOf(resource) : cls === Promise ? promiseScopeOf(resource) : scopeOf(resource);
      current.id = asyncId;
      current.resource = resource;
      if (current.scope !== scope) current.scope = scope;
      const tx = scope === undefined ? null : scope.tx;
      let polled = false;
      let idle = idleAtSliceStart;
      if (!again) {
        // promise reactions and nextTick callbacks (whose resource is a plain object) run in the
        // same turn as the callback before them: the loop cannot have polled in between, so
        // libuv's idle counter need not be read. One that belongs to no transaction is charged to
        // the transaction running: in that turn it is mostly Node's own work for the request (its
        // streams' ticks, created before the request was seen)
        if (cls === Object || cls === Promise || (cls !== ImmediateClass && cls !== TimeoutClass && resource instanceof Promise)) {
          if (tx !== owner && tx !== null) switchTo(tx, idleAtSliceStart, resource, true, false);
          return;
        }
        polled = polledBefore(resource, cls, asyncId, scope);
        macroKind = lastMacrotask;
        macroResource = resource;
        macroSerial++;
        idle = idleRead = nodeTiming.idleTime;
        idleReadId = asyncId;
      }
      // the request's own connection (its parser finishing the message) goes on with the request
      if (tx === null && owner !== null && resource === owner.ioResource && !polled && idle === idleAtSliceStart) return;
      if (tx !== owner || idle !== idleAtSliceStart || polled) switchTo(tx, idle, resource, true, polled);
    } catch {
      hookErrors++;
    }
  },
});

export function startTiming(): void {
  enableStorage();
  calibrateTimerClock();
  sliceStart = pollEnd = previousPollEnd = now();
  idleAtSliceStart = nodeTiming.idleTime;
  idleReadId = -1;
  hook.enable();
  outside(markIteration);
}

export function stopTiming(): void {
  hook.disable();
  if (marker !== null) clearImmediate(marker);
  marker = null;
  owner = null;
}

/**
 * `tx` runs from now inside the current callback (`transaction(fn)`, a wrapped callback or a
 * library's callback called from elsewhere); what ran of the callback before belongs to the
 * previous owner, which is returned for `leave`. If `tx` was waiting, the time since this callback
 * was ready is its blocking.
 */
export function enter(tx: Transaction): Transaction | null {
  const prev = owner;
  switchTo(tx, idleNow(), null, true, false);
  return prev;
}

/**
 * A new transaction `tx`, created a moment ago for I/O that arrived (a request, a message), runs
 * from now; returns the previous owner for `leave`. It starts when that I/O was ready, not when the
 * loop got to it: the wait in between is blocking, and the user waited it too. Ready at the
 * earliest since the poll that returned it (docs/metrics.md); never before `notBefore`, when the
 * caller knows better (a request on a kept-alive connection cannot have arrived before the
 * previous response on it was sent); from `acceptReady` if that was earlier (the first request of a
 * connection that was itself accepted late).
 */
export function enterArrived(tx: Transaction, notBefore = -Infinity, acceptReady = Infinity): Transaction | null {
  const prev = owner;
  // created a moment ago: its creation time is now, and saves a clock read
  const seen = tx.start;
  switchTo(tx, idleNow(), null, false, false, seen);
  tx.ioResource = runningResource();
  const io = ioReadySince();
  let ready = acceptReady < io ? acceptReady : io;
  if (ready < notBefore) ready = notBefore;
  if (ready < seen) {
    tx.startedAt(ready);
    countBlocking(tx, ready, seen);
  }
  return prev;
}

/** The synchronous part started by `enter` is over; `prev` owns the loop again. */
export function leave(prev: Transaction | null): void {
  if (owner !== prev) switchTo(prev, idleNow(), null, false, false);
}

/** The slice running now, closed as of now: for a transaction ending inside its own slice. */
export function settleRunningSlice(tx: Transaction): void {
  if (owner === tx) switchTo(tx, idleNow(), null, false, false);
}

// ---- from raw observations to the record ----------------------------------------------------------

/** Total length of the union of [start, end) intervals; sorts `spans` in place. */
function unionLength(spans: Array<[number, number]>): number {
  spans.sort((a, b) => a[0] - b[0]);
  let total = 0;
  let curStart = -Infinity;
  let curEnd = -Infinity;
  for (const [s, e] of spans) {
    if (s > curEnd) {
      if (curEnd > curStart) total += curEnd - curStart;
      curStart = s;
      curEnd = e;
    } else if (e > curEnd) curEnd = e;
  }
  if (curEnd > curStart) total += curEnd - curStart;
  return total;
}

const round = roundMs;

/** duration's end: the latest of its last slice, its response and its segments. */
function lastWorkEnd(tx: Transaction): number {
  let end = tx.lastSliceEnd;
  if (tx.responseEnd > end) end = tx.responseEnd;
  for (const seg of tx.segments) if (seg.end > end) end = seg.end;
  return end;
}

/** The five numbers of a finished transaction (ms), and the times they were measured between. */
export interface Measures extends Record<MetricName, number> {
  /** external time by kind of segment (each kind's own union) */
  externalByKind: ExternalByKind;
  /** when the transaction ended (duration's end), on the now() clock */
  end: number;
  /** when the response finished (or `end` if it never did), on the now() clock */
  responseEnd: number;
}

const NO_EXTERNAL: ExternalByKind = Object.freeze({});

/** The numbers only, without the record (the exporter needs these for every transaction); `closedAt` for one closed early. */
export function measure(tx: Transaction, closedAt?: number): Measures {
  const end = closedAt ?? lastWorkEnd(tx);
  const responseEnd = tx.responseEnd >= 0 ? tx.responseEnd : end;
  let external = 0;
  let externalByKind = NO_EXTERNAL;
  if (tx.segments.length > 0) {
    const spans: Array<[number, number]> = [];
    let kind: SegmentKind | undefined;
    let mixed = false;
    for (const seg of tx.segments) {
      if (!seg.external) continue;
      spans.push([seg.start, seg.end >= 0 ? seg.end : end]);
      if (kind === undefined) kind = seg.kind;
      else if (seg.kind !== kind) mixed = true;
    }
    external = round(unionLength(spans));
    if (kind !== undefined) externalByKind = mixed ? unionByKind(tx, end) : { [kind]: external };
  }
  return {
    end,
    responseEnd,
    response: round(responseEnd - tx.start),
    duration: round(end - tx.start),
    cpu: round(tx.cpu),
    external,
    externalByKind,
    blocking: round(tx.blocking),
  };
}

function unionByKind(tx: Transaction, end: number): ExternalByKind {
  const byKind = new Map<SegmentKind, Array<[number, number]>>();
  for (const seg of tx.segments) {
    if (!seg.external) continue;
    let list = byKind.get(seg.kind);
    if (list === undefined) byKind.set(seg.kind, (list = []));
    list.push([seg.start, seg.end >= 0 ? seg.end : end]);
  }
  const out: ExternalByKind = {};
  for (const [kind, spans] of byKind) out[kind] = round(unionLength(spans));
  return out;
}

/** The finished transaction as the rest of loopscope sees it, from its measures. */
export function buildRecord(tx: Transaction, service: string, m: Measures): TransactionRecord {
  const { end } = m;
  const segments: SegmentRecord[] = [];
  for (const seg of tx.segments) segments.push(segmentRecord(seg, tx.start, seg.end >= 0 ? seg.end : end));
  // for HTTP transactions the path ends at the response: later work did not make the user wait
  const pathEnd = (tx.isHttp ? m.responseEnd : end) - tx.start;
  const path = criticalPath(segments.map((s, i) => ({ id: s.id, parentId: s.parentId, start: s.start, end: s.end, awaited: tx.segments[i]!.awaited })), pathEnd);
  const onPath = new Set(path);
  for (const s of segments) s.onCriticalPath = onPath.has(s.id);
  return {
    traceId: tx.traceId,
    service,
    endpoint: tx.endpoint,
    start: tx.startEpoch,
    status: tx.status,
    error: tx.error,
    ...(tx.errorMessage !== undefined ? { errorMessage: tx.errorMessage } : {}),
    response: m.response,
    duration: m.duration,
    cpu: m.cpu,
    external: m.external,
    externalByKind: { ...m.externalByKind },
    blocking: m.blocking,
    segments,
    criticalPath: path,
    truncated: tx.truncated,
    droppedSegments: tx.droppedSegments,
    ...(tx.slices !== null ? { slices: timeline(tx.slices, tx.start) } : {}),
    ...(tx.waits !== null ? { waits: timeline(tx.waits, tx.start) } : {}),
  };
}

/** start, end pairs on the now() clock → [start, end] in ms from the transaction's start. */
function timeline(flat: number[], txStart: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < flat.length; i += 2) out.push([round(flat[i]! - txStart), round(flat[i + 1]! - txStart)]);
  return out;
}

function segmentRecord(seg: Segment, txStart: number, end: number): SegmentRecord {
  const rec: SegmentRecord = {
    id: seg.id,
    parentId: seg.parentId,
    name: seg.name,
    kind: seg.kind,
    start: round(seg.start - txStart),
    end: round(end - txStart),
    onCriticalPath: false,
  };
  if (seg.error !== undefined) rec.error = seg.error;
  if (seg.end < 0) rec.unfinished = true;
  if (seg.operation !== undefined) rec.operation = seg.operation;
  if (seg.target !== undefined) rec.target = seg.target;
  if (seg.statement !== undefined) rec.statement = seg.statement;
  return rec;
}
