/**
 * The fuzzer (issue 26): fast-check drives ingest (`POST /v1/ingest`), OTLP's `POST /v1/traces` and
 * every path and parameter of the query API of a real collector over HTTP, for a bounded time. Three
 * properties, each of every answer:
 *
 * 1. ingest: whatever the body (random bytes, random JSON, good batches mutated field by field, cut
 *    or broken byte by byte, gzip of anything, every content type and encoding, missing and
 *    duplicated batch ids, deep nesting, huge texts and numbers), the answer is a 2xx or a 4xx with
 *    a JSON `{error}` (for OTLP: its own answer, a google.rpc.Status), within ANSWER_LIMIT_MS;
 * 2. queries: whatever the path and the parameters (random texts, huge, negative, fractional and
 *    exponent numbers, empty, repeated, percent-encoded garbage, 90 days at a 1 s step), a 2xx with
 *    JSON (text for /metrics) or a 4xx with `{error}`, within ANSWER_LIMIT_MS;
 *    and after every run the collector still answers `GET /api/health`, and logged no error.
 * 3. nothing stored is damaged: good batches are stored before the garbage and more between it (the
 *    same ones sent again, mutated copies under a stored batch's id, new ones); at the end the query
 *    API answers for them exactly what a second collector that got only the good batches answers,
 *    and, for those stored first, what it answered before the garbage.
 *
 * Time: LOOPSCOPE_FUZZ_SECONDS (default 20, what `npm test` runs; `npm run fuzz` runs minutes).
 * Replay: the seed is printed; LOOPSCOPE_FUZZ_SEED=<seed> runs the same inputs again, and a failure
 * prints the line to replay it alone (LOOPSCOPE_FUZZ_ONLY=<property> LOOPSCOPE_FUZZ_PATH=<path>).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { SERIES_METRICS } from '../src/storage/storage.js';
import { parseRules } from '../src/alerts/rules.js';
import type { WireBatch } from '@loopscope/protocol';
import { batch, interval, loopSample, random, randomTx, startTestCollector, trace, type TestCollector } from './helpers.js';

const SECONDS = Number(process.env.LOOPSCOPE_FUZZ_SECONDS ?? 20);
assert.ok(SECONDS > 0, `LOOPSCOPE_FUZZ_SECONDS must be a number of seconds, got "${process.env.LOOPSCOPE_FUZZ_SECONDS}"`);
const SEED = process.env.LOOPSCOPE_FUZZ_SEED !== undefined ? Number(process.env.LOOPSCOPE_FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
const PATH = process.env.LOOPSCOPE_FUZZ_PATH;
const ONLY = process.env.LOOPSCOPE_FUZZ_ONLY;
/** An answer later than this is a hang. */
const ANSWER_LIMIT_MS = 10_000;
/** The share of the time of each property. */
const SHARE = { ingest: 0.45, otlp: 0.15, query: 0.4 } as const;
type Property = keyof typeof SHARE;

const now = Date.now();
const DAY = 86_400_000;

// --- HTTP: raw requests, any path, any bytes, any headers; the answer's status, type, bytes and time

interface Reply {
  status: number;
  type: string;
  raw: Buffer;
  ms: number;
}

function request(base: string, method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<Reply> {
  const url = new URL(base);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request({ host: url.hostname, port: url.port, method, path, headers: body ? { ...headers, 'content-length': String(body.length) } : headers }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type'] ?? ''), raw: Buffer.concat(chunks), ms: performance.now() - started }));
      res.on('error', reject);
    });
    req.setTimeout(ANSWER_LIMIT_MS, () => req.destroy(new Error(`no answer within ${ANSWER_LIMIT_MS} ms (a hang)`)));
    // an answer before the whole body was read (a 413) may end the upload: the answer counts
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    req.end(body);
  });
}

/** What went wrong with an answer of the ingest or the query API (undefined: nothing). */
function apiProblem(r: Reply, text = false): string | undefined {
  if (r.status >= 500) return `a ${r.status}: ${r.raw.toString().slice(0, 300)}`;
  if (r.status < 200 || (r.status >= 300 && r.status < 400)) return `status ${r.status}`;
  if (r.status < 300 && text) return r.raw.length > 0 ? undefined : 'an empty answer';
  let body: unknown;
  try {
    body = JSON.parse(r.raw.toString());
  } catch {
    return `not JSON (status ${r.status}, ${r.type}): ${r.raw.toString().slice(0, 200)}`;
  }
  if (r.status >= 400) {
    const error = (body as { error?: unknown } | null)?.error;
    if (typeof error !== 'string' || error === '') return `a ${r.status} without an {error} message: ${r.raw.toString().slice(0, 200)}`;
  }
  return undefined;
}

// --- the collectors: the fuzzed one, and a reference that gets only the good batches

let fuzzed: TestCollector;
let reference: TestCollector;
/** error lines the fuzzed collector logged (an internal error, a failed prune...) */
const logged: string[] = [];

const RULES = parseRules(`
rules:
  - { name: slow, service: fuzz-good, metric: response, quantile: 0.95, above: 1, for: 1s }
  - { name: errors, service: fuzz-late, endpoint: GET /b, metric: error_rate, above: 0.01, for: 1s }
  - { name: loop, service: fuzz-good, metric: loop_delay, quantile: 0.99, above: 1, for: 1s }
`);

// --- good batches: full-featured (intervals, traces with segments and timelines, loop and long tasks, calls, context loss)

