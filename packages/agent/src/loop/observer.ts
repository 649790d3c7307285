/**
 * The event loop as the agent sees it, and the rules that turn what it sees into slices and waits.
 *
 * It is told of each callback the loop calls (a macrotask: I/O, a timer, an immediate) and of the
 * promise reactions and nextTick callbacks run in its turn, with the transaction each belongs to,
 * and of libuv's idle counter; it reads nothing itself but its clock. From that it keeps which
 * transaction's slice is running, when the loop polled, and when the code about to run was ready,
 * and tells each transaction what ran (`ran`) and what waited (`waited`). The async hook that
 * feeds it is timing.ts; a unit test feeds it with a fake clock and fake callbacks.
 *
 * A slice of transaction T runs from the moment T's code starts until the loop runs another
 * transaction's code or a macrotask of none, or goes idle. Idle time is taken out with libuv's own
 * counter, so waiting in epoll never counts as cpu. Rules and error bounds: docs/metrics.md.
 */
import type { Transaction } from '../transaction.js';

/** The kinds of macrotask the loop calls. */
export const enum Kind {
  Timer,
  Io,
  Immediate,
}

/** A poll that waited at least this long (ms) was idle: the I/O it returned arrived at its end. */
const REAL_WAIT_MS = 0.05;

/** What hears of slices longer than the threshold, and of the waits they may have caused. */
export interface LongTaskSink {
  /** A slice of `tx` (null: no transaction) that ran `ms` from `start` (the clock's time); `resource` is what the loop called. */
  slice(start: number, ms: number, tx: Transaction | null, resource: unknown): void;
  /** `tx` was ready but kept waiting from `from` to `to`. */
  blocked(tx: Transaction, from: number, to: number): void;
}

/** When a timer callback's timer was due, on the observer's clock (NaN: not known). */
export type DueOf = (timer: unknown) => number;

export class LoopObserver {
  /** The transaction whose slice is running (null: none, or the agent's own code). */
  running: Transaction | null = null;
  /** When the running slice started. */
  private sliceStart: number;
  /** libuv's cumulative idle time (ms) when the running slice started. */
  idleAtSliceStart: number;
  /** What the loop called to start the running slice (null when it was entered by hand). */
  private sliceResource: unknown = null;

  /** When the loop came back from its latest poll, and from the one before. */
  private pollEnd: number;
  private previousPollEnd: number;
  /** Whether the latest poll really waited (then its I/O arrived at its end). */
  private pollWaited = true;
  /** The polls seen so far. */
  polls = 0;

  /**
   * The kind of the latest macrotask. The loop's phases come in a fixed order, timers → poll (I/O)
   * → check (immediates) → close, so a poll has happened between two macrotasks when I/O follows a
   * timer or an immediate, or an immediate follows a timer. Two polls with nothing but I/O between
   * them would look like one: the `marker`, an immediate that re-arms itself first thing in every
   * check phase, stands between them (timing.ts); when it follows an immediate, the loop has gone
   * round and polled. A poll that returns at once leaves no trace in libuv's idle counter; these
   * transitions show it anyway, so the I/O bound never reaches back further than one iteration.
   */
  lastKind = Kind.Immediate;
  marker: unknown = null;

  /**
   * The macrotask running now, which the reactions and ticks after it run in the turn of, its
   * transaction, and a count of macrotasks. Code of a transaction that runs in this turn was ready
   * at the earliest when this macrotask was; a call that completes in it completed then.
   */
  private macroKind = Kind.Io;
  private macroResource: unknown = null;
  private macroTx: Transaction | null = null;
  serial = 0;

  private longTaskMs = Infinity;
  private longTasks: LongTaskSink | null = null;
  /** End of the latest long task: a wait that ended before it cannot have been caused by one. */
  private lastLongTaskEnd = -Infinity;

  constructor(
    private readonly clock: () => number,
    private readonly dueOf: DueOf,
    idle: number,
  ) {
    this.sliceStart = this.pollEnd = this.previousPollEnd = clock();
    this.idleAtSliceStart = idle;
  }

