/**
 * The quantile sketch both sides use: a DDSketch (relative accuracy 1 %) from @datadog/sketches-js
 * to add values and read quantiles, its wire form (in which sketches are stored and merged), and the
 * summary the query API returns. Sketches merge exactly, so percentiles over
 * any set of intervals, endpoints or instances come from merged sketches, never from averaged
 * percentiles.
 */
import { DDSketch } from '@datadog/sketches-js';

/** Every quantile read from a sketch is within this fraction of the true value (for values ≥ 1 µs). */
export const RELATIVE_ACCURACY = 0.01;
/** Values below one microsecond (ms units) are counted as zero: they are below what the agent measures. */
const ZERO_BELOW = 0.001;
/** The widest key range a wire sketch may span (values from 1 µs to 10⁹ ms span about 1 400 keys). */
export const MAX_SKETCH_BINS = 4096;

export type Sketch = DDSketch;

/**
 * A sketch on the wire: `n` values, of which `zero` were zero; the rest counted in `bins`, where
 * `bins[i]` holds the values whose key is `k0 + i` in the logarithmic mapping of
 * RELATIVE_ACCURACY. `sum`, `min` and `max` are exact.
 */
export interface WireSketch {
  n: number;
  sum: number;
  min: number;
  max: number;
  zero: number;
  k0: number;
  bins: number[];
}

/** The summary of one metric the query API returns (docs/collector.md). */
export interface Quantiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export function newSketch(): Sketch {
  return new DDSketch({ relativeAccuracy: RELATIVE_ACCURACY });
}

export function addValue(sketch: Sketch, value: number, count = 1): void {
  sketch.accept(value >= ZERO_BELOW ? value : 0, count);
}

export function toWire(sketch: Sketch): WireSketch {
  const store = sketch.store;
  const bins: number[] = [];
  if (store.count > 0) for (let key = store.minKey; key <= store.maxKey; key++) bins.push(store.bins[key - store.offset] ?? 0);
  return {
    n: sketch.count,
    sum: sketch.sum,
    min: sketch.count > 0 ? sketch.min : 0,
    max: sketch.count > 0 ? sketch.max : 0,
    zero: sketch.zeroCount,
    k0: store.count > 0 ? store.minKey : 0,
    bins,
  };
}

/** What is inconsistent in a wire sketch (the schema has checked the types), or undefined: a sketch ingest may store. */
export function wireProblem(wire: WireSketch): string | undefined {
  let binned = 0;
  for (const c of wire.bins) binned += c;
  if (binned + wire.zero !== wire.n) return `bins and zero hold ${binned + wire.zero} values but n is ${wire.n}`;
  if (wire.n > 0 && wire.min > wire.max) return `min ${wire.min} is above max ${wire.max}`;
  return undefined;
}

/** Rebuilds a sketch; throws an Error naming what is inconsistent (wireProblem). */
export function fromWire(wire: WireSketch): Sketch {
  const problem = wireProblem(wire);
  if (problem !== undefined) throw new Error(problem);
  const sketch = newSketch();
  for (let i = 0; i < wire.bins.length; i++) {
    const c = wire.bins[i]!;
    if (c > 0) sketch.store.add(wire.k0 + i, c);
  }
  sketch.zeroCount = wire.zero;
  sketch.count = wire.n;
  sketch.sum = wire.sum;
  if (wire.n > 0) {
    sketch.min = wire.min;
    sketch.max = wire.max;
  }
  return sketch;
}

const MAPPING = newSketch().mapping;

/** The value a key of the wire's bins stands for (within RELATIVE_ACCURACY of every value counted in it). */
export function keyValue(key: number): number {
  return MAPPING.value(key);
}

export function emptyWire(): WireSketch {
  return { n: 0, sum: 0, min: 0, max: 0, zero: 0, k0: 0, bins: [] };
}

/**
 * Adds `from` into `into` (never modifies `from`). Sketches merge in their wire form: the bins are
 * counts per key of one fixed mapping, so adding them key by key is exact. (Not DDSketch's own
 * merge: @datadog/sketches-js 2.1 extends the store's range with `secondKey || key`, so when the
 * merged sketch's highest key is 0 — values just under 1 ms — and the target's is below 0, counts
 * are lost.)
 */
export function mergeWire(into: WireSketch, from: WireSketch): void {
  if (from.n === 0) return;
  if (into.n === 0) {
    Object.assign(into, from, { bins: [...from.bins] });
    return;
  }
  if (from.bins.length > 0) {
    if (into.bins.length === 0) {
      into.k0 = from.k0;
      into.bins = [...from.bins];
    } else {
      const lo = Math.min(into.k0, from.k0);
      const hi = Math.max(into.k0 + into.bins.length, from.k0 + from.bins.length);
      if (lo < into.k0) into.bins = new Array<number>(into.k0 - lo).fill(0).concat(into.bins);
      into.k0 = lo;
      while (into.bins.length < hi - lo) into.bins.push(0);
      const shift = from.k0 - lo;
      for (let i = 0; i < from.bins.length; i++) into.bins[shift + i]! += from.bins[i]!;
    }
  }
  into.n += from.n;
  into.zero += from.zero;
  into.sum += from.sum;
  into.min = Math.min(into.min, from.min);
  into.max = Math.max(into.max, from.max);
}

/** The value at quantile q (0..1), clamped to the exact min and max; 0 for an empty sketch. */
export function quantile(sketch: Sketch, q: number): number {
  if (sketch.count === 0) return 0;
  if (q >= 1) return sketch.max;
  const v = sketch.getValueAtQuantile(q);
  return Math.min(sketch.max, Math.max(sketch.min, v));
}

export function summarize(sketch: Sketch): Quantiles {
  return {
    p50: round(quantile(sketch, 0.5)),
    p95: round(quantile(sketch, 0.95)),
    p99: round(quantile(sketch, 0.99)),
    max: round(sketch.count > 0 ? sketch.max : 0),
    mean: round(sketch.count > 0 ? sketch.sum / sketch.count : 0),
  };
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}
