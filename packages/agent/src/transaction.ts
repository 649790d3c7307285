/**
 * A transaction and its segments: the raw observations (timestamps from `now()`), and what keeps
 * a transaction open (its done condition). The loop observer (loop/observer.ts) tells it
 * what ran and waited; the numbers are added up from it in measure.ts.
 */
import { performance } from 'node:perf_hooks';
import { EXTERNAL_KINDS, LIMITS, TIMELINE_LIMIT, type SegmentKind } from '@loopscope/protocol';
import { describeError } from './describe-error.js';
import { formatTraceParent, formatTraceState, newSpanId, parseTraceParent, traceIdOf, type RemoteParent } from './trace-context.js';
import { now } from './clock.js';

/** What the context (context.ts) holds: a transaction is its own scope; a segment opened by hand gets one. */
export interface Scope {
  readonly tx: Transaction;
  readonly segment: Segment | null;
}

let traceCounter = 0;

export class Segment implements Scope {
  readonly tx: Transaction;
  readonly id: number;
  readonly parentId: number | null;
  readonly name: string;
  readonly kind: SegmentKind;
  readonly external: boolean;
  readonly start: number;
  /** the loop callback it started in (see `finish`) */
  private readonly startedIn: number;
  /** -1 while in flight */
  end = -1;
  error: string | undefined;
  /** false for fire-and-forget work the transaction never waited for */
  awaited = true;
  /** database, cache and queue calls (instrument/calls.ts): what, where, and the sanitized statement */
  operation: string | undefined;
  target: string | undefined;
  statement: string | undefined;
  /** its W3C span id, made when first asked for (a call that carried it out, or the record) */
  private ownSpanId: string | undefined;
  /**
   * A burst of file-system or name-resolution operations (io.ts): each operation's start and end,
   * flat (its external time is theirs, not the whole span's), how many, how many in flight, when the
   * latest one called back and the latest end. Null for every other segment.
   */
  io: { parts: number[]; ops: number; inFlight: number; calledBack: number; end: number } | null = null;

  constructor(tx: Transaction, id: number, parent: Segment | null, name: string, kind: SegmentKind) {
    this.tx = tx;
    this.id = id;
    this.parentId = parent === null ? null : parent.id;
    this.name = name;
    this.kind = kind;
    this.external = EXTERNAL_KINDS.includes(kind);
    this.start = now();
    this.startedIn = tx.host.callbackSerial();
  }

  readonly segment: Segment = this;

  get spanId(): string {
    return (this.ownSpanId ??= newSpanId());
  }

  /** The `tracestate` a call made by this segment carries: when it started, and the caller's members. */
  get traceState(): string {
    return formatTraceState(this.tx.traceState, performance.timeOrigin + this.start);
  }

  /** The `traceparent` a call made by this segment carries to what it calls. */
  get traceParent(): string {
    return formatTraceParent(this.tx.traceId, this.spanId, this.tx.traceFlags);
  }

  /**
   * The call already carries `header` (another tracer's, or the app's own): the segment is the span
   * it names, when it is of the transaction's trace (a root not yet seen takes that trace), so that
   * what the callee continues is this segment.
   */
  carries(header: string | undefined, state?: string): void {
    const given = parseTraceParent(header, state);
    if (given === undefined || this.ownSpanId !== undefined) return;
    if (this.tx.adoptTrace(given.traceId)) this.ownSpanId = given.parentSpanId;
  }

  /**
   * Ends the segment (idempotent). A call to the outside ends when its answer was ready (the loop
   * callback it ends in was), not when the code got to run: from then on the transaction is
   * blocked, not waiting on the call. (Every kind is external today, `other` included: a kind left
   * out of EXTERNAL_KINDS would span the code as it ran.)
   */
  finish(error?: unknown): void {
    if (this.end >= 0) return;
    this.end = this.external ? this.tx.host.completedAt(this.start, this.startedIn) : now();
    if (error !== undefined && error !== null) this.error = describeError(error);
    this.tx.release();
  }
}

