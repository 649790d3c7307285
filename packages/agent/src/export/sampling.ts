/**
 * Which full traces are shipped: the slowest transaction per endpoint per interval, every error, every
 * aborted request and every transaction that ran a long task (its long task links to it) up to a limit per interval,
 * and a small random sample, also limited. The record of a transaction is
 * built only when one of these wants it.
 */
import type { TraceRecord } from '@loopscope/protocol';
import type { EndpointAggregate } from '@loopscope/protocol';

export const MAX_KEPT_TRACES = 20;
export const MAX_RANDOM_TRACES = 10;

export class TraceSampler {
  private readonly rate: number;
  /** errors and traces something links to */
  private kept: TraceRecord[] = [];
  private random: TraceRecord[] = [];
  /** Error traces not kept because of the limit (reported as dropped traces). */
  skipped = 0;

  constructor(rate: number) {
    this.rate = rate;
  }

  /** `keep`: an error, an aborted request, or a trace something else links to; kept up to MAX_KEPT_TRACES per interval. */
  offer(entry: EndpointAggregate, duration: number, keep: boolean, build: () => TraceRecord): void {
    const slowest = duration > entry.slowestDuration;
    if (slowest) {
      entry.slowestDuration = duration;
      entry.slowest = build();
    }
    if (keep) {
      if (this.kept.length < MAX_KEPT_TRACES) this.kept.push(build());
      else this.skipped++;
    } else if (this.random.length < MAX_RANDOM_TRACES && this.rate > 0 && Math.random() < this.rate) {
      // drawn whether or not it is the slowest so far (a slower one may displace it), and said so:
      // the random ones are an unbiased sample of the endpoint's requests (GET /api/critical-path)
      const record = build();
      record.sampledAtRandom = true;
      this.random.push(record);
    }
  }

  /** The traces of the interval (each once) and a fresh start for the next. */
  take(endpoints: Iterable<EndpointAggregate>): TraceRecord[] {
    const out = new Set<TraceRecord>(this.kept);
    for (const e of endpoints) if (e.slowest !== undefined) out.add(e.slowest);
    for (const r of this.random) out.add(r);
    this.kept = [];
    this.random = [];
    return [...out];
  }
}