  /** When the running slice started. */
  get runningSince(): number {
    return this.sliceStart;
  }

  /** Starts watching afresh at `t`, with libuv's idle counter at `idle`. */
  restart(t: number, idle: number): void {
    this.sliceStart = this.pollEnd = this.previousPollEnd = t;
    this.idleAtSliceStart = idle;
  }

  watchLongTasks(thresholdMs: number, sink: LongTaskSink | null): void {
    this.longTaskMs = sink === null ? Infinity : thresholdMs;
    this.longTasks = sink;
  }

  /** The loop calls a macrotask of `kind` (`resource`), of transaction `tx`, with libuv's idle counter at `idle`. */
  macrotask(kind: Kind, resource: object, tx: Transaction | null, idle: number): void {
    const polled = this.crossedPoll(kind, resource);
    this.macroKind = this.lastKind;
    this.macroResource = resource;
    this.macroTx = tx;
    this.serial++;
    if (this.continuesRequest(tx, resource) && !polled && idle === this.idleAtSliceStart) return;
    if (tx !== this.running || idle !== this.idleAtSliceStart || polled) this.switchTo(tx, idle, resource, true, polled);
  }

  /** The same I/O callback's resource again, right after itself (an HTTP parser's callbacks for one read). */
  sameIo(resource: object, tx: Transaction | null): void {
    if (tx !== this.running && !this.continuesRequest(tx, resource)) this.switchTo(tx, this.idleAtSliceStart, resource, true, false);
  }

  /** A promise reaction or nextTick callback of `tx` runs in the turn of the macrotask before it. */
  reaction(resource: unknown, tx: Transaction): void {
    if (tx !== this.running) this.switchTo(tx, this.idleAtSliceStart, resource, true, false);
  }

  /** The request's own connection (its parser finishing the message) goes on with the request. */
  private continuesRequest(tx: Transaction | null, resource: unknown): boolean {
    return tx === null && this.running !== null && resource === this.running.ioResource;
  }

  /** Whether the loop has polled since the previous macrotask, from the order of their kinds. */
  private crossedPoll(kind: Kind, resource: object): boolean {
    const last = this.lastKind;
    this.lastKind = kind;
    if (kind === Kind.Immediate) return last === Kind.Timer || (last === Kind.Immediate && resource === this.marker);
    if (kind === Kind.Timer) return false;
    // a handle's close callback (close phase, after the check phase) looks like I/O: a closed
    // stream handle has no file descriptor any more
    if (last === Kind.Immediate) {
      const fd = (resource as { fd?: unknown }).fd;
      if (typeof fd === 'number' && fd < 0) {
        this.lastKind = last;
        return false;
      }
    }
    return last !== Kind.Io;
  }

  /** When the macrotask running now was ready to run, at the earliest (Infinity: not known). */
  private macroReady(): number {
    switch (this.macroKind) {
      case Kind.Timer: {
        // a timer is ready at its due time; when the loop was waiting for it, it ran on time
        const due = this.dueOf(this.macroResource);
        if (Number.isNaN(due)) return Infinity;
        return this.pollWaited && this.pollEnd > due ? this.pollEnd : due;
      }
      // an immediate waits for the poll phase to pass from whenever it was queued: not known here
      case Kind.Immediate:
        return Infinity;
      // I/O: its completion is known only to have happened between two polls
      default:
        return this.ioReadySince();
    }
  }

  /** The earliest time code of `tx` running in this macrotask could have run. */
  private readySince(tx: Transaction): number {
    // an immediate the transaction queued was ready from the end of the slice that queued it
    if (this.macroKind === Kind.Immediate) return this.macroTx === tx ? tx.lastSliceEnd : Infinity;
    return this.macroReady();
  }

  /** When the I/O being delivered now became ready, at the earliest. */
  ioReadySince(): number {
    return this.pollWaited ? this.pollEnd : this.previousPollEnd;
  }