function goodBatch(service: string, seed: number, id: string, at = now - 60_000): WireBatch {
  const rand = random(seed);
  const endpoints = ['GET /a', 'GET /b', 'POST /c/:id'];
  const intervals = endpoints.map((endpoint, i) => interval(endpoint, at + i * 1000, Array.from({ length: 1 + Math.floor(rand() * 5) }, () => randomTx(rand, 0.2))));
  const traces = endpoints.map((endpoint, i) => {
    const t = trace(service, endpoint, at + i * 1000 + 10, randomTx(rand, 0.2));
    // (trace ids of good batches are their own: no garbage carries one)
    return { ...t, traceId: `${seed.toString(16).padStart(8, '0')}${i.toString(16).padStart(8, '0')}${'0'.repeat(15)}1`, spanId: '0123456789abcdef', parentSpanId: null, sampledAtRandom: i === 0 };
  });
  const b = batch(service, `${service}-1`, intervals, traces, at + 3000);
  b.batchId = id;
  b.loop = loopSample(at, {
    longTasks: [{ at: at + 100, ms: 80, endpoint: 'GET /a', traceId: traces[0]!.traceId, function: 'work', location: '/app/x.js:1:2', stack: ['work (/app/x.js:1:2)'], blocked: [{ endpoint: 'GET /b', count: 1, ms: 20 }] }],
  });
  b.calls = [{ start: at, ms: 1000, kind: 'db', target: '127.0.0.1:5432/shop', count: 1, errors: 0, duration: structuredClone(intervals[0]!.duration) }];
  b.contextLoss = [{ start: at, module: 'lib', site: '/app/node_modules/lib/x.js:3:4', function: 'cb', count: 1, lostMs: 1.5 }];
  b.dropped = { batches: 0, transactions: 0, traces: 0, cut: 0 };
  return b;
}

/** Stored before the garbage (service fuzz-good); their answers are taken before and after. */
const FIRST: WireBatch[] = [1, 2, 3, 4].map((k) => goodBatch('fuzz-good', k, `fuzz-good-batch-${SEED}-${k}`));
/** New good batches sent between the garbage (service fuzz-late), to both collectors. */
const lateBatch = (seed: number): WireBatch => goodBatch('fuzz-late', 1000 + seed, `fuzz-late-batch-${SEED}-${seed}`, now - 120_000 + (seed % 50) * 1000);
/** Templates of the garbage: a good batch of another service. */
const TEMPLATES: WireBatch[] = [1, 2].map((k) => {
  const b = goodBatch('fuzz-garbage', 500 + k, 'template');
  for (const t of b.traces) t.traceId = `f${t.traceId.slice(1)}`;
  return b;
});
const GOOD_TRACE_IDS = [...FIRST, lateBatch(0)].flatMap((b) => b.traces.map((t) => t.traceId));

async function sendGood(b: WireBatch): Promise<void> {
  for (const c of [fuzzed, reference]) {
    const r = await request(c.url, 'POST', '/v1/ingest', { 'content-type': 'application/json' }, Buffer.from(JSON.stringify(b)));
    assert.equal(r.status, 200, `a good batch: ${r.raw.toString()}`);
  }
}

// --- what the query API answers about the good services (compared at the end)

const RANGE = `from=${now - DAY}&to=${now + 60_000}`;
async function answers(c: TestCollector, service: string): Promise<Record<string, unknown>> {
  const paths = [
    `/api/endpoints?service=${service}&${RANGE}`,
    `/api/traces?service=${service}&${RANGE}&limit=1000&sort=recent`,
    `/api/traces?service=${service}&${RANGE}&limit=1000&sort=slowest&by=response`,
    `/api/timeseries?service=${service}&${RANGE}&metric=throughput&step=60000`,
    `/api/timeseries?service=${service}&endpoint=GET%20%2Fa&metric=response&q=0.5&step=1000&from=${now - 600_000}&to=${now}`,
    `/api/timeseries?service=${service}&${RANGE}&metric=loop_delay&step=3600000`,
    `/api/loop?service=${service}&${RANGE}&group=culprit`,
    `/api/context-loss?service=${service}&${RANGE}`,
    `/api/critical-path?service=${service}&endpoint=GET%20%2Fa&${RANGE}`,
    `/api/views?endpoint=GET%20%2Fb&${RANGE}`,
    `/api/servicemap/calls?node=db:127.0.0.1:5432/shop&caller=${service}&${RANGE}`,
  ];
  const out: Record<string, unknown> = {};
  for (const p of paths) {
    const r = await request(c.url, 'GET', p, {});
    assert.equal(r.status, 200, `${p}: ${r.raw.toString().slice(0, 300)}`);
    out[p] = JSON.parse(r.raw.toString());
  }
  const services = JSON.parse((await request(c.url, 'GET', `/api/services?${RANGE}`, {})).raw.toString()) as Array<Record<string, unknown>>;
  // (lastSeen and firstSeen are the collector's clock at ingest)
  // (every service's rows: this one's)
  const views = `/api/views?endpoint=GET%20%2Fb&${RANGE}`;
  out[views] = (out[views] as Array<{ service: string }>).filter((row) => row.service === service);
  out.services = services.filter((s) => s.service === service).map(({ lastSeen: _l, firstSeen: _f, ...rest }) => rest);
  const list = out[paths[1]!] as Array<{ traceId: string }>;
  assert.ok(list.length > 0, `${service} has traces`);
  for (const { traceId } of list) {
    for (const p of [`/api/traces/${traceId}`, `/api/traces/${traceId}/holders?limit=20`]) {
      const r = await request(c.url, 'GET', p, {});
      assert.equal(r.status, 200, `${p}: ${r.raw.toString().slice(0, 300)}`);
      out[p] = JSON.parse(r.raw.toString());
    }
  }
  return out;
}