/** How far a framework's router got with an HTTP request. */
export const enum Routing {
  /** no framework router has seen it: the endpoint is the normalized path */
  NotRouted,
  /** a router saw it and no route matched (yet) */
  Unmatched,
  /** a route matched: the endpoint is its template */
  Matched,
  /** only a catch-all route matched (`*`, `/api*path`): its template names the request unless it is answered 4xx */
  CatchAll,
  /** the app named it (`current().setName()`): no router renames it */
  Named,
}

/**
 * Whether a framework's router has seen any request in this process: then a request it has not seen
 * is one that did not get that far (an aborted one is `(unmatched)`), not one of a server without a
 * router (whose requests are all named by their path).
 */
let routersSeen = false;

/** `GET /no/such/page` → `GET (unmatched)`: what a 4xx on a URL no route matched is called. */
export function unmatchedName(endpoint: string): string {
  const space = endpoint.indexOf(' ');
  return (space < 0 ? endpoint : endpoint.slice(0, space)) + ' (unmatched)';
}

/** What the tracker needs to hear from a transaction, and what the loop says to it. */
export interface TransactionHost {
  maybeDone(tx: Transaction): void;
  maxSegments: number;
  /** The loop callback running now, as a serial number. */
  callbackSerial(): number;
  /** When a call that started at `start`, in loop callback `serial`, and ends now, had its answer ready. */
  completedAt(start: number, serial: number): number;
}

interface TimerLike {
  _destroyed?: boolean;
  hasRef?: () => boolean;
}

/** What the transaction reads of its server response (http.ServerResponse has it). */
export interface ServerResponseLike {
  destroyed: boolean;
  /** the app has called end() */
  writableEnded: boolean;
  /** the status line and headers have gone out (a body may be streaming) */
  headersSent: boolean;
  writableFinished: boolean;
  statusCode: number;
  req?: { socket: { destroyed: boolean } | null };
}

export class Transaction implements Scope {
  /** When it started: when the server saw the request, or earlier, when the request was ready (`startedAt`). */
  start = now();
  private readonly serial = ++traceCounter;
  readonly host: TransactionHost;
  readonly isHttp: boolean;
  private name: string;
  /** What a framework's router made of the request (instrument/route.ts); NotRouted without one. */
  private routing: Routing = Routing.NotRouted;
  status = 0;
  error = false;
  errorMessage: string | undefined;
  /** noteFailure's value, for the message of a 5xx. */
  private failure: unknown = undefined;
  private isOpen = true;
  private wasTruncated = false;
  private wasAborted = false;
  /**
   * The tracker's bookkeeping, which only tracker.ts touches: the transaction's index in its list
   * of open transactions (-1 once closed), and whether it waits in its list of those to deliver.
   */
  readonly tracking = { slot: -1, queued: false };
  /** The slice running now began after it was done (`beginSlice`). */
  private afterDone = false;

