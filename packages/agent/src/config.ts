/**
 * Agent configuration: the LOOPSCOPE_* variables of the README's table, and `start(options)`, whose
 * options (the same names in camelCase) win over the variables: a value written in the code is
 * deliberate. A malformed variable is ignored with a warning, never fatal.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_MAX_MESSAGE } from './describe-error.js';
import { setSilent, warn } from './log.js';

export interface AgentConfig {
  service: string;
  /** Collector base URL; `off` ships nothing (onTransactionEnd still works). */
  collector: string;
  token: string | undefined;
  enabled: boolean;
  /** How often aggregates and sampled traces are shipped (ms). */
  flushMs: number;
  /** Share of transactions whose full trace is shipped at random (on top of the slowest per endpoint and the errors). */
  sampleRate: number;
  /** Batches kept while the collector cannot be reached; the oldest are dropped (and counted) beyond it. */
  maxQueue: number;
  longTaskMs: number;
  /** Event-loop health and long tasks, shipped with every batch. */
  loop: boolean;
  /** Sample stacks (V8's profiler, every longTaskMs, 10 ms at the finest) to name the function behind each long task. */
  profiler: boolean;
  /** A transaction whose response has finished but whose pending work has not is closed after this long and flagged `truncated`. */
  maxLingerMs: number;
  /** Segments kept per transaction; the rest are counted in `droppedSegments` (their time still counts). */
  maxSegments: number;
  /** Open transactions kept; beyond it new requests are not traced (counted, never failed). */
  maxOpenTransactions: number;
  /** What is left uninstrumented: libraries by package name (`express`, `router`, `fastify`, `koa`, `@koa/router`), `fs`, `dns`. */
  disabledInstrumentations: readonly string[];
  /** The longest error message kept (characters; at most the wire format's 2048). */
  maxErrorMessage: number;
  /** `silent`: the agent writes nothing to stderr (not even that its data goes nowhere); `warn`: one line per change of state. */
  log: 'warn' | 'silent';
}

export type AgentOptions = Partial<AgentConfig>;

function packageName(): string | undefined {
  try {
    const pkg = JSON.parse(readFileSync(join(process.cwd(), 'package.json'), 'utf8')) as { name?: unknown };
    return typeof pkg.name === 'string' && pkg.name.length > 0 ? pkg.name : undefined;
  } catch {
    return undefined;
  }
}

/** The ingest token in LOOPSCOPE_TOKEN_FILE (kept out of the process's environment and `ps`), its line end left out. */
function tokenFile(file: string | undefined): string | undefined {
  if (file === undefined || file === '') return undefined;
  try {
    const token = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    if (token !== '') return token;
    warn(`LOOPSCOPE_TOKEN_FILE ${file} is empty; sending without a token`);
  } catch (err) {
    warn(`cannot read LOOPSCOPE_TOKEN_FILE ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); sending without a token`);
  }
  return undefined;
}

function positive(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) {
    warn(`ignoring ${name}=${JSON.stringify(raw)}: expected a positive number; using ${fallback}`);
    return fallback;
  }
  return n;
}

function fraction(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0 || n > 1) {
    warn(`ignoring ${name}=${JSON.stringify(raw)}: expected a number from 0 to 1; using ${fallback}`);
    return fallback;
  }
  return n;
}

function list(raw: string | undefined): string[] {
  return (raw ?? '').split(',').map((name) => name.trim()).filter((name) => name.length > 0);
}

function isOff(raw: string | undefined): boolean {
  const v = raw?.trim().toLowerCase();
  return v === 'false' || v === '0' || v === 'no' || v === 'off';
}

function logLevel(raw: string | undefined): AgentConfig['log'] {
  const v = raw?.trim().toLowerCase();
  if (v === undefined || v === '' || v === 'warn') return 'warn';
  if (v === 'silent') return 'silent';
  warn(`ignoring LOOPSCOPE_LOG=${JSON.stringify(raw)}: expected warn or silent; using warn`);
  return 'warn';
}

export function readConfig(options: AgentOptions = {}, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  // first: whether the warnings about the other values are said at all
  const log = options.log ?? logLevel(env.LOOPSCOPE_LOG);
  setSilent(log === 'silent');
  return {
    log,
    service: options.service ?? (env.LOOPSCOPE_SERVICE || env.OTEL_SERVICE_NAME || packageName() || 'unknown-service'),
    collector: options.collector ?? (env.LOOPSCOPE_COLLECTOR || 'http://127.0.0.1:4400'),
    token: options.token ?? (env.LOOPSCOPE_TOKEN || tokenFile(env.LOOPSCOPE_TOKEN_FILE)),
    enabled: options.enabled ?? !isOff(env.LOOPSCOPE_ENABLED),
    flushMs: options.flushMs ?? positive('LOOPSCOPE_FLUSH_MS', env.LOOPSCOPE_FLUSH_MS, 1000),
    sampleRate: options.sampleRate ?? fraction('LOOPSCOPE_SAMPLE_RATE', env.LOOPSCOPE_SAMPLE_RATE, 0.01),
    maxQueue: options.maxQueue ?? Math.round(positive('LOOPSCOPE_MAX_QUEUE', env.LOOPSCOPE_MAX_QUEUE, 120)),
    longTaskMs: options.longTaskMs ?? positive('LOOPSCOPE_LONG_TASK_MS', env.LOOPSCOPE_LONG_TASK_MS, 50),
    loop: options.loop ?? !isOff(env.LOOPSCOPE_LOOP),
    profiler: options.profiler ?? !isOff(env.LOOPSCOPE_PROFILER),
    maxLingerMs: options.maxLingerMs ?? positive('LOOPSCOPE_MAX_LINGER_MS', env.LOOPSCOPE_MAX_LINGER_MS, 30_000),
    maxErrorMessage: options.maxErrorMessage ?? Math.round(positive('LOOPSCOPE_MAX_ERROR_MESSAGE', env.LOOPSCOPE_MAX_ERROR_MESSAGE, DEFAULT_MAX_MESSAGE)),
    maxSegments: options.maxSegments ?? 1000,
    maxOpenTransactions: options.maxOpenTransactions ?? 10_000,
    disabledInstrumentations: options.disabledInstrumentations ?? list(env.LOOPSCOPE_DISABLED_INSTRUMENTATIONS),
  };
}

export { SUPPORTED_NODE, supportedNode } from '@loopscope/protocol';

/** What the agent says, once, when it stays off on a Node.js it does not support. */
export function unsupportedNodeMessage(version: string): string {
  return `loopscope: Node.js ${version} is not supported (it needs 22.22.0 or later on 22, 24.13.0 or later on 24, or 26 and later); the agent stays off and the app runs without it`;
}