let firstAnswers: Record<string, unknown>;

/** The answers are the same, or the failure names the requests whose answers differ, with both. */
function same(actual: Record<string, unknown>, expected: Record<string, unknown>, what: string): void {
  const keys = [...new Set([...Object.keys(actual), ...Object.keys(expected)])];
  const differ = keys.filter((k) => JSON.stringify(actual[k]) !== JSON.stringify(expected[k]));
  const show = (v: unknown): string => JSON.stringify(v)?.slice(0, 1500) ?? 'nothing';
  assert.deepEqual(differ, [], `${what}: ${differ.map((k) => `\n${k}\n  now: ${show(actual[k])}\n  was: ${show(expected[k])}`).join('')}`);
  assert.deepEqual(actual, expected, what);
}

before(async () => {
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      logged.push(chunk.toString());
      done();
    },
  });
  fuzzed = await startTestCollector({ logger: { level: 'error', stream }, rules: RULES });
  reference = await startTestCollector();
  for (const b of FIRST) await sendGood(b);
  firstAnswers = await answers(fuzzed, 'fuzz-good');
  console.log(`fuzz: seed ${SEED}, ${SECONDS} s (replay: LOOPSCOPE_FUZZ_SEED=${SEED} LOOPSCOPE_FUZZ_SECONDS=${SECONDS})`);
});
after(async () => {
  await fuzzed?.close();
  await reference?.close();
});

// --- values to put where a good one was

/** A value written into the JSON text as is: NaN, 1e400, nesting 100 000 deep, 5 MB of text. */
class Raw {
  #text: string | undefined;
  /** `label` is how a counterexample shows it (not megabytes of it) */
  constructor(
    readonly label: string,
    readonly make: () => string,
  ) {}

  get raw(): string {
    return (this.#text ??= this.make());
  }

  [fc.toStringMethod](): string {
    return `raw(${this.label})`;
  }
}
const isRaw = (v: unknown): v is Raw => v instanceof Raw;

const rawToken: fc.Arbitrary<Raw> = fc.oneof(
  fc
    .constantFrom(
      'NaN', 'Infinity', '-Infinity', '1e400', '-1e400', '1e-400', '-0', '0.0000001', '123456789012345678901234567890', '9007199254740993', '0x10', '+1', '.5', '1.', '01',
      '"\\ud800"', '"\\udfff"', '"a\\ud83d"', '"\\u0000"', '"\u2028"', 'undefined', '{"__proto__":{"polluted":1}}', '{"constructor":{"prototype":{"polluted":1}}}', '[]', '{}', 'null',
    )
    .map((raw) => new Raw(raw, () => raw)),
  fc
    .record({ depth: fc.integer({ min: 10, max: 200_000 }), array: fc.boolean() })
    .map(({ depth, array }) => new Raw(`nested ${depth} deep`, () => (array ? `${'['.repeat(depth)}1${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`))),
  fc
    .record({ n: fc.integer({ min: 1000, max: 6_000_000 }), c: fc.constantFrom('x', 'é', '😀', '\\"', '\\ud800') })
    .map(({ n, c }) => new Raw(`a text of ${n} ${c}`, () => `"${c.repeat(Math.ceil(n / c.length))}"`)),
  fc.integer({ min: 1000, max: 600_000 }).map((n) => new Raw(`${n} zeros`, () => `[${'0,'.repeat(n)}0]`)),
  fc.integer({ min: 100, max: 100_000 }).map((n) => new Raw(`${n} keys`, () => `{${Array.from({ length: n }, (_, i) => `"k${i}":${i}`).join(',')}}`)),
);

const weird: fc.Arbitrary<unknown> = fc.oneof(
  rawToken,
  fc.double(),
  fc.integer(),
  fc.constantFrom(0, -1, 1, 1e300, -1e300, Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, 1577836800000, now, now + 2 * DAY, 0.5, 604_800_001, 1e9 + 1, 4097, 100_001),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', ' ', '\ud800', '\udfff', 'a\ud83d', 'GET /a', 'fuzz-other', 'http', 'db', '0123456789abcdef', 'F'.repeat(32), 'x'.repeat(2049)),
  fc.boolean(),
  fc.constant(null),
  fc.jsonValue({ maxDepth: 3 }),
);

/** Texts and numbers the wire format allows, at its edges: what a batch may carry into storage and back out. */
const edgeText = fc.oneof(
  fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }),
  fc.constantFrom('\ud800', 'a\udfff', '\n', '"', '\\', '{{', '\u0000', ' ', 'é', '😀'.repeat(100), 'x'.repeat(256), 'x'.repeat(512), 'GET /a\nb', 'le="0.5"', '</script>', '%s', '?', '*'),
);
const edgeNumber = fc.oneof(fc.constantFrom(0, 1, 0.001, 0.0001, 604_800_000, 1e9, 3_600_000, 1577836800000, now + DAY - 60_000, 100_000, -100_000, 4096, 999), fc.double({ min: 0, max: 604_800_000, noNaN: true }));

/** A change at the `at`-th place of the batch (modulo its number of places). */
const mutation = fc.record({
  at: fc.nat(),
  op: fc.constantFrom('replace', 'replace', 'edge', 'edge', 'edge', 'delete', 'add', 'duplicateKey', 'repeat'),
  value: weird,
  edge: fc.tuple(edgeText, edgeNumber),
  times: fc.integer({ min: 2, max: 6000 }),
});
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