  /**
   * When a call that started at `start`, in macrotask `serial`, and ends now, was complete: when
   * the macrotask it ends in was ready (its answer arrived), never before it started; now if it
   * started in this same macrotask (it waited for nothing) or the macrotask's readiness is not known.
   */
  completedAt(start: number, serial: number): number {
    const t = this.clock();
    if (serial === this.serial) return t;
    const ready = this.macroReady();
    return ready <= start ? start : ready < t ? ready : t;
  }

  /**
   * `tx` runs from now inside the current callback (`transaction(fn)`, a wrapped callback or a
   * library's callback called from elsewhere); returns the previous transaction, for `leave`. If
   * `tx` was waiting, the time since this callback was ready is its blocking.
   */
  enter(tx: Transaction, idle: number): Transaction | null {
    const prev = this.running;
    this.switchTo(tx, idle, null, true, false);
    return prev;
  }

  /**
   * A new transaction `tx`, created a moment ago (its start is now) for I/O that arrived (a request,
   * a message, on `resource`), runs from now; returns the previous transaction, for `leave`. It
   * starts when that I/O was ready, not when the loop got to it: the wait in between is blocking.
   * Ready at the earliest since the poll that returned it; never before `notBefore` (a request on
   * a kept-alive connection came after the previous response on it); from `acceptReady` if that
   * was earlier (the first request of a connection that was itself accepted late).
   */
  enterArrived(tx: Transaction, idle: number, resource: object, notBefore = -Infinity, acceptReady = Infinity): Transaction | null {
    const prev = this.running;
    const seen = tx.start;
    this.switchTo(tx, idle, null, false, false, seen);
    tx.arrivedOn(resource);
    const io = this.ioReadySince();
    let ready = acceptReady < io ? acceptReady : io;
    if (ready < notBefore) ready = notBefore;
    if (ready < seen) {
      tx.startedAt(ready);
      this.countBlocking(tx, ready, seen);
    }
    return prev;
  }

  /** The synchronous part started by `enter` is over; `prev` runs again. */
  leave(prev: Transaction | null, idle: number): void {
    if (this.running !== prev) this.switchTo(prev, idle, null, false, false);
  }

  /** The slice running now, closed as of now: for a transaction ending inside its own slice. */
  settle(tx: Transaction, idle: number): void {
    if (this.running === tx) this.switchTo(tx, idle, null, false, false);
  }

  /**
   * Another transaction (or the loop itself, after a poll) runs from `t`: close the running slice,
   * open the next. `resource`: what the loop is calling (null: a slice entered by hand). `waited`:
   * `tx` has been waiting for this (its callback, a reaction, a library calling it back), so the
   * time since it was ready is blocking; not when it only resumes a slice (`leave`, `settle`).
   */
  private switchTo(tx: Transaction | null, idle: number, resource: unknown, waited: boolean, polled: boolean, t = this.clock()): void {
    const idled = idle - this.idleAtSliceStart;
    if (idled > 0 || polled) {
      this.previousPollEnd = this.pollEnd;
      this.pollEnd = t;
      this.pollWaited = idled >= REAL_WAIT_MS;
      this.polls++;
    }
    const prev = this.running;
    const start = this.sliceStart;
    const busy = t - start - idled;
    if (busy >= this.longTaskMs) {
      this.lastLongTaskEnd = start + busy;
      this.longTasks!.slice(start, busy, prev, this.sliceResource);
    }
    if (prev !== null) prev.ran(start, start + (busy > 0 ? busy : 0));
    // a transaction that is done waits for nothing: a callback of it from now on is a library's
    // housekeeping (a socket closing), unless it starts new work
    if (tx !== null && tx.open && tx.beginSlice() && waited) this.addBlocking(tx, this.readySince(tx), t);
    this.running = tx;
    this.sliceStart = t;
    this.idleAtSliceStart = idle;
    this.sliceResource = resource;
  }

  private addBlocking(tx: Transaction, ready: number, t: number): void {
    const from = ready > tx.blockedUntil ? ready : tx.blockedUntil;
    if (t > from) this.countBlocking(tx, from, t);
  }

  private countBlocking(tx: Transaction, from: number, to: number): void {
    tx.waited(from, to);
    if (this.lastLongTaskEnd > from) this.longTasks?.blocked(tx, from, to);
  }
}
