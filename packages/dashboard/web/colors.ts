/**
 * One colour per quantity, the same in every chart, bar and legend (after the diagrams of Amy Boyle's
 * talk "Monitoring Asynchronous Applications").
 */
export const COLORS = {
  response: '#b22222',
  duration: '#1f2f8f',
  cpu: '#2e8b3a',
  external: '#7d8590',
  blocking: '#e0b000',
  throughput: '#2f6fdf',
  errors: '#d0312d',
  http: '#5b8dd6',
  db: '#8e6cc9',
  cache: '#2aa198',
  queue: '#d9822b',
  fs: '#a0522d',
  dns: '#6b8e23',
  other: '#7d8590',
} as const;