/** Every place in a value (object properties and array items), parents first, at most `max`. */
function places(value: unknown, max = 3000): Array<{ parent: any; key: string | number }> {
  const out: Array<{ parent: any; key: string | number }> = [];
  const walk = (v: unknown, depth: number): void => {
    if (depth > 10 || typeof v !== 'object' || v === null || isRaw(v)) return;
    for (const key of Array.isArray(v) ? v.keys() : Object.keys(v)) {
      if (out.length >= max) return;
      out.push({ parent: v, key });
      walk((v as any)[key], depth + 1);
    }
  };
  walk(value, 0);
  return out;
}

/**
 * The JSON text of a value with its raw tokens and duplicated keys written in. (A body has at most
 * 24 MB of raw tokens; past that they are 0: a token repeated in a list of thousands would not fit a string.)
 */
function serialize(value: unknown): string {
  const raws: string[] = [];
  let size = 0;
  let text: string;
  try {
    text = JSON.stringify(value, (_k, v: unknown) => {
      if (!isRaw(v)) return v;
      size += v.raw.length;
      return `@@RAW${raws.push(size > 24e6 ? '0' : v.raw) - 1}@@`;
    });
  } catch (err) {
    // lists repeated inside repeated lists: more than a string holds, no body to send (the run is skipped)
    if (err instanceof RangeError) fc.pre(false);
    throw err;
  }
  text = text.replace(/"@@DUP(\d+)@@:([^"]*)@@"/g, (_m, _n, key: string) => JSON.stringify(key));
  return text.replace(/"@@RAW(\d+)@@"/g, (_m, k: string) => raws[Number(k)]!);
}

/** A deep copy, raw tokens shared (a copy's later change stays in that copy). */
function clone(v: unknown): unknown {
  if (typeof v !== 'object' || v === null || isRaw(v)) return v;
  if (Array.isArray(v)) return v.map(clone);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clone(x)]));
}

function mutate(value: any, mutations: Mutation[]): any {
  const root = { value };
  mutations.forEach((m, n) => {
    const all = places(root);
    const { parent, key } = all[m.at % all.length]!;
    const target = parent[key];
    switch (m.op) {
      case 'replace':
        parent[key] = m.value;
        break;
      case 'edge':
        // the same type, another value
        if (typeof target === 'string') parent[key] = m.edge[0];
        else if (typeof target === 'number') parent[key] = Number.isInteger(target) ? Math.round(m.edge[1]) : m.edge[1];
        break;
      case 'delete':
        if (Array.isArray(parent)) parent.splice(key as number, 1);
        else if (parent !== root) delete parent[key];
        break;
      case 'add':
        if (Array.isArray(target)) target.push(m.value);
        else if (typeof target === 'object' && target !== null && !isRaw(target)) target[`extra${n}`] = m.value;
        else parent[key] = m.value;
        break;
      case 'duplicateKey': {
        // the same property twice in the text: {"count":2,...,"count":"x"}
        const [first] = typeof target === 'object' && target !== null && !isRaw(target) && !Array.isArray(target) ? Object.keys(target) : [];
        if (first !== undefined) target[`@@DUP${n}@@:${first}@@`] = m.value;
        break;
      }
      case 'repeat':
        // a list over its limit: one item many times (at most about 8 MB of them)
        if (Array.isArray(target) && target.length > 0) {
          const times = Math.min(m.times, Math.max(2, Math.floor(8e6 / (serialize(target[0]).length + 1))));
          parent[key] = Array.from({ length: times }, () => clone(target[0]));
        }
        break;
    }
  });
  return root.value;
}

// --- bodies

const bytes = fc.uint8Array({ maxLength: 2048 });
const body = fc.oneof(
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('bytes' as const), bytes }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('json' as const), value: fc.oneof(fc.jsonValue({ maxDepth: 4 }), weird) }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('mutated' as const),
      template: fc.nat(),
      // fresh: a new id; stored: the id of a stored good batch (a duplicate: nothing may change); none: no id
      id: fc.constantFrom('fresh', 'fresh', 'stored', 'none'),
      mutations: fc.array(mutation, { minLength: 0, maxLength: 4 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('edited' as const), template: fc.nat(), edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'insert', 'cut', 'surrogate')), { minLength: 1, maxLength: 4 }) }) },
);
type Body = typeof body extends fc.Arbitrary<infer B> ? B : never;

let freshId = 0;
/** The body's bytes; `stored`: the batch id it reuses (a stored good batch's), if any. */
function bodyBytes(b: Body, otlp: boolean): { bytes: Buffer; stored?: string } {
  switch (b.kind) {
    case 'bytes':
      return { bytes: Buffer.from(b.bytes) };
    case 'json':
      return { bytes: Buffer.from(serialize(b.value)) };
    case 'mutated': {
      if (otlp) return { bytes: Buffer.from(serialize(mutate(otlpTemplate(b.template), b.mutations))) };
      const storedBatch = b.id === 'stored' ? FIRST[b.template % FIRST.length]! : undefined;
      const base = structuredClone(storedBatch ?? TEMPLATES[b.template % TEMPLATES.length]!) as any;
      const value = mutate(base, b.mutations);
      if (typeof value === 'object' && value !== null && !Array.isArray(value) && !isRaw(value)) {
        if (storedBatch) value.batchId = storedBatch.batchId;
        else if (b.id === 'none') delete value.batchId;
        else value.batchId = `fuzz-${SEED}-${++freshId}`;
      }
      return { bytes: Buffer.from(serialize(value)), ...(storedBatch ? { stored: storedBatch.batchId } : {}) };
    }
    case 'edited': {
      const text = otlp ? serialize(otlpTemplate(b.template)) : serialize({ ...TEMPLATES[b.template % TEMPLATES.length]!, batchId: `fuzz-${SEED}-${++freshId}` });
      let buf = Buffer.from(text);
      for (const [pos, byte, how] of b.edits) {
        const at = pos % (buf.length + 1);
        if (how === 'set' && at < buf.length) buf[at] = byte;
        else if (how === 'insert') buf = Buffer.concat([buf.subarray(0, at), Buffer.from([byte]), buf.subarray(at)]);
        else if (how === 'cut') buf = buf.subarray(0, at);
        // a lone surrogate's bytes (ED A0 80: not UTF-8)
        else if (how === 'surrogate') buf = Buffer.concat([buf.subarray(0, at), Buffer.from([0xed, 0xa0, 0x80]), buf.subarray(at)]);
      }
      return { bytes: buf };
    }
  }
}

