/**
 * The transaction record: what the agent produces for every finished transaction, what
 * `onTransactionEnd` delivers and what `GET /api/traces/:traceId` returns. All times are in
 * milliseconds; `start` is a timestamp (ms since the epoch), segment `start`/`end` are offsets
 * from the transaction start. What each number means is defined in docs/metrics.md.
 */
import { LIMITS } from './limits.js';

/**
 * What a segment waited on: an outbound HTTP call, a database, a cache, a queue, the file system
 * (`fs`: the operations the agent sees on libuv's thread pool, as one segment per burst), a name
 * resolution (`dns`), or anything else (`other`: a segment made by hand).
 */
export type SegmentKind = 'http' | 'db' | 'cache' | 'queue' | 'fs' | 'dns' | 'other';

/** The five per-transaction numbers that are aggregated into percentiles (docs/metrics.md). */
export const METRICS = ['response', 'duration', 'cpu', 'external', 'blocking'] as const;
export type MetricName = (typeof METRICS)[number];

/**
 * The metrics only an agent inside the process can measure. A sender that watches from outside
 * (`loopscope proxy`, `loopscope probe`) cannot know them: they travel as `null` (unknown) on the
 * wire, in storage and in the query API — never as 0.
 */
export const INSIDE_METRICS = ['cpu', 'external', 'blocking'] as const satisfies readonly MetricName[];
export type InsideMetric = (typeof INSIDE_METRICS)[number];

/** Times travel in ms rounded to the microsecond. */
export const roundMs = (ms: number): number => Math.round(ms * 1000) / 1000;

/** Kinds whose wait counts toward `external`. */
export const EXTERNAL_KINDS: readonly SegmentKind[] = ['http', 'db', 'cache', 'queue', 'fs', 'dns', 'other'];

export interface SegmentRecord {
  id: number;
  parentId: number | null;
  /**
   * Its W3C span id (16 hex digits): a call that carried it in a `traceparent` is the parent of the
   * callee's transaction (absent from senders before trace context)
   */
  spanId?: string;
  name: string;
  kind: SegmentKind;
  /** ms from the transaction start */
  start: number;
  /** ms from the transaction start; for a segment still open when the transaction was closed, the close time */
  end: number;
  onCriticalPath: boolean;
  /** set when the call failed (network error, 5xx from an upstream, a thrown error) */
  error?: string;
  /** true when the transaction was closed before this segment finished */
  unfinished?: boolean;
  /** database, cache and queue calls: what was done (`SELECT`, `GET`, `publish`, `checkout`) */
  operation?: string;
  /** database, cache and queue calls: where (`127.0.0.1:5432/shop`, `127.0.0.1:5672/orders`) */
  target?: string;
  /** database and cache calls: the statement with every literal value replaced by `?` (docs/instrumentation.md) */
  statement?: string;
}

/** The most full traces one batch may carry. */
export const MAX_TRACES = LIMITS.traces;

/** Call targets an agent reports per batch (`calls`); the rest are counted under OTHER_TARGET. */
export const MAX_CALL_TARGETS = LIMITS.callTargets;
export const OTHER_TARGET = 'OTHER (target limit reached)';

/** The longest operation, target and statement a segment carries (the agent cuts, the collector refuses longer). */
export const SEGMENT_TEXT_LIMITS = { operation: LIMITS.operation, target: LIMITS.target, statement: LIMITS.statement } as const;

export type ExternalByKind = Partial<Record<SegmentKind, number>>;

/**
 * `Inside` is the type of cpu, external and blocking: numbers from the agent (the default), `null`
 * from a sender outside the process (TraceRecord covers both).
 */
export interface TransactionRecord<Inside extends number | null = number> {
  traceId: string;
  /** its W3C span id (16 hex digits; absent from senders before trace context) */
  spanId?: string;
  /** the span of the caller whose trace it continues (its request's `traceparent`); null at a trace's root */
  parentSpanId?: string | null;
  service: string;
  endpoint: string;
  /** ms since the epoch */
  start: number;
  /** HTTP status for server transactions; 0 when the transaction is not an HTTP request */
  status: number;
  /** true for a 5xx, a thrown error or an error recorded by hand */
  error: boolean;
  errorMessage?: string;
  /**
   * true when the connection closed before the response was finished (the client went away): no
   * answer reached it. `status` is then what the app answered with (0: it never answered) and
   * `response` ends when the app stopped working on the request (docs/metrics.md)
   */
  aborted?: boolean;
  response: number;
  duration: number;
  cpu: Inside;
  external: Inside;
  externalByKind: ExternalByKind;
  blocking: Inside;
  segments: SegmentRecord[];
  /** segment ids in the order they happened */
  criticalPath: number[];
  /** true when the transaction was closed by the linger limit with work still pending */
  truncated: boolean;
  /**
   * true when its trace was drawn at random to be shipped (LOOPSCOPE_SAMPLE_RATE), whatever its
   * duration or outcome: such traces are an unbiased sample of their endpoint's requests (the
   * slowest of each interval, the errors and the linked ones are not)
   */
  sampledAtRandom?: boolean;
  /** segments dropped because the transaction exceeded the per-transaction segment limit */
  droppedSegments: number;
  /**
   * When its own code ran on the event loop (cpu) and when it was ready but kept waiting (blocking),
   * as [start, end] in ms from the transaction start, in time order; from agents (at most
   * TIMELINE_LIMIT each, the rest counted in cpu and blocking only)
   */
  slices?: Array<[number, number]>;
  waits?: Array<[number, number]>;
  /** ms from the start until the first byte of the response (its status line) was sent or received; senders outside the process */
  firstByte?: number;
  /** bytes of the request body and of the response body, as they went through; senders outside the process */
  requestBytes?: number;
  responseBytes?: number;
}

/** A transaction as the collector keeps and returns it: from an agent, or from outside the process (inside metrics null). */
export type TraceRecord = TransactionRecord<number | null>;

/** At most this many slices and as many waits are listed per transaction (the first ones). */
export const TIMELINE_LIMIT = LIMITS.timeline;

/** The version of the ingest wire format (docs/protocol.md) this code speaks. */
export const WIRE_VERSION = 1;
