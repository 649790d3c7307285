/**
 * Turns the bytes of `POST /v1/ingest` into a batch the storage may take, or an HttpError saying
 * exactly what is wrong: decompression (bounded: a gzip bomb is a 413, not an out-of-memory), JSON,
 * the wire version (first, so an agent speaking another version is told so and not drowned in
 * schema errors), the schema (docs/protocol.md), then the rules a schema cannot say.
 */
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import Type from 'typebox';
import Compile from 'typebox/compile';
import { LIMITS, METRICS, WIRE_VERSION, wireProblem, type WireBatch, type WireTrace } from '@loopscope/protocol';
import { BatchSchema, ContextLossSchema, IntervalSchema, LongTaskSchema, LoopSchema, MAX_INTERVALS, MAX_LONG_TASKS, MAX_TRACES, TraceSchema } from '@loopscope/protocol/wire';
import { HttpError } from './http-error.js';

export interface IngestLimits {
  /** the most bytes a request body may have on the wire, compressed or not */
  maxBodyBytes: number;
  /** the most bytes a gzip body may decompress to */
  maxDecompressedBytes: number;
}

const MB = 1024 * 1024;
export const DEFAULT_LIMITS: IngestLimits = { maxBodyBytes: 5 * MB, maxDecompressedBytes: 20 * MB };
/** How far ahead of the collector's clock a timestamp may be (agents' clocks drift, but not by days). */
export const MAX_FUTURE_MS = 24 * 3_600_000;

const gunzip = promisify(zlib.gunzip);

export async function decodeBody(body: Buffer, contentEncoding: string | undefined, limits: IngestLimits): Promise<Buffer> {
  const encoding = (contentEncoding ?? 'identity').trim().toLowerCase();
  if (encoding === 'identity' || encoding === '') return body;
  if (encoding !== 'gzip') throw new HttpError(415, `unsupported Content-Encoding "${encoding}"; send gzip or no encoding`);
  try {
    return await gunzip(body, { maxOutputLength: limits.maxDecompressedBytes });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new HttpError(413, `body decompresses to more than ${limits.maxDecompressedBytes} bytes`);
    }
    throw new HttpError(400, `body is not valid gzip: ${(err as Error).message}`);
  }
}

// Compiled once. The full schema answers the common case (a valid batch) in one pass. When it
// fails, the problem is located with the parts: the envelope, with the arrays of records (traces,
// long tasks, context losses) and intervals unchecked, then each interval, then each record alone,
// so that listing errors stays bounded on a 20 MB body where every one of millions of values
// could be wrong.
const batchValidator = Compile(BatchSchema);
const envelopeValidator = Compile(
  Type.Object(
    {
      ...BatchSchema.properties,
      intervals: Type.Array(Type.Unknown(), { maxItems: MAX_INTERVALS }),
      traces: Type.Array(Type.Unknown(), { maxItems: MAX_TRACES }),
      loop: Type.Optional(Type.Object({ ...LoopSchema.properties, longTasks: Type.Array(Type.Unknown(), { maxItems: MAX_LONG_TASKS }) }, { additionalProperties: false })),
      contextLoss: Type.Optional(Type.Array(Type.Unknown(), { maxItems: LIMITS.lossSites })),
    },
    { additionalProperties: false },
  ),
);
const intervalValidator = Compile(IntervalSchema);
const traceValidator = Compile(TraceSchema);
const longTaskValidator = Compile(LongTaskSchema);
const lossValidator = Compile(ContextLossSchema);

interface SchemaError {
  instancePath: string;
  keyword: string;
  message: string;
  params: unknown;
}

/** The first of a value's schema errors, as "<path> <problem>", the path under `prefix`. */
function firstProblem(errors: SchemaError[], prefix: string): string {
  const first = errors.find((e) => e.keyword !== 'additionalProperties') ?? errors[0];
  if (!first) return `${prefix || 'batch'} does not match the wire format`;
  const where = prefix + first.instancePath || 'batch';
  // an unknown property shows up as "schema is false" at its own path
  if (first.keyword === 'boolean') return `${where} is not a property of the wire format`;
  if (first.keyword === 'const') {
    const allowed = errors.filter((e) => e.instancePath === first.instancePath && e.keyword === 'const').map((e) => JSON.stringify((e.params as { allowedValue?: unknown }).allowedValue));
    return `${where} must be one of ${allowed.join(', ')}`;
  }
  return `${where} ${first.message}`;
}