  /** What the loop called when the request arrived (its connection): more of it is the request's work. */
  ioResource: object | null = null;
  /**
   * The server response of an HTTP transaction (to notice a client that went away: the response is
   * destroyed, or, for a pipelined response still waiting for its turn, its request's connection).
   */
  private res: ServerResponseLike | undefined;
  /** -1 until the response has finished (or, for a non-HTTP transaction, its function has). */
  responseEnd = -1;
  /**
   * When the app answered (`end()`) and with which status, while the kernel had yet to take the
   * last bytes (-1: not so): if the connection closes before it does, the request is aborted there.
   */
  private answeredAt = -1;
  private answeredStatus = 0;
  cpu = 0;
  blocking = 0;
  /** Its slices of the loop and its waits behind other work, as start, end pairs (the first TIMELINE_LIMIT of each). */
  slices: number[] | null = null;
  waits: number[] | null = null;
  /** Blocking is counted up to here already (and the transaction's own slices up to here). */
  blockedUntil: number;
  lastSliceEnd: number;
  segments: Segment[] = [];
  droppedSegments = 0;
  /** It ran a long task: its trace is shipped (the long task links to it). */
  private ranLong = false;
  /** The long task its latest wait was counted against (each transaction counts once per task). */
  private blockedBy: object | null = null;
  private nextSegmentId = 1;
  /** In-flight segments, pending wrapped callbacks and awaited timers. */
  pending = 0;
  /** File-system and name-resolution operations in flight, by async id, with their segment and start (io.ts). */
  ioOps: Map<number, { seg: Segment; start: number; serial: number }> | null = null;
  /** The latest such burst, which an operation that follows it at once joins. */
  lastIo: Segment | null = null;
  /** Timers and immediates created in the transaction, checked lazily for being done. */
  timers: TimerLike[] | null = null;
  /** The caller's trace, when the request came with a valid `traceparent` (null: it is a trace's root). */
  private remote: RemoteParent | null = null;
  private ownSpanId: string | undefined;

  constructor(host: TransactionHost, endpoint: string, isHttp: boolean) {
    this.host = host;
    this.name = endpoint;
    this.isHttp = isHttp;
    this.blockedUntil = this.start;
    this.lastSliceEnd = this.start;
  }

  readonly tx: Transaction = this;
  readonly segment = null;

  /** Its name: the normalized path, a route's template, or a name the app gave it. */
  get endpoint(): string {
    return this.name;
  }

  /** Still collecting work (false once delivered). */
  get open(): boolean {
    return this.isOpen;
  }

  /** Closed by the linger limit or at shutdown with work still pending. */
  get truncated(): boolean {
    return this.wasTruncated;
  }

  /** Its connection closed before its response was finished: no answer reached the client. */
  get aborted(): boolean {
    return this.wasAborted;
  }

  get hadLongTask(): boolean {
    return this.ranLong;
  }

  /** The server response of an HTTP transaction (to notice a client that went away). */
  get response(): ServerResponseLike | undefined {
    return this.res;
  }

  respondsWith(res: ServerResponseLike): void {
    this.res = res;
  }

  /** The app named it (`current().setName`): the name stands, whatever a router makes of the request. */
  rename(name: string): void {
    this.name = name.slice(0, LIMITS.endpoint);
    this.routing = Routing.Named;
  }

  /** A framework's router is looking at the request: until a route matches, it is unmatched. */
  routeSeen(): void {
    routersSeen = true;
    if (this.routing === Routing.NotRouted) this.routing = Routing.Unmatched;
  }

  /**
   * A route matched (the last match wins; a name the app set stays). `catchAll`: its template ends
   * in a wildcard, so a 4xx answer makes the request unmatched (instrument/route.ts).
   */
  routeMatched(name: string, catchAll = false): void {
    routersSeen = true;
    if (this.routing === Routing.Named) return;
    this.routing = catchAll ? Routing.CatchAll : Routing.Matched;
    this.name = name;
  }

  /** It ran a long task. */
  ranLongTask(): void {
    this.ranLong = true;
  }

  /** Its wait is counted against `task`: true the first time for that task (one count per task). */
  blockedBehind(task: object): boolean {
    if (this.blockedBy === task) return false;
    this.blockedBy = task;
    return true;
  }

  /** Closes it (the tracker delivers it). */
  close(truncated: boolean): void {
    this.isOpen = false;
    this.wasTruncated = truncated;
  }

  /**
   * A slice of it begins. False when it was done already: such a slice is a library's housekeeping
   * (a socket closing), not its work, unless it starts new work (see `ran`).
   */
  beginSlice(): boolean {
    if (this.tracking.queued && this.isDone()) {
      this.afterDone = true;
      return false;
    }
    return true;
  }

