/**
 * The ingest wire format, version 1 (docs/protocol.md): the schema the collector validates every
 * batch against, and the types the agent builds batches with. A batch is one flush of one process:
 * per-endpoint aggregates of an interval (sketches of the five metrics) and sampled full traces.
 *
 * Limits are part of the contract: a value outside them is refused with a message naming it.
 */
import Type, { type Static, type TSchema } from 'typebox';
import { MAX_SKETCH_BINS } from './sketch.js';
import { LIMITS } from './limits.js';
import { MAX_CALL_TARGETS, MAX_TRACES, WIRE_VERSION } from './types.js';

export { MAX_CALL_TARGETS, MAX_TRACES };

/** The longest time a wire value may hold: 7 days in ms. */
export const MAX_MS = 7 * 24 * 3600 * 1000;
/** Earliest timestamp accepted (2020-01-01): catches seconds-for-milliseconds and zeroed clocks. */
export const MIN_EPOCH_MS = 1_577_836_800_000;
export const MAX_INTERVALS = LIMITS.intervals;
export const MAX_SEGMENTS = LIMITS.segments;

const Ms = Type.Number({ minimum: 0, maximum: MAX_MS });
const EPOCH_LIMITS = { minimum: MIN_EPOCH_MS, maximum: 8_640_000_000_000_000 };
const Epoch = Type.Integer(EPOCH_LIMITS);
/** a transaction's start keeps its sub-millisecond part */
const PreciseEpoch = Type.Number(EPOCH_LIMITS);
const Count = Type.Integer({ minimum: 0, maximum: 1_000_000_000 });
/** bytes of memory: up to 1 TB */
const Bytes = Type.Integer({ minimum: 0, maximum: 1_000_000_000_000 });
/** a sum of ms over up to a billion transactions */
const MsSum = Type.Number({ minimum: 0, maximum: MAX_MS * 1_000_000_000 });
const byKind = <T extends typeof Ms | typeof MsSum>(t: T) =>
  Type.Object(
    { http: Type.Optional(t), db: Type.Optional(t), cache: Type.Optional(t), queue: Type.Optional(t), fs: Type.Optional(t), dns: Type.Optional(t), other: Type.Optional(t) },
    { additionalProperties: false },
  );
const Name = (max: number) => Type.String({ minLength: 1, maxLength: max });
/** cpu, external and blocking: null when the sender cannot know them (it watches from outside the process) */
const Unknowable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

export const WireSketchSchema = Type.Object(
  {
    n: Count,
    sum: MsSum,
    min: Ms,
    max: Ms,
    zero: Count,
    k0: Type.Integer({ minimum: -100_000, maximum: 100_000 }),
    bins: Type.Array(Count, { maxItems: MAX_SKETCH_BINS }),
  },
  { additionalProperties: false },
);

export const IntervalSchema = Type.Object(
  {
    /** interval start, ms since the epoch */
    start: Epoch,
    /** interval length in ms */
    ms: Type.Integer({ minimum: 1, maximum: 3_600_000 }),
    endpoint: Name(LIMITS.endpoint),
    count: Type.Integer({ minimum: 1, maximum: 1_000_000_000 }),
    errors: Count,
    /** of which aborted: the connection closed before the response was finished (absent: none) */
    aborted: Type.Optional(Count),
    response: WireSketchSchema,
    duration: WireSketchSchema,
    cpu: Unknowable(WireSketchSchema),
    external: Unknowable(WireSketchSchema),
    blocking: Unknowable(WireSketchSchema),
    /** the sum over the interval's transactions of their external time per kind (ms) */
    externalByKind: Type.Optional(byKind(MsSum)),
  },
  { additionalProperties: false },
);

/** [start, end] pairs in ms from the transaction start, at most TIMELINE_LIMIT. */
const Timeline = Type.Array(Type.Tuple([Ms, Ms]), { maxItems: LIMITS.timeline });

const Kind = Type.Union([Type.Literal('http'), Type.Literal('db'), Type.Literal('cache'), Type.Literal('queue'), Type.Literal('fs'), Type.Literal('dns'), Type.Literal('other')]);
// (the agent assigns TransactionRecords to WireTraces: a kind missing here fails its build)

/**
 * The calls of one interval to one target (a host:port for http, the segment's target for a
 * database, cache or queue): how many, how many failed, and a sketch of how long they took. What
 * the service map's edges are made of (GET /api/servicemap).
 */
