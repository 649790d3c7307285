/**
 * Stored aggregates as OTLP metrics (docs/opentelemetry.md, "OTLP out"): for each interval of each
 * endpoint, `loopscope.requests` and `loopscope.errors` (delta sums) and one exponential histogram
 * per number (`loopscope.response`, `.duration`, `.cpu`, `.external`, `.blocking`, in ms; absent
 * when unknown), with the endpoint as attribute `loopscope.endpoint`.
 *
 * Why exponential histograms, not summaries: a DDSketch's logarithmic buckets map onto OTLP's
 * exponential ones with a bounded error, and histograms add up across instances and intervals in
 * the backend, where summaries' quantiles cannot. At scale 6 (buckets 1.09 % wide) each sketch key's
 * count goes to the bucket of the value the key stands for: a quantile read from the histogram is
 * within the sketch's 1 % plus half a bucket, 1.6 % in all, of the true value.
 */
import { METRICS, keyValue, type WireInterval, type WireSketch } from '@loopscope/protocol';
import { msToNs } from './spans.js';

export const SCALE = 6;
/** Values below 1 µs are counted as zero by the sketch; the histogram says so. */
const ZERO_THRESHOLD = 0.001;

/** The index of the exponential-histogram bucket (base 2^(2^-SCALE)) holding `v`: bucket i is (base^i, base^(i+1)]. */
export const bucketOf = (v: number): number => Math.ceil(Math.log2(v) * 2 ** SCALE) - 1;

/** An exponential histogram's data point fields from a wire sketch. */
export function histogramOf(sketch: WireSketch): { count: number; sum: number; min: number; max: number; scale: number; zeroCount: number; zeroThreshold: number; positive: { offset: number; bucketCounts: number[] } } {
  const counts = new Map<number, number>();
  for (let i = 0; i < sketch.bins.length; i++) {
    const c = sketch.bins[i]!;
    if (c === 0) continue;
    const b = bucketOf(keyValue(sketch.k0 + i));
    counts.set(b, (counts.get(b) ?? 0) + c);
  }
  const indices = [...counts.keys()];
  const offset = indices.length > 0 ? Math.min(...indices) : 0;
  const bucketCounts = indices.length > 0 ? Array.from({ length: Math.max(...indices) - offset + 1 }, (_, i) => counts.get(offset + i) ?? 0) : [];
  return { count: sketch.n, sum: sketch.sum, min: sketch.min, max: sketch.max, scale: SCALE, zeroCount: sketch.zero, zeroThreshold: ZERO_THRESHOLD, positive: { offset, bucketCounts } };
}

const DELTA = 1;

/** The metrics of a batch's intervals (the shapes protobufjs's ExportMetricsServiceRequest takes). */
export function metricsOf(intervals: WireInterval[]): object[] {
  const out: object[] = [];
  for (const iv of intervals) {
    const point = { attributes: [{ key: 'loopscope.endpoint', value: { stringValue: iv.endpoint } }], startTimeUnixNano: msToNs(iv.start), timeUnixNano: msToNs(iv.start + iv.ms) };
    out.push({ name: 'loopscope.requests', unit: '{request}', sum: { dataPoints: [{ ...point, asInt: iv.count }], aggregationTemporality: DELTA, isMonotonic: true } });
    out.push({ name: 'loopscope.errors', unit: '{request}', sum: { dataPoints: [{ ...point, asInt: iv.errors }], aggregationTemporality: DELTA, isMonotonic: true } });
    for (const m of METRICS) {
      const sketch = iv[m];
      if (sketch === null || sketch.n === 0) continue;
      out.push({ name: `loopscope.${m}`, unit: 'ms', exponentialHistogram: { dataPoints: [{ ...point, ...histogramOf(sketch) }], aggregationTemporality: DELTA } });
    }
  }
  return out;
}