  /** Its code ran on the loop from `start` to `end`. */
  ran(start: number, end: number): void {
    if (this.afterDone) {
      this.afterDone = false;
      if (this.isDone()) return;
    }
    if (end > start) {
      this.cpu += end - start;
      if (this.slices === null) this.slices = [start, end];
      else if (this.slices.length < 2 * TIMELINE_LIMIT) this.slices.push(start, end);
    }
    this.lastSliceEnd = end;
    if (this.blockedUntil < end) this.blockedUntil = end;
  }

  /** It was ready from `from` to `to`, while the loop ran something else. */
  waited(from: number, to: number): void {
    this.blocking += to - from;
    this.blockedUntil = to;
    if (this.waits === null) this.waits = [from, to];
    else if (this.waits.length < 2 * TIMELINE_LIMIT) this.waits.push(from, to);
  }

  /** It began with I/O that arrived on `resource` (its connection): more of that is its own work. */
  arrivedOn(resource: object): void {
    this.ioResource = resource;
  }

  /** It started earlier than it was seen: at `t`, when the I/O that began it was ready. */
  startedAt(t: number): void {
    this.start = t;
  }

  get traceId(): string {
    this.traceIdShown = true;
    return this.remote?.traceId ?? this.adoptedTraceId ?? traceIdOf(this.serial);
  }

  /**
   * Another tracer in the process (OpenTelemetry) put trace `traceId` on a call of this transaction
   * (docs/instrumentation.md, "Next to OpenTelemetry"): a root whose trace id nobody has seen yet
   * takes it, so that both tell one trace. Whether the transaction is now of that trace.
   */
  adoptTrace(traceId: string): boolean {
    if (this.remote === null && !this.traceIdShown && this.adoptedTraceId === undefined) this.adoptedTraceId = traceId;
    return this.traceId === traceId;
  }

  /** Its W3C span id, made when first asked for. */
  get spanId(): string {
    return (this.ownSpanId ??= newSpanId());
  }

  private traceIdShown = false;
  private adoptedTraceId: string | undefined;

  /** The span of the caller it continues (null: it is the root of its trace). */
  get parentSpanId(): string | null {
    return this.remote === null ? null : this.remote.parentSpanId;
  }

  /** The trace-flags it passes on: the caller's, or "01" (sampled) at the root. */
  get traceFlags(): string {
    return this.remote === null ? '01' : this.remote.flags;
  }

  /** The caller's `tracestate` (but for loopscope's member), passed on unchanged. */
  get traceState(): string | undefined {
    return this.remote === null ? undefined : this.remote.traceState;
  }

  /** When the caller made the call that began it, on the now() clock, if it said so and that is not later than now. */
  get calledAt(): number | undefined {
    const sentAt = this.remote?.sentAt;
    if (sentAt === undefined) return undefined;
    const t = sentAt - performance.timeOrigin;
    return t <= now() ? t : undefined;
  }

  /** It continues the trace of the caller that sent `parent` (from its request's `traceparent`). */
  continues(parent: RemoteParent): void {
    this.remote = parent;
  }

  /**
   * It continued a caller's trace: if not sampled here, its record may be asked for later
   * (export/held.ts), when another service keeps the trace. A root is not held: it decides for
   * itself, and holding every root that calls out (any app calling any HTTP API) kept thousands of
   * transactions alive (+10 MB of heap and +18 % CPU per request in `npm run bench`'s async scenario).
   */
  get continuesCaller(): boolean {
    return this.remote !== null;
  }

  /** ms since the epoch */
  get startEpoch(): number {
    return performance.timeOrigin + this.start;
  }

  startSegment(name: string, kind: SegmentKind, parent: Segment | null): Segment {
    const seg = new Segment(this, this.nextSegmentId++, parent, name, kind);
    this.pending++;
    if (this.segments.length < this.host.maxSegments) this.segments.push(seg);
    else this.droppedSegments++;
    return seg;
  }

  /** One piece of pending work is over. */
  release(): void {
    if (this.pending > 0) this.pending--;
    if (this.pending === 0 && this.isOpen) this.host.maybeDone(this);
  }