/** `value` once in `every` runs, else undefined. */
const sometimes = <T>(value: fc.Arbitrary<T>, every: number): fc.Arbitrary<T | undefined> =>
  fc.oneof({ weight: every - 1, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: value });

const CONTENT_TYPES = ['application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'application/json;charset=latin1', 'application/jsonx', 'text/plain', 'text/json', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/x-protobuf', 'application/protobuf', '', '*/*', 'application/json, text/plain'];
const ENCODINGS = ['gzip', 'GZIP', ' gzip ', 'x-gzip', 'gzip, gzip', 'deflate', 'br', 'identity', '', 'compress', 'gzip;q=1'];

const ingestCase = fc.record({
  body,
  contentType: fc.oneof({ weight: 5, arbitrary: fc.constant('application/json') }, { weight: 2, arbitrary: fc.constantFrom(...CONTENT_TYPES) }, { weight: 1, arbitrary: fc.constant(undefined) }),
  // how the bytes go: as they are, gzip (said or not), gzip cut short, twice
  gzip: fc.constantFrom('none', 'none', 'none', 'gzip', 'gzip', 'gzip-unsaid', 'gzip-cut', 'gzip-twice'),
  encoding: sometimes(fc.constantFrom(...ENCODINGS), 4),
  method: fc.oneof({ weight: 20, arbitrary: fc.constant('POST') }, { weight: 1, arbitrary: fc.constantFrom('PUT', 'GET', 'DELETE', 'PATCH') }),
  // sometimes a good batch goes to both collectors before this one: again (a duplicate) or new
  good: sometimes(fc.record({ again: fc.boolean(), seed: fc.nat(200) }), 10),
});
type IngestCase = typeof ingestCase extends fc.Arbitrary<infer C> ? C : never;

function wire(c: IngestCase, otlp: boolean): { bytes: Buffer; headers: Record<string, string>; stored?: string } {
  const made = bodyBytes(c.body, otlp);
  let out = made.bytes;
  let encoding = c.encoding;
  if (c.gzip !== 'none') {
    out = zlib.gzipSync(out);
    if (c.gzip === 'gzip-cut') out = out.subarray(0, Math.floor(out.length / 2));
    if (c.gzip === 'gzip-twice') out = zlib.gzipSync(out);
    if (c.gzip !== 'gzip-unsaid') encoding ??= 'gzip';
  }
  const headers: Record<string, string> = {};
  if (c.contentType !== undefined) headers['content-type'] = c.contentType;
  if (encoding !== undefined) headers['content-encoding'] = encoding;
  return { bytes: out, headers, ...(made.stored !== undefined ? { stored: made.stored } : {}) };
}

/** What the runs saw, for the report at the end. */
class Stats {
  runs = 0;
  requests = 0;
  bytes = 0;
  readonly statuses = new Map<number, number>();
  slowest = { ms: 0, what: '' };
  constructor(readonly name: string) {}
  saw(r: Reply, what: string, sent = 0): void {
    this.requests++;
    this.bytes += sent;
    this.statuses.set(r.status, (this.statuses.get(r.status) ?? 0) + 1);
    if (r.ms > this.slowest.ms) this.slowest = { ms: r.ms, what };
  }

