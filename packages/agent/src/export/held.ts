/**
 * Whole traces across services (docs/instrumentation.md, "Whole traces across services"). Each
 * agent decides alone which traces it ships (sampling.ts); a part of a trace that continued a
 * caller's trace (not a root: it decides for itself) and that was not shipped is held here for a few seconds, and shipped after all if the collector asks for its trace: another
 * service kept its own part of that trace (the root found it slow or failed, a callee failed), and
 * the trace would be incomplete without this one. The collector's answer to each batch names the
 * trace ids it wants (transport.ts).
 *
 * Bounded in count and in time: at most MAX_HELD parts, each for HOLD_MS; at most MAX_WANTED
 * wanted trace ids, each for WANT_MS (a part that finishes after its trace was asked for, a
 * callee's slow background work, say, is shipped too). Every operation costs in proportion to what
 * it touches, never to all that is held: this runs on the app's event loop, where a pass over
 * thousands of held parts once a second would keep a request waiting.
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
  /** shipped, asked for, or too old: no longer held */
  gone: boolean;
}

export class HeldTraces {
  /** oldest first, from `first` on (the ones before it are gone) */
  private held: Held[] = [];
  private first = 0;
  /** the held parts of each trace */
  private readonly byTrace = new Map<string, Held[]>();
  /** trace id → until when it is wanted (insertion order is age order) */
  private readonly wanted = new Map<string, number>();
  /** held parts of wanted traces, to ship with the next batch */
  private ready: Held[] = [];
  /** parts pushed out before they could be asked for (the buffer was full) */
  overflow = 0;

  /** A part of a trace that crosses services, finished at `now` (ms, Date.now()). */
  hold(traceId: string, spanId: string, build: () => TraceRecord, now: number): void {
    const h: Held = { traceId, spanId, at: now, build, gone: false };
    const until = this.wanted.get(traceId);
    if (until !== undefined && until >= now) {
      // asked for already: it goes with the next batch
      h.gone = true;
      this.ready.push(h);
      return;
    }
    if (this.held.length - this.first >= MAX_HELD) {
      const oldest = this.held[this.first++]!;
      if (!oldest.gone) {
        this.forget(oldest);
        this.overflow++;
      }
    }
    this.held.push(h);
    const list = this.byTrace.get(traceId);
    if (list === undefined) this.byTrace.set(traceId, [h]);
    else list.push(h);
  }

  /** The collector wants these traces whole: what is held of them goes with the next batch. */
  want(traceIds: readonly string[], now: number): void {
    for (const id of traceIds) {
      this.wanted.delete(id);
      if (this.wanted.size >= MAX_WANTED) this.wanted.delete(this.wanted.keys().next().value!);
      this.wanted.set(id, now + WANT_MS);
      const list = this.byTrace.get(id);
      if (list === undefined) continue;
      this.byTrace.delete(id);
      for (const h of list) {
        if (h.gone) continue;
        h.gone = true;
        this.ready.push(h);
      }
    }
  }

  /**
   * At each batch: the held parts of wanted traces, built, to ship with the `shipped` records (which
   * are no longer held), at most `room` of them (the rest go with the next batch).
   */
  take(shipped: readonly TraceRecord[], now: number, room: number): TraceRecord[] {
    for (const r of shipped) {
      const list = r.spanId === undefined ? undefined : this.byTrace.get(r.traceId);
      const h = list?.find((x) => x.spanId === r.spanId && !x.gone);
      if (h !== undefined) this.forget(h);
    }
    if (shipped.length > 0 && this.ready.length > 0) {
      // asked for, but shipped by the sampler's own choice in this very batch
      const sent = new Set(shipped.map((r) => r.spanId));
      this.ready = this.ready.filter((h) => !sent.has(h.spanId));
    }
    // the oldest first: they are the first to be too old
    while (this.first < this.held.length && (this.held[this.first]!.gone || now - this.held[this.first]!.at > HOLD_MS)) {
      const h = this.held[this.first++]!;
      if (!h.gone) this.forget(h);
    }
    if (this.first > 1024 && this.first * 2 > this.held.length) {
      this.held = this.held.slice(this.first);
      this.first = 0;
    }
    for (const [id, until] of this.wanted) {
      if (until >= now) break;
      this.wanted.delete(id);
    }
    const out = this.ready.splice(0, room);
    return out.map((h) => h.build());
  }

  /** How many parts are held now. */
  get size(): number {
    let n = 0;
    for (let i = this.first; i < this.held.length; i++) if (!this.held[i]!.gone) n++;
    return n;
  }

  /** No longer held (shipped, or too old, or pushed out). */
  private forget(h: Held): void {
    h.gone = true;
    const list = this.byTrace.get(h.traceId);
    if (list === undefined) return;
    const i = list.indexOf(h);
    if (i !== -1) list.splice(i, 1);
    if (list.length === 0) this.byTrace.delete(h.traceId);
  }
}