  hold(): void {
    this.pending++;
  }

  trackTimer(timer: TimerLike): void {
    if (this.timers === null) this.timers = [timer];
    else if (this.timers.length < 1000) this.timers.push(timer);
  }

  setError(error: unknown): void {
    this.error = true;
    if (this.errorMessage === undefined && error !== undefined) this.errorMessage = describeError(error);
  }

  /**
   * A failure the app passed on that is not an Error (`next({ error: 'db down' })`): not an error by
   * itself (docs/instrumentation.md, "What counts as an error"); its text is the message should the
   * answer be a 5xx. Described then, not now: apps that pass every response body this way are common.
   */
  noteFailure(value: unknown): void {
    if (this.failure === undefined) this.failure = value;
  }

  /**
   * The response (or the function of a manual transaction) is over. `aborted`: the app answered
   * with `status`, but its connection was closed already (the answer went nowhere).
   */
  finishResponse(status?: number, aborted = false): void {
    if (this.responseEnd >= 0) return;
    this.responseEnd = now();
    if (aborted) this.markAborted();
    if (status !== undefined) this.answeredWith(status);
    if (this.pending === 0) this.host.maybeDone(this);
  }

  private answeredWith(status: number): void {
    this.status = status;
    if (status >= 500) {
      this.error = true;
      if (this.errorMessage === undefined && this.failure !== undefined) this.errorMessage = describeError(this.failure);
    } else if (status >= 400 && (this.routing === Routing.Unmatched || this.routing === Routing.CatchAll)) {
      // a client error on a URL no route matched, or only a catch-all: one name per method, whatever the URL
      this.name = unmatchedName(this.name);
    }
  }

  /**
   * Its connection closed before the response was finished: the request is aborted. If the app
   * answered (`status`: it called `end()`, but the answer waited for a turn or for the kernel), its
   * response ends at that answer when known, else with its last work, once that is over
   * (measure.ts); if it has not answered yet, it may still (`finishResponse(status, true)`).
   */
  abort(status?: number): void {
    if (this.responseEnd >= 0 || this.wasAborted) return;
    if (this.answeredAt >= 0) {
      // the app had answered: its answer is where its response ends
      const at = this.answeredAt;
      this.finishResponse(this.answeredStatus, true);
      this.responseEnd = at;
      return;
    }
    this.markAborted();
    if (status !== undefined) this.answeredWith(status);
    if (this.pending === 0) this.host.maybeDone(this);
  }

  /** The app answered with `status`; the kernel has yet to take the last bytes (its `finish` will say). */
  answered(status: number): void {
    this.answeredAt = now();
    this.answeredStatus = status;
  }

  /** Aborted: named by its route if one matched, else unmatched (when there are routers to match it). */
  private markAborted(): void {
    if (this.wasAborted) return;
    this.wasAborted = true;
    const routing = this.routing;
    if (routing === Routing.Unmatched || routing === Routing.CatchAll || (routing === Routing.NotRouted && routersSeen)) this.name = unmatchedName(this.name);
  }

  /**
   * Delivered: drop what the transaction points to. Sockets and handles created during the request
   * keep it (as their async context) until they are reused, often for another request or two;
   * without its response and segments it is a small object, and those die young.
   */
  forget(): void {
    this.res = undefined;
    this.ioResource = null;
    this.timers = null;
    // a part of a trace across services may be asked for later (export/held.ts): its record is
    // built then, from these
    if (this.continuesCaller) return;
    this.segments = [];
    this.slices = this.waits = null;
  }

  /** Done: response finished (or aborted), nothing in flight, no live timer. */
  isDone(): boolean {
    if ((this.responseEnd < 0 && !this.wasAborted) || this.pending > 0) return false;
    const timers = this.timers;
    if (timers !== null) {
      for (const t of timers) if (t._destroyed !== true && (t.hasRef === undefined || t.hasRef())) return false;
    }
    return true;
  }
}