  report(seconds: number): string {
    const statuses = [...this.statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}: ${n}`).join(', ');
    return `fuzz ${this.name}: ${this.runs} runs, ${this.requests} requests (${(this.bytes / 1e6).toFixed(1)} MB sent) in ${seconds.toFixed(1)} s; statuses ${statuses}; slowest answer ${this.slowest.ms.toFixed(0)} ms (${this.slowest.what})`;
  }
}

async function healthy(stats: Stats): Promise<void> {
  const r = await request(fuzzed.url, 'GET', '/api/health', {});
  stats.saw(r, 'GET /api/health');
  assert.equal(r.status, 200, `the collector's health after the input: ${r.raw.toString().slice(0, 300)}`);
  assert.equal(JSON.parse(r.raw.toString()).status, 'ok');
  assert.deepEqual(logged.splice(0), [], 'the collector logged an error');
}

const lateSent = new Set<number>();
async function sendLate(good: NonNullable<IngestCase['good']>): Promise<void> {
  const seed = good.again && lateSent.size > 0 ? [...lateSent][good.seed % lateSent.size]! : good.seed;
  lateSent.add(seed);
  await sendGood(lateBatch(seed));
}

/** Runs `property` for its share of the time (or replays PATH), and fails with the line that replays it. */
async function fuzz<C>(name: Property, arbitrary: fc.Arbitrary<C>, stats: Stats, run: (c: C) => Promise<void>): Promise<void> {
  const started = performance.now();
  const details = await fc.check(
    fc.asyncProperty(arbitrary, async (c) => {
      stats.runs++;
      await run(c);
      await healthy(stats);
    }),
    {
      seed: SEED,
      ...(PATH !== undefined && ONLY === name ? { path: PATH, numRuns: 1 } : { numRuns: Number.MAX_SAFE_INTEGER, interruptAfterTimeLimit: SECONDS * 1000 * SHARE[name] }),
      // (a counterexample of megabytes takes long to shrink; the time limit above bounds it too)
      endOnFailure: false,
    },
  );
  console.log(stats.report((performance.now() - started) / 1000));
  if (details.failed) {
    const replay = `replay: LOOPSCOPE_FUZZ_SEED=${details.seed} LOOPSCOPE_FUZZ_ONLY=${name} LOOPSCOPE_FUZZ_PATH=${details.counterexamplePath} node --test packages/collector/dist/test/fuzz.test.js`;
    const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    throw new Error(`${fc.defaultReportMessage(details)?.slice(0, 20_000)}\nthe error: ${error.slice(0, 5000)}\n${replay}`);
  }
}

const skip = (name: Property): boolean => ONLY !== undefined && ONLY !== name;
const TIMEOUT = SECONDS * 1000 + 120_000;

// --- 1. ingest

test('ingest: every body gets a 2xx or a 4xx with {error}, in time, and the collector stays up', { skip: skip('ingest'), timeout: TIMEOUT }, async () => {
  const stats = new Stats('ingest');
  await fuzz('ingest', ingestCase, stats, async (c) => {
    if (c.good) await sendLate(c.good);
    const { bytes, headers, stored } = wire(c, false);
    const r = await request(fuzzed.url, c.method, '/v1/ingest', headers, c.method === 'GET' ? undefined : bytes);
    stats.saw(r, `${c.method} /v1/ingest ${bytes.length} bytes (${c.body.kind})`, bytes.length);
    const problem = apiProblem(r);
    assert.equal(problem, undefined, problem);
    if (r.status === 200) {
      const answer = JSON.parse(r.raw.toString()) as { ok: boolean; duplicate: boolean; batchId: string };
      assert.equal(answer.ok, true);
      // a stored batch's id: nothing stored, whatever the rest of the body
      if (stored !== undefined) assert.equal(answer.duplicate, true, `a batch under the stored id ${stored} was taken: ${r.raw.toString().slice(0, 300)}`);
    }
  });
});

// --- 1b. OTLP

const PROTO_DIR = fileURLToPath(new URL('../../proto/', import.meta.url));
const proto = new protobuf.Root();
proto.resolvePath = (_origin, target) => PROTO_DIR + target;
proto.loadSync(['opentelemetry/proto/collector/trace/v1/trace_service.proto', 'google/rpc/status.proto']);
const ExportRequest = proto.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
const ExportResponse = proto.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse');
const Status = proto.lookupType('google.rpc.Status');

/** A good OTLP/JSON export: a server span and a client span under it, of service fuzz-otlp. */
function otlpTemplate(k: number): Record<string, unknown> {
  const ns = (ms: number): string => String(BigInt(now - 5000 + ms) * 1_000_000n);
  const attr = (key: string, value: string | number) => ({ key, value: typeof value === 'number' ? { intValue: value } : { stringValue: value } });
  const traceId = `e${(k % 1000).toString(16).padStart(31, '0')}`;
  return {
    resourceSpans: [
      {
        resource: { attributes: [attr('service.name', 'fuzz-otlp')] },
        scopeSpans: [
          {
            scope: { name: 'fuzz' },
            spans: [
              { traceId, spanId: '00000000000000a1', name: 'GET /o', kind: 2, startTimeUnixNano: ns(0), endTimeUnixNano: ns(10), attributes: [attr('http.request.method', 'GET'), attr('http.route', '/o'), attr('http.response.status_code', 200)], status: { code: 0 } },
              { traceId, spanId: '00000000000000a2', parentSpanId: '00000000000000a1', name: 'SELECT', kind: 3, startTimeUnixNano: ns(2), endTimeUnixNano: ns(8), attributes: [attr('db.system', 'postgresql'), attr('server.address', 'db'), attr('server.port', 5432)] },
            ],
          },
        ],
      },
    ],
  };
}

const otlpCase = fc.record({
  json: fc.boolean(),
  ingest: ingestCase,
  // a protobuf body: the template's encoding, broken byte by byte, or random bytes
  protobuf: fc.oneof(fc.record({ template: fc.nat(), edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }), cut: fc.option(fc.nat()) }), bytes),
});

