/**
 * The live charts of a service or of one endpoint: the chosen percentile of response, duration,
 * cpu, external and blocking on one chart (the "95% percentile" chart of Amy Boyle's talk
 * "Monitoring Asynchronous Applications"), throughput, and error rate (errors ÷ requests, point by
 * point). A click on a point picks its moment. The thresholds of the alert rules on this scope
 * (`loopscope up --rules`) are dashed lines across them.
 */
import * as api from '../api.js';
import { timeChart, type Threshold } from '../charts/timeseries.js';
import { COLORS } from '../colors.js';
import { h } from '../dom.js';
import * as fmt from '../format.js';

const LATENCY: api.Metric[] = ['response', 'duration', 'cpu', 'external', 'blocking'];

export interface ScopeCharts {
  element: HTMLElement;
  refresh(window: api.Window, q: number, label: string): Promise<void>;
  destroy(): void;
}

/** `onPick(from, to)`: a point of a chart was clicked; [from, to) is the time it covers. */
export function scopeCharts(service: string, endpoint: string | undefined, onPick: (from: number, to: number) => void): ScopeCharts {
  let step = 1000;
  const pick = (t: number): void => onPick(t, t + step);
  // (duration is mostly response itself: dashed, the response line under it shows)
  const latency = timeChart('Latency', 'ms', LATENCY.map((m) => ({ label: m, color: COLORS[m], ...(m === 'duration' ? { dash: [7, 5] } : {}) })), fmt.ms, pick);
  const throughput = timeChart('Throughput', 'req/s', [{ label: 'throughput', color: COLORS.throughput }], (v) => fmt.rate(v), pick);
  const errors = timeChart('Error rate', '%', [{ label: 'error rate', color: COLORS.errors }], (v) => fmt.percent(v / 100), pick);
  const element = h('div', { class: 'charts' }, latency.element, h('div', { class: 'chart-row' }, throughput.element, errors.element));

  return {
    element,
    async refresh(window, q, label) {
      const ask = (metric: api.SeriesMetric): Promise<api.Series> => api.timeseries({ service, endpoint, metric, q, ...window });
      const [lat, tp, er, rules] = await Promise.all([Promise.all(LATENCY.map(ask)), ask('throughput'), ask('errors'), api.rules()]);
      // the thresholds of the alert rules on what these charts show: this scope, and for latency this percentile
      const mine = rules.filter((r) => r.service === service && r.endpoint === (endpoint ?? null));
      const mark = (r: api.AlertRule, value: number): Threshold => ({ value, label: `${r.name}: ${r.direction} ${r.metric === 'error_rate' ? fmt.percent(r.threshold) : r.metric === 'throughput' ? fmt.rate(r.threshold) : fmt.ms(r.threshold)}${r.state === 'ok' ? '' : ` (${r.state})`}` });
      latency.thresholds(mine.filter((r) => (LATENCY as string[]).includes(r.metric) && r.quantile === q).map((r) => mark(r, r.threshold)));
      throughput.thresholds(mine.filter((r) => r.metric === 'throughput').map((r) => mark(r, r.threshold)));
      errors.thresholds(mine.filter((r) => r.metric === 'error_rate').map((r) => mark(r, r.threshold * 100)));
      step = tp.step;
      const x = tp.points.map(([t]) => t);
      const values = (s: api.Series): Array<number | null> => s.points.map(([, v]) => v);
      latency.element.querySelector('h3')!.textContent = `Latency — ${label}`;
      latency.update(x, lat.map(values));
      throughput.update(x, [values(tp)]);
      const errorRate = tp.points.map(([, requests], i) => {
        const failed = er.points[i]?.[1] ?? null;
        return requests === null || requests === 0 ? null : ((failed ?? 0) / requests) * 100;
      });
      errors.update(x, [errorRate]);
    },
    destroy() {
      latency.destroy();
      throughput.destroy();
      errors.destroy();
    },
  };
}