export const CallsSchema = Type.Object(
  {
    start: Epoch,
    ms: Type.Integer({ minimum: 1, maximum: 3_600_000 }),
    kind: Kind,
    target: Name(LIMITS.target),
    count: Type.Integer({ minimum: 1, maximum: 1_000_000_000 }),
    errors: Count,
    duration: WireSketchSchema,
  },
  { additionalProperties: false },
);

/**
 * Where requests lost their context over one interval (the agent's context-loss.ts): code running
 * outside a request (no transaction, or one already over) ended its response. `module` is the
 * package that called that code from outside (`app` for the app's own), `site` the location of its
 * outermost frame and `function` its name; `count` the requests, `lostMs` how long the lost code had
 * run outside them by then.
 */
export const ContextLossSchema = Type.Object(
  {
    start: Epoch,
    module: Name(LIMITS.lossModule),
    site: Name(LIMITS.lossSite),
    function: Type.String({ maxLength: LIMITS.lossFunction }),
    count: Type.Integer({ minimum: 1, maximum: 1_000_000_000 }),
    lostMs: MsSum,
  },
  { additionalProperties: false },
);

/** A W3C span id: 16 lowercase hex digits. */
const SpanId = Type.String({ pattern: '^[0-9a-f]{16}$' });

export const SegmentSchema = Type.Object(
  {
    id: Type.Integer({ minimum: 0, maximum: 1_000_000_000 }),
    parentId: Type.Union([Type.Integer({ minimum: 0, maximum: 1_000_000_000 }), Type.Null()]),
    spanId: Type.Optional(SpanId),
    name: Name(LIMITS.segmentName),
    kind: Kind,
    start: Ms,
    end: Ms,
    onCriticalPath: Type.Boolean(),
    error: Type.Optional(Type.String({ maxLength: LIMITS.segmentError })),
    unfinished: Type.Optional(Type.Boolean()),
    operation: Type.Optional(Name(LIMITS.operation)),
    target: Type.Optional(Name(LIMITS.target)),
    statement: Type.Optional(Name(LIMITS.statement)),
  },
  { additionalProperties: false },
);

export const TraceSchema = Type.Object(
  {
    traceId: Type.String({ pattern: '^[0-9a-f]{16,64}$' }),
    spanId: Type.Optional(SpanId),
    parentSpanId: Type.Optional(Type.Union([SpanId, Type.Null()])),
    service: Name(LIMITS.service),
    endpoint: Name(LIMITS.endpoint),
    start: PreciseEpoch,
    status: Type.Integer({ minimum: 0, maximum: 999 }),
    error: Type.Boolean(),
    errorMessage: Type.Optional(Type.String({ maxLength: LIMITS.errorMessage })),
    /** the connection closed before the response was finished (absent: it was finished) */
    aborted: Type.Optional(Type.Boolean()),
    response: Ms,
    duration: Ms,
    cpu: Unknowable(Ms),
    external: Unknowable(Ms),
    externalByKind: byKind(Ms),
    blocking: Unknowable(Ms),
    segments: Type.Array(SegmentSchema, { maxItems: MAX_SEGMENTS }),
    criticalPath: Type.Array(Type.Integer({ minimum: 0 }), { maxItems: MAX_SEGMENTS }),
    truncated: Type.Boolean(),
    droppedSegments: Count,
    /** drawn at random to be shipped, whatever its duration or outcome (absent: kept for another reason) */
    sampledAtRandom: Type.Optional(Type.Boolean()),
    /** ms from the start to the first byte of the response (senders outside the process) */
    firstByte: Type.Optional(Ms),
    requestBytes: Type.Optional(Bytes),
    responseBytes: Type.Optional(Bytes),
    /** the transaction's own slices of the event loop and its waits behind other work (from agents) */
    slices: Type.Optional(Timeline),
    waits: Type.Optional(Timeline),
  },
  { additionalProperties: false },
);

export const MAX_LONG_TASKS = LIMITS.longTasks;