test('OTLP: every body gets its answer (200 or a 4xx, a protobuf or JSON Status), in time, and the collector stays up', { skip: skip('otlp'), timeout: TIMEOUT }, async () => {
  const stats = new Stats('otlp');
  await fuzz('otlp', otlpCase, stats, async (c) => {
    let { bytes, headers } = wire(c.ingest, true);
    if (!c.json) {
      if (c.protobuf instanceof Uint8Array) bytes = Buffer.from(c.protobuf);
      else {
        const t = otlpTemplate(c.protobuf.template) as any;
        for (const s of t.resourceSpans[0].scopeSpans[0].spans) {
          s.traceId = Buffer.from(s.traceId, 'hex');
          s.spanId = Buffer.from(s.spanId, 'hex');
          if (s.parentSpanId) s.parentSpanId = Buffer.from(s.parentSpanId, 'hex');
        }
        bytes = Buffer.from(ExportRequest.encode(ExportRequest.fromObject(t)).finish());
        for (const [pos, byte] of c.protobuf.edits) bytes[pos % bytes.length] = byte;
        if (c.protobuf.cut !== null) bytes = bytes.subarray(0, c.protobuf.cut % (bytes.length + 1));
      }
      if (c.ingest.gzip !== 'none') bytes = zlib.gzipSync(bytes);
      headers = { ...headers, 'content-type': c.ingest.contentType === 'application/json' ? 'application/x-protobuf' : (c.ingest.contentType ?? 'application/x-protobuf') };
    }
    const r = await request(fuzzed.url, c.ingest.method, '/v1/traces', headers, c.ingest.method === 'GET' ? undefined : bytes);
    stats.saw(r, `${c.ingest.method} /v1/traces ${bytes.length} bytes (${c.json ? c.ingest.body.kind : 'protobuf'})`, bytes.length);
    assert.ok(r.status < 500, `a ${r.status}: ${r.raw.toString().slice(0, 300)}`);
    assert.ok((r.status >= 200 && r.status < 300) || r.status >= 400, `status ${r.status}`);
    if (c.ingest.method !== 'POST') return assert.equal(apiProblem(r), undefined);
    // OTLP/HTTP: the answer in the request's encoding, an ExportTraceServiceResponse or a google.rpc.Status
    if (r.type.startsWith('application/json')) {
      const answer = JSON.parse(r.raw.toString());
      if (r.status >= 400) assert.ok(typeof answer.message === 'string' && answer.code > 0, r.raw.toString().slice(0, 300));
    } else {
      assert.match(r.type, /^application\/x-protobuf/);
      if (r.status >= 400) assert.ok((Status.decode(r.raw) as unknown as { message: string }).message, `a ${r.status} without a message`);
      else ExportResponse.decode(r.raw);
    }
  });
});

// --- 2. the query API

const PATHS = ['/api/services', '/api/endpoints', '/api/views', '/api/timeseries', '/api/traces', '/api/traces/:id', '/api/traces/:id/holders', '/api/servicemap', '/api/servicemap/calls', '/api/critical-path', '/api/context-loss', '/api/loop', '/api/alerts', '/api/rules', '/metrics', '/api/health'];
const NAMES = ['from', 'to', 'step', 'q', 'metric', 'limit', 'sort', 'by', 'service', 'endpoint', 'node', 'caller', 'group', 'function', 'location'];

const number = fc.oneof(
  fc.integer().map(String),
  fc.bigInt({ min: 0n, max: 10n ** 30n }).map(String),
  fc.double().map(String),
  fc.integer({ min: now - 100 * DAY, max: now + 2 * DAY }).map(String),
  fc.constantFrom('-1', '-0', '0', '1', '1e3', '1E3', '1e21', '0x10', '1.5', '.5', '+5', ' 5', '5 ', '٣', 'Infinity', 'NaN', '00000000000000001', '9999999999999999', '99999999999999999', '9007199254740993', '999', '1000', '1001', '86400000', '0.95', '1.0', '0.0000001'),
);
const text = fc.oneof(
  fc.constantFrom('fuzz-good', 'fuzz-late', 'fuzz-garbage', 'fuzz-otlp', 'GET /a', 'GET /b', 'POST /c/:id', 'slowest', 'recent', 'worst', 'duration', 'response', 'culprit', 'work', '/app/x.js:1:2', 'service:fuzz-good', 'service:fuzz-late', 'db:127.0.0.1:5432/shop', 'http:x', '', 'true', '[]', 'null', 'undefined', '__proto__'),
  fc.constantFrom(...SERIES_METRICS),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ maxLength: 4000 }),
);
// how a parameter is written: percent-encoded, as it is (bytes the URL may not have included), with no '='
const param = fc.record({
  name: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...NAMES) }, { weight: 1, arbitrary: fc.constantFrom('__proto__', 'constructor', 'hasOwnProperty', 'service[]', 'a[b]', 'FROM', 'from ', '') }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) }),
  value: fc.oneof(number, text),
  how: fc.constantFrom('encoded', 'encoded', 'encoded', 'raw', 'bare', 'garbage'),
});
// ranges of every size: 90 days at a 1 s step among them
const range = fc.record({ days: fc.constantFrom(0.001, 0.01, 1, 7, 30, 90, 365, 20_000), end: fc.integer({ min: -2, max: 2 }), step: fc.constantFrom(undefined, '1000', '60000', '5184000', '86400000') });
const traceId = fc.oneof(
  fc.constantFrom(...GOOD_TRACE_IDS),
  fc.stringMatching(/^[0-9a-f]{16,64}$/),
  fc.constantFrom('%', '%zz', '%E0%A4%A', '%ED%A0%80', '..', '.', '%2F', '%00', 'A'.repeat(32), '0'.repeat(65), 'f'.repeat(10_000), '%25', 'x y'),
  fc.string({ unit: 'binary', maxLength: 70 }),
);
/** The parameters each path takes, with values that find data: the start of most queries, which the fuzzer then changes. */
const BASE: Record<string, string[]> = {
  '/api/endpoints': ['service'],
  '/api/views': ['endpoint'],
  '/api/timeseries': ['service', 'metric', 'endpoint', 'q', 'step'],
  '/api/traces': ['service', 'endpoint', 'sort', 'by', 'limit'],
  '/api/traces/:id/holders': ['limit'],
  '/api/servicemap/calls': ['node', 'caller', 'limit'],
  '/api/critical-path': ['service', 'endpoint'],
  '/api/context-loss': ['service'],
  '/api/loop': ['service', 'sort', 'limit', 'group', 'function', 'location'],
};
const SERVICES = ['fuzz-good', 'fuzz-late', 'fuzz-garbage', 'fuzz-otlp'];
const goodValues = fc.record({
  service: fc.constantFrom(...SERVICES),
  endpoint: fc.constantFrom('GET /a', 'GET /b', 'POST /c/:id', 'GET /o'),
  metric: fc.constantFrom(...SERIES_METRICS),
  q: fc.constantFrom('0.5', '0.95', '0.99', '1'),
  step: fc.constantFrom('1000', '60000', '3600000'),
  sort: fc.constantFrom('slowest', 'recent', 'worst'),
  by: fc.constantFrom('duration', 'response'),
  limit: fc.constantFrom('1', '20', '100', '1000'),
  node: fc.constantFrom('db:127.0.0.1:5432/shop', 'service:fuzz-good', 'service:fuzz-otlp', 'http:127.0.0.1:9', 'db:db:5432'),
  caller: fc.constantFrom(...SERVICES),
  group: fc.constant('culprit'),
  function: fc.constant('work'),
  location: fc.constantFrom('/app/x.js:1:2', ''),
  // which of them are left out
  without: fc.uint8Array({ minLength: 6, maxLength: 6 }),
});

