/**
 * What `loopscope proxy` and `loopscope probe` share: an HTTP exchange seen from outside the app's
 * process becomes a transaction record, and is shipped through the agent's own export machinery
 * (aggregation per interval, trace sampling, the bounded background transport) under the sender's
 * name. cpu, external and blocking cannot be seen from outside: they are null (unknown), never 0.
 */
import { randomBytes } from 'node:crypto';
import { LIMITS, redactSecrets, roundMs, type SegmentRecord, type TraceRecord } from '@loopscope/protocol';
import { Exporter, readConfig, type Observation } from 'loopscope/export';

/** One request and its response as they went by, times in ms from when the request was seen. */
export interface Exchange {
  endpoint: string;
  /** when the request was seen, ms since the epoch */
  start: number;
  /** until the last byte of the response was sent (proxy) or received (probe) */
  response: number;
  /** until its first byte (the status line); undefined when no response came */
  firstByte: number | undefined;
  /** the HTTP status; 0 when there was no response */
  status: number;
  /** why it failed (the target was down, a timeout, a wrong status...); undefined if it did not */
  failure: string | undefined;
  requestBytes: number;
  responseBytes: number;
  /** its phases, in order, as waterfall segments (ms from the start) */
  phases: Array<{ name: string; start: number; end: number }>;
}

export type Sender = 'loopscope-proxy' | 'loopscope-probe';

export interface RecorderOptions {
  service: string;
  /** collector base URL, or `off` */
  collector: string;
  sender: Sender;
}

const tracePrefix = randomBytes(8).toString('hex');
let serial = 0;

/** The transaction record of an exchange (the trace the collector keeps and the dashboard draws). */
export function recordOf(service: string, x: Exchange): TraceRecord {
  const segments: SegmentRecord[] = x.phases.map((p, id) => ({
    id,
    parentId: null,
    name: p.name,
    kind: 'http',
    start: roundMs(p.start),
    end: roundMs(Math.max(p.start, p.end)),
    onCriticalPath: true, // one after the other: each decided when the next could start
  }));
  return {
    traceId: tracePrefix + (serial++).toString(16).padStart(16, '0'),
    service,
    endpoint: x.endpoint,
    start: roundMs(x.start),
    status: x.status,
    error: isError(x),
    ...(x.failure !== undefined ? { errorMessage: redactSecrets(x.failure).slice(0, LIMITS.errorMessage) } : {}),
    response: roundMs(x.response),
    duration: roundMs(x.response),
    cpu: null,
    external: null,
    externalByKind: {},
    blocking: null,
    segments,
    criticalPath: segments.map((s) => s.id),
    truncated: false,
    droppedSegments: 0,
    ...(x.firstByte !== undefined ? { firstByte: roundMs(x.firstByte) } : {}),
    requestBytes: x.requestBytes,
    responseBytes: x.responseBytes,
  };
}

/** An error as the agent counts one: a 5xx, or a failure (no response, a wrong status). */
const isError = (x: Exchange): boolean => x.failure !== undefined || x.status >= 500;

export class Recorder {
  readonly service: string;
  private readonly exporter: Exporter | undefined;
  private readonly listeners = new Set<(record: TraceRecord) => void>();

  constructor(options: RecorderOptions) {
    this.service = options.service;
    // token, flush interval, sample rate and queue bound come from the agent's environment variables
    const config = readConfig({ service: options.service, collector: options.collector });
    this.exporter = config.collector === 'off' ? undefined : new Exporter({ ...config, sender: options.sender });
    this.exporter?.start();
  }

  /** Aggregates the exchange (its trace is built only if sampled, or if someone listens). */
  record(x: Exchange): void {
    // seen from outside, the response is all there is: duration is the same, the rest unknown
    const m: Observation = { response: x.response, duration: x.response, cpu: null, external: null, blocking: null, externalByKind: {} };
    let built: TraceRecord | undefined;
    const build = (): TraceRecord => (built ??= recordOf(this.service, x));
    this.exporter?.observe(x.endpoint, isError(x), false, m, build);
    for (const listener of this.listeners) listener(build());
  }

  /** Every exchange's record, in process (tests, embedding). Returns the unsubscriber. */
  onRecord(listener: (record: TraceRecord) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Ships what is aggregated (waiting at most 2 s for the collector), says what could not be shipped, and stops. */
  async close(): Promise<void> {
    if (this.exporter === undefined) return;
    await this.exporter.finish();
    this.exporter.stop();
  }
}
