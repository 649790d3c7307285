/** The agent's clock: every time it records is `performance.now()` (ms, monotonic, sub-µs). */
import { performance } from 'node:perf_hooks';

export const now: () => number = performance.now.bind(performance);
