/**
 * Synthetic agent batches for the collector's benchmarks (ingest, soak): a seeded random source and
 * an interval's JSON as an agent writes it, with plausible skewed numbers.
 */
import { METRICS, addValue, newSketch, roundMs, toWire } from '@loopscope/protocol';

/** A deterministic random source (Park–Miller), so that a run sends the same batches again. */
export function seeded(seed: number): () => number {
  return () => {
    seed = (seed * 16807) % 2147483647;
    return seed / 2147483647;
  };
}

/** A value of about `scale` ms, skewed to the right as latencies are. */
export const skewedBy =
  (rand: () => number) =>
    (scale: number): number =>
      roundMs(scale * Math.exp(rand() * 4));

/**
 * An interval's JSON after its "start" (`{"start":…,` + json), endpoint, counts and the five
 * sketches of `minCount` to `minCount + spread` transactions, with the count; `byKind` adds the
 * external time by kind.
 */
export function intervalBody(rand: () => number, endpoint: string, minCount: number, spread: number, byKind = false): { json: string; count: number } {
  const skewed = skewedBy(rand);
  const count = minCount + Math.floor(rand() * spread);
  const sketches = METRICS.map(() => newSketch());
  let errors = 0;
  for (let i = 0; i < count; i++) {
    const cpu = skewed(0.1);
    const external = skewed(1);
    const blocking = skewed(0.02);
    const response = roundMs(cpu + external + blocking);
    [response, roundMs(response + skewed(0.05)), cpu, external, blocking].forEach((v, m) => addValue(sketches[m]!, v));
    if (rand() < 0.02) errors++;
  }
  const wire = Object.fromEntries(METRICS.map((m, i) => [m, toWire(sketches[i]!)]));
  const kinds = byKind ? { externalByKind: { db: roundMs(count * 0.6), http: roundMs(count * 1.2) } } : {};
  return { json: JSON.stringify({ ms: 1000, endpoint, count, errors, ...kinds, ...wire }).slice(1), count };
}