/** The first problem of the batch's structure: its envelope, or an interval (undefined: none). */
function structureProblem(value: unknown): string | undefined {
  if (!envelopeValidator.Check(value)) return firstProblem(envelopeValidator.Errors(value), '');
  const intervals = (value as { intervals: unknown[] }).intervals;
  const i = intervals.findIndex((iv) => !intervalValidator.Check(iv));
  return i === -1 ? undefined : firstProblem(intervalValidator.Errors(intervals[i]), `/intervals/${i}`);
}

/**
 * Parses and validates the (decompressed) body. `receivedAt` is the collector's clock, for the
 * future-timestamp rule.
 */
export function parseBatch(bytes: Buffer, receivedAt: number): ValidBatch {
  if (bytes.length === 0) throw new HttpError(400, 'empty body; send a batch as JSON');
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, `malformed JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(400, 'a batch must be a JSON object');
  const v = (value as { v?: unknown }).v;
  if (v !== WIRE_VERSION) {
    const said = v === undefined ? 'no wire version (field "v")' : `unsupported wire version ${JSON.stringify(v)}`;
    throw new HttpError(400, `${said}; this collector speaks version ${WIRE_VERSION}`);
  }
  return validBatch(value, receivedAt);
}

/**
 * The records of a batch left out because they were not valid (the rest of the batch was stored):
 * how many of each kind, and the first one's problem. The answer to the sender says so, as OTLP's
 * partial success does (docs/protocol.md).
 */
export interface Rejected {
  traces: number;
  longTasks: number;
  contextLoss: number;
  message: string;
}

export interface ValidBatch {
  batch: WireBatch;
  /** records left out (absent: none) */
  rejected?: Rejected;
}

/**
 * The batch, if it is one the storage may take, without its records that are not valid (a trace,
 * a long task, a context loss: each is counted in `rejected`); an HttpError 400 saying what is wrong
 * when its structure is not (its envelope, an interval, the rules that bind them).
 */
export function validBatch(value: unknown, receivedAt: number): ValidBatch {
  const whole = batchValidator.Check(value);
  if (!whole) {
    const problem = structureProblem(value);
    if (problem !== undefined) throw new HttpError(400, problem);
  }
  const batch = value as WireBatch;
  const rejected = leaveOutInvalid(batch, receivedAt, !whole);
  const problem = semanticProblem(batch, receivedAt);
  if (problem) throw new HttpError(400, problem);
  return rejected === undefined ? { batch } : { batch, rejected };
}

/** What is wrong with one trace of a batch (the schema's first complaint, or a rule's), or undefined. */
export function traceProblem(t: WireTrace, receivedAt: number): string | undefined {
  if (!traceValidator.Check(t)) {
    const e = (traceValidator.Errors(t) as SchemaError[])[0];
    return e ? `${e.instancePath || 'trace'} ${e.message}` : 'not a trace of the wire format';
  }
  return traceRuleBroken(t, receivedAt + MAX_FUTURE_MS, '');
}

/**
 * Takes the records that are not valid out of the batch (the schema is checked when `check`, the
 * whole batch's having failed); says what was taken out.
 */
function leaveOutInvalid(batch: WireBatch, receivedAt: number, check: boolean): Rejected | undefined {
  const latest = receivedAt + MAX_FUTURE_MS;
  let first: string | undefined;
  const keep = <T>(list: T[], path: string, problem: (item: T, at: string) => string | undefined): { kept: T[]; left: number } => {
    const kept: T[] = [];
    list.forEach((item, k) => {
      const broken = problem(item, `${path}/${k}`);
      if (broken === undefined) kept.push(item);
      else first ??= broken;
    });
    return { kept, left: list.length - kept.length };
  };
  const traces = keep(batch.traces, '/traces', (t, at) => {
    if (check && !traceValidator.Check(t)) return firstProblem(traceValidator.Errors(t), at);
    if (t.service !== batch.service) return `${at}/service "${t.service}" is not the batch's service "${batch.service}"`;
    return traceRuleBroken(t, latest, at);
  });
  const tasks = keep(batch.loop?.longTasks ?? [], '/loop/longTasks', (t, at) => {
    if (check && !longTaskValidator.Check(t)) return firstProblem(longTaskValidator.Errors(t), at);
    if (t.at > latest) return `${at}/at ${t.at} is more than a day ahead of the collector's clock (${receivedAt})`;
    if ((t.endpoint === undefined) !== (t.traceId === undefined)) return `${at}: endpoint and traceId come together (both for a task of a transaction, neither for one of none)`;
    return undefined;
  });
  const losses = keep(batch.contextLoss ?? [], '/contextLoss', (l, at) => {
    if (check && !lossValidator.Check(l)) return firstProblem(lossValidator.Errors(l), at);
    return l.start > latest ? `${at}/start ${l.start} is more than a day ahead of the collector's clock (${receivedAt})` : undefined;
  });
  if (first === undefined) return undefined;
  batch.traces = traces.kept;
  if (batch.loop !== undefined) batch.loop.longTasks = tasks.kept;
  if (batch.contextLoss !== undefined) batch.contextLoss = losses.kept;
  return { traces: traces.left, longTasks: tasks.left, contextLoss: losses.left, message: first };
}

