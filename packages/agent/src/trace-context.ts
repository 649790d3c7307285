/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` and `tracestate`
 * headers a request carries in from its caller and out to what it calls, and the span ids that
 * name each transaction and segment in them. The headers come from untrusted clients: anything
 * that is not a valid header is ignored (a new trace starts), never thrown.
 */
import { randomBytes, randomFillSync } from 'node:crypto';

/** Where a transaction's trace came from: its caller's trace, span and flags. */
export interface RemoteParent {
  /** 32 lowercase hex digits */
  readonly traceId: string;
  /** the caller's span (the segment that called): 16 lowercase hex digits */
  readonly parentSpanId: string;
  /** trace-flags, two hex digits ("01": the caller sampled the trace) */
  readonly flags: string;
  /** the caller's tracestate but for loopscope's own member, passed on unchanged to what this transaction calls */
  readonly traceState: string | undefined;
  /**
   * When the caller's agent made the call (ms since the epoch, its clock): the request cannot have
   * been ready before (loopscope's own tracestate member, `loopscope=t<ms>`)
   */
  readonly sentAt: number | undefined;
}

const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);
/** version 00 is exactly this; a later version may append fields after a dash (the spec's rule) */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
/** the spec's limit on what a vendor must pass on; longer lists are dropped, not cut */
const MAX_TRACESTATE = 512;
/** visible ASCII, spaces and tabs: what a header value may carry back out */
const PRINTABLE = /^[\t\x20-\x7e]*$/;

/** The parent a `traceparent` header names, or undefined for a missing or invalid one. */
export function parseTraceParent(traceparent: unknown, tracestate?: unknown): RemoteParent | undefined {
  // 55 characters for version 00; a longer header is a later version's, bounded all the same
  if (typeof traceparent !== 'string' || traceparent.length < 55 || traceparent.length > 256) return undefined;
  const m = TRACEPARENT.exec(traceparent);
  if (m === null) return undefined;
  const [, version, traceId, parentSpanId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined];
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (traceId === ZERO_TRACE || parentSpanId === ZERO_SPAN) return undefined;
  const state = typeof tracestate === 'string' && tracestate.length > 0 && tracestate.length <= MAX_TRACESTATE && PRINTABLE.test(tracestate) ? tracestate : undefined;
  if (state === undefined || !state.includes(OWN)) return { traceId, parentSpanId, flags, traceState: state, sentAt: undefined };
  // loopscope's member (the caller's) is read, and replaced by this agent's own on the way out
  let sentAt: number | undefined;
  const others: string[] = [];
  for (const member of state.split(',')) {
    // loopscope's key, valid or not, is never passed on (the agent puts its own first)
    if (!member.trim().startsWith(OWN)) others.push(member);
    else sentAt ??= parseSentAt(member);
  }
  return { traceId, parentSpanId, flags, traceState: others.length > 0 ? others.join(',') : undefined, sentAt };
}

/** loopscope's tracestate member: when the caller's call started, ms since the epoch (its clock). */
const OWN = 'loopscope=';
const OWN_MEMBER = /^\s*loopscope=t(\d{1,16}(?:\.\d{1,6})?)\s*$/;
function parseSentAt(member: string): number | undefined {
  const m = OWN_MEMBER.exec(member);
  return m === null ? undefined : Number(m[1]);
}

/**
 * The `tracestate` a call started at `sentAt` (ms since the epoch) carries: loopscope's member first,
 * as the spec asks of a vendor that updates its own, then the caller's others (dropped, not cut,
 * when they would not fit in MAX_TRACESTATE).
 */
export function formatTraceState(others: string | undefined, sentAt: number): string {
  const own = `${OWN}t${sentAt.toFixed(3)}`;
  return others === undefined || own.length + 1 + others.length > MAX_TRACESTATE ? own : `${own},${others}`;
}

/** The `traceparent` of a call made by span `spanId` of trace `traceId`. */
export function formatTraceParent(traceId: string, spanId: string, flags: string): string {
  return `00-${traceId}-${spanId}-${flags}`;
}

/**
 * The trace id of the process's n-th root transaction (32 hex digits, as W3C's are), built only
 * when a record or a header needs it: 16 random hex digits per process, then 16 that look random
 * too, as W3C Trace Context Level 2 wants the right half of a trace id to be (samplers downstream,
 * OpenTelemetry's ratio sampler among them, decide on it). They are the counter through two
 * bijections of 32 bits keyed per process (MurmurHash3's finalizer), so no two ids of the process
 * are the same and no crypto call is made per trace.
 */
const traceSeed = randomBytes(16);
const tracePrefix = traceSeed.subarray(0, 8).toString('hex');
const [k1, k2] = [traceSeed.readUInt32BE(8), traceSeed.readUInt32BE(12)];
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
const hex8 = (n: number): string => n.toString(16).padStart(8, '0');
export function traceIdOf(n: number): string {
  const low = n >>> 0;
  return tracePrefix + hex8((fmix32(low ^ k2) ^ Math.floor(n / 2 ** 32)) >>> 0) + hex8(fmix32(low ^ k1));
}

/**
 * Span ids: 8 random bytes each, from a pool filled 64 ids at a time (one call into the crypto
 * library per 64 spans, not per span).
 */
const pool = Buffer.alloc(8 * 64);
let next = pool.length;
export function newSpanId(): string {
  if (next === pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  const id = pool.toString('hex', next, next + 8);
  next += 8;
  // all zeros is not a span id (a chance of 2^-64, but the spec forbids it)
  return id === ZERO_SPAN ? newSpanId() : id;
}
