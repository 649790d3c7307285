import type { Alert } from './api.js';

/** An alert in words, as receivers and the dashboard show it: "p95 response of shop GET /checkout is 412 ms, above 300 ms". */
export function describeAlert(alert: Pick<Alert, 'metric' | 'quantile' | 'service' | 'endpoint' | 'value' | 'threshold' | 'direction' | 'state'>): string {
  const what = alert.quantile === null ? alert.metric : `${alert.quantile === 1 ? 'max' : `p${Math.round(alert.quantile * 1000) / 10}`} ${alert.metric}`;
  const unit = alert.metric === 'error_rate' ? '' : alert.metric === 'throughput' ? '/s' : alert.metric === 'long_tasks' ? '/min' : ' ms';
  const show = (v: number): string => (alert.metric === 'error_rate' ? `${Math.round(v * 10_000) / 100} %` : `${Math.round(v * 100) / 100}${unit}`);
  const where = alert.endpoint === null ? alert.service : `${alert.service} ${alert.endpoint}`;
  const value = alert.value === null ? 'no data' : show(alert.value);
  return `${what} of ${where} is ${value}, ${alert.state === 'resolved' ? 'back from' : alert.direction} ${show(alert.threshold)}`;
}
