/**
 * Whole traces across services (docs/instrumentation.md, "Whole traces across services"). Each agent decides alone which traces it ships
 * (sampling.ts); a part of a trace that crosses services (it continued a caller's trace, or carried
 * its own on to a callee) and that was not shipped is held here for a few seconds, and shipped
 * after all if the collector asks for its trace: another service kept its own part of that trace
 * (the root found it slow or failed, a callee failed), and the trace would be incomplete without
 * this one. The collector's answer to each batch names the trace ids it wants (transport.ts).
 *
 * Bounded in count and in time: at most MAX_HELD parts, each for HOLD_MS; at most MAX_WANTED
 * wanted trace ids, each for WANT_MS (a part that finishes after its trace was asked for, a
 * callee's slow background work, say, is shipped too).
 */
import type { TraceRecord } from '@loopscope/protocol';

export const HOLD_MS = 5000;
export const MAX_HELD = 5000;
export const WANT_MS = 10_000;
export const MAX_WANTED = 10_000;

interface Held {
  traceId: string;
  spanId: string;
  at: number;
  build: () => TraceRecord;
}

export class HeldTraces {
  /** oldest first; `first` is the oldest still held (older ones were pushed out) */
  private held: Held[] = [];
  private first = 0;
  /** trace id → until when it is wanted */
  private readonly wanted = new Map<string, number>();
  /** parts pushed out before they could be asked for (the buffer was full) */
  overflow = 0;

  /** A part of a trace that crosses services, finished at `now` (ms, Date.now()). */
  hold(traceId: string, spanId: string, build: () => TraceRecord, now: number): void {
    if (this.held.length - this.first >= MAX_HELD) {
      this.first++;
      this.overflow++;
    }
    this.held.push({ traceId, spanId, at: now, build });
  }

  /** The collector wants these traces whole. */
  want(traceIds: readonly string[], now: number): void {
    for (const id of traceIds) {
      if (this.wanted.size >= MAX_WANTED && !this.wanted.has(id)) this.wanted.delete(this.wanted.keys().next().value!);
      this.wanted.set(id, now + WANT_MS);
    }
  }

  /**
   * At each batch: the held parts of wanted traces, built, to ship with the `shipped` records (which
   * are forgotten here, as is what is older than HOLD_MS), at most `room` of them.
   */
  take(shipped: readonly TraceRecord[], now: number, room: number): TraceRecord[] {
    for (const [id, until] of this.wanted) if (until < now) this.wanted.delete(id);
    const sent = new Set<string>();
    for (const r of shipped) if (r.spanId !== undefined) sent.add(r.spanId);
    const out: TraceRecord[] = [];
    const kept: Held[] = [];
    for (let i = this.first; i < this.held.length; i++) {
      const h = this.held[i]!;
      if (now - h.at > HOLD_MS || sent.has(h.spanId)) continue;
      if (out.length < room && this.wanted.has(h.traceId)) out.push(h.build());
      else kept.push(h);
    }
    this.held = kept;
    this.first = 0;
    return out;
  }

  /** How many parts are held now. */
  get size(): number {
    return this.held.length - this.first;
  }
}