export const LongTaskSchema = Type.Object(
  {
    /** when the slice started, ms since the epoch */
    at: PreciseEpoch,
    ms: Ms,
    /** the transaction it ran for; absent when it ran for none (startup, a timer of no request) */
    endpoint: Type.Optional(Name(LIMITS.endpoint)),
    traceId: Type.Optional(Type.String({ pattern: '^[0-9a-f]{16,64}$' })),
    /** the function that ran: the innermost one the sampling profiler saw on the stack in at least half of its samples, or the callback the loop called */
    function: Name(LIMITS.taskFunction),
    /** file:line:column, when known: in the source the file's source map points to, when it has one */
    location: Type.Optional(Type.String({ maxLength: LIMITS.location })),
    /** file:line:column in the compiled file, when a source map moved `location` */
    compiledLocation: Type.Optional(Type.String({ maxLength: LIMITS.location })),
    /** the stack of that function, innermost first, when the profiler saw it */
    stack: Type.Optional(Type.Array(Type.String({ maxLength: LIMITS.stackFrame }), { maxItems: LIMITS.stackFrames })),
    /** the transactions it kept waiting, per endpoint */
    blocked: Type.Array(
      Type.Object({ endpoint: Name(LIMITS.endpoint), count: Type.Integer({ minimum: 1, maximum: 1_000_000_000 }), ms: MsSum }, { additionalProperties: false }),
      { maxItems: LIMITS.blockedEndpoints },
    ),
  },
  { additionalProperties: false },
);

/** Event-loop health of the process over one flush interval. */
export const LoopSchema = Type.Object(
  {
    start: Epoch,
    ms: Type.Integer({ minimum: 1, maximum: 3_600_000 }),
    /** event-loop delay samples (ms): how late a 10 ms timer ran, corrected for coordinated omission */
    delay: WireSketchSchema,
    /** time the loop was busy and its length (ms): utilization is busy / (busy + idle) */
    busyMs: Ms,
    idleMs: Ms,
    /** garbage collection by kind (minor, major, incremental, weakcb) */
    gc: Type.Record(Type.String({ pattern: '^[a-z]{1,16}$' }), Type.Object({ count: Count, ms: Ms }, { additionalProperties: false })),
    /** process CPU time in the interval (ms) */
    cpu: Type.Object({ user: Ms, system: Ms }, { additionalProperties: false }),
    /** at the end of the interval (bytes) */
    memory: Type.Object({ rss: Bytes, heapUsed: Bytes, heapTotal: Bytes }, { additionalProperties: false }),
    longTasks: Type.Array(LongTaskSchema, { maxItems: MAX_LONG_TASKS }),
    /** long tasks left out over the limit */
    droppedLongTasks: Type.Optional(Count),
    /** what the agent itself cost (agents from before the field leave it out) */
    agent: Type.Optional(
      Type.Object(
        {
          /** what the process's resident memory grew by across the agent's start (bytes) */
          rss: Bytes,
          /**
           * its own time on the loop (ms, from the profiler's samples), the process's CPU time over
           * the same time and the transactions finished in it; sent when a profile was read (every
           * ten seconds or so), absent when the profiler is off
           */
          cpu: Type.Optional(Type.Object({ ms: Ms, processMs: Ms, transactions: Count }, { additionalProperties: false })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const BatchSchema = Type.Object(
  {
    v: Type.Literal(WIRE_VERSION),
    /** unique per batch: a batch sent twice (a retry after a lost acknowledgement) is stored once */
    batchId: Type.String({ pattern: '^[A-Za-z0-9_-]{8,64}$' }),
    service: Name(LIMITS.service),
    /** one process of the service, e.g. host:pid */
    instance: Name(LIMITS.instance),
    agent: Type.Object({ name: Name(LIMITS.senderName), version: Name(LIMITS.senderVersion) }, { additionalProperties: false }),
    sentAt: Epoch,
    intervals: Type.Array(IntervalSchema, { maxItems: MAX_INTERVALS }),
    traces: Type.Array(TraceSchema, { maxItems: MAX_TRACES }),
    /** the process's event-loop health over the batch's interval (agents may leave it out) */
    loop: Type.Optional(LoopSchema),
    /** its outbound calls over the interval, per target (agents from before the field leave it out) */
    calls: Type.Optional(Type.Array(CallsSchema, { maxItems: MAX_CALL_TARGETS })),
    /** where requests lost their context over the interval, per call site (agents from before the field leave it out) */
    contextLoss: Type.Optional(Type.Array(ContextLossSchema, { maxItems: LIMITS.lossSites })),
    /** what the agent could not ship, counted since it started */
    dropped: Type.Object(
      {
        batches: Count,
        transactions: Count,
        traces: Count,
        /** values the sender cut to the wire format's limits (limits.ts; senders from before the field leave it out) */
        cut: Type.Optional(Count),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export type WireInterval = Static<typeof IntervalSchema>;
export type WireTrace = Static<typeof TraceSchema>;
export type WireCalls = Static<typeof CallsSchema>;
export type WireContextLoss = Static<typeof ContextLossSchema>;
export type WireBatch = Static<typeof BatchSchema>;
export type WireLoop = Static<typeof LoopSchema>;
export type WireLongTask = Static<typeof LongTaskSchema>;