const queryCase = fc.record({
  path: fc.nat(),
  id: traceId,
  range: sometimes(range, 2),
  base: fc.option(goodValues, { nil: undefined, freq: 4 }),
  params: fc.array(param, { maxLength: 6 }),
  good: sometimes(fc.record({ again: fc.boolean(), seed: fc.nat(200) }), 20),
});

/** A text written into the path: only the bytes a request line may have as they are. */
const onLine = (s: string): string => s.replace(/[^\u0021-\u00ff]|[#%?&]/gu, (c) => encode(c));
/** encodeURIComponent, but a lone surrogate (which it refuses) is written as its bytes would be in CESU-8. */
function encode(s: string): string {
  let out = '';
  for (const c of s) {
    const unit = c.charCodeAt(0);
    const lone = c.length === 1 && unit >= 0xd800 && unit <= 0xdfff;
    out += lone ? `%ED%${(0x80 | ((unit >> 6) & 0x3f)).toString(16).toUpperCase()}%${(0x80 | (unit & 0x3f)).toString(16).toUpperCase()}` : encodeURIComponent(c);
  }
  return out;
}

function queryPath(c: typeof queryCase extends fc.Arbitrary<infer Q> ? Q : never): string {
  const template = PATHS[c.path % PATHS.length]!;
  const id = /^[0-9a-f]+$/.test(c.id) ? c.id : c.id.includes('%') ? c.id.replace(/[^\u0021-\u00ff]|[#?]/gu, encode) : encode(c.id);
  const parts: string[] = [];
  if (c.base) {
    const base = c.base as unknown as Record<string, string> & { without: Uint8Array };
    for (const [k, name] of (BASE[template] ?? []).entries()) if ((base.without[k] ?? 0) < 200) parts.push(`${name}=${encode(base[name]!)}`);
  }
  if (c.range) {
    const to = now + c.range.end * 60_000;
    parts.push(`from=${Math.round(to - c.range.days * DAY)}`, `to=${to}`);
    if (c.range.step !== undefined) parts.push(`step=${c.range.step}`);
  }
  for (const p of c.params) {
    if (p.how === 'bare') parts.push(encode(p.name));
    else if (p.how === 'raw') parts.push(`${onLine(p.name)}=${p.value.replace(/[^\u0021-\u00ff]|#/gu, encode)}`);
    else if (p.how === 'garbage') parts.push(`${encode(p.name)}=%${p.value.slice(0, 2).replace(/[^\u0021-\u00ff]|#/gu, encode)}${encode(p.value.slice(2))}`);
    else parts.push(`${encode(p.name)}=${encode(p.value)}`);
  }
  return `${template.replace(':id', id)}${parts.length ? '?' : ''}${parts.join('&')}`;
}

test('queries: every path and parameter gets a 2xx or a 4xx with {error}, in time, and the collector stays up', { skip: skip('query'), timeout: TIMEOUT }, async () => {
  const stats = new Stats('query');
  await fuzz('query', queryCase, stats, async (c) => {
    if (c.good) await sendLate(c.good);
    const path = queryPath(c);
    const r = await request(fuzzed.url, 'GET', path, {});
    stats.saw(r, `GET ${path.slice(0, 200)}`);
    const problem = apiProblem(r, path.startsWith('/metrics'));
    assert.equal(problem, undefined, `GET ${path.slice(0, 500)}: ${problem}`);
  });
});

// --- 3. nothing stored damaged

test('after the garbage: the good batches answer exactly what they answered before it, and what a collector that got only them answers', { timeout: 120_000 }, async () => {
  same(await answers(fuzzed, 'fuzz-good'), firstAnswers, 'fuzz-good, before and after the garbage');
  same(await answers(fuzzed, 'fuzz-good'), await answers(reference, 'fuzz-good'), 'fuzz-good, with and without the garbage');
  if (lateSent.size === 0) await sendLate({ again: false, seed: 0 });
  same(await answers(fuzzed, 'fuzz-late'), await answers(reference, 'fuzz-late'), 'fuzz-late, sent between the garbage, with and without it');
  console.log(`fuzz: ${FIRST.length} good batches before the garbage, ${lateSent.size} different ones between it, all as a collector without the garbage has them`);
  assert.deepEqual(logged, [], 'the collector logged an error');
});