/** The rules of a trace the schema cannot express; `at` prefixes where. */
function traceRuleBroken(t: WireTrace, latest: number, at: string): string | undefined {
  if (t.start > latest) return `${at}/start ${t.start} is more than a day ahead of the collector's clock (${latest - MAX_FUTURE_MS})`;
  const ids = new Set<number>();
  for (const [k, s] of t.segments.entries()) {
    if (s.end < s.start) return `${at}/segments/${k}/end ${s.end} is before its start ${s.start}`;
    if (ids.has(s.id)) return `${at}/segments/${k}/id ${s.id} is used by another segment`;
    ids.add(s.id);
  }
  for (const [k, id] of t.criticalPath.entries()) {
    if (!ids.has(id)) return `${at}/criticalPath/${k} is segment ${id}, which is not in segments`;
  }
  for (const list of ['slices', 'waits'] as const) {
    for (const [k, [start, end]] of (t[list] ?? []).entries()) {
      if (end < start) return `${at}/${list}/${k} ends at ${end}, before its start ${start}`;
    }
  }
  return undefined;
}

/** The rules of the batch's structure the schema cannot express; the first one broken, or undefined. */
function semanticProblem(batch: WireBatch, receivedAt: number): string | undefined {
  const latest = receivedAt + MAX_FUTURE_MS;
  if (batch.sentAt > latest) return `/sentAt ${batch.sentAt} is more than a day ahead of the collector's clock (${receivedAt})`;
  for (const [i, iv] of batch.intervals.entries()) {
    const at = `/intervals/${i}`;
    if (iv.start > latest) return `${at}/start ${iv.start} is more than a day ahead of the collector's clock (${receivedAt})`;
    if (iv.errors > iv.count) return `${at}/errors ${iv.errors} is more than count ${iv.count}`;
    if (iv.aborted !== undefined && iv.aborted > iv.count) return `${at}/aborted ${iv.aborted} is more than count ${iv.count}`;
    for (const m of METRICS) {
      const sketch = iv[m];
      if (sketch === null) continue; // unknown: a sender outside the process (the schema allows it for cpu, external, blocking only)
      // (checked, not rebuilt: building a DDSketch per sketch was a tenth of the collector's CPU per batch)
      const problem = wireProblem(sketch);
      if (problem !== undefined) return `${at}/${m}: ${problem}`;
      if (sketch.n !== iv.count) return `${at}/${m}/n is ${sketch.n} but count is ${iv.count}; every transaction counted has each of the five values (or the sketch is null: unknown)`;
    }
  }
  for (const [i, call] of (batch.calls ?? []).entries()) {
    const problem = wireProblem(call.duration);
    if (problem !== undefined) return `/calls/${i}/duration: ${problem}`;
  }
  if (batch.loop !== undefined) {
    const problem = wireProblem(batch.loop.delay);
    if (problem !== undefined) return `/loop/delay: ${problem}`;
    if (batch.loop.start > latest) return `/loop/start ${batch.loop.start} is more than a day ahead of the collector's clock (${receivedAt})`;
  }
  return undefined;
}
