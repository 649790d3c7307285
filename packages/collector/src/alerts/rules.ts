/**
 * The alert rules file (`loopscope up --rules FILE`, docs/alerts.md): YAML, read and checked
 * whole at start. A mistake is an error that names the file's line and what is wrong, and the
 * collector does not start: a rule that silently does nothing is worse than none.
 */
import { readFileSync } from 'node:fs';
import { LIMITS, durationMs, type AlertMetric } from '@loopscope/protocol';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type YAMLMap } from 'yaml';

export const RULE_METRICS: readonly AlertMetric[] = ['response', 'duration', 'cpu', 'external', 'blocking', 'error_rate', 'throughput', 'loop_delay', 'long_tasks'];
export type RuleMetric = AlertMetric;

/** The metrics whose value is a quantile of a distribution (ms). */
const QUANTILE_METRICS: ReadonlySet<RuleMetric> = new Set(['response', 'duration', 'cpu', 'external', 'blocking', 'loop_delay']);
/** The quantiles the collector keeps of the loop's delay (1: the max). */
const LOOP_QUANTILES = [0.5, 0.95, 0.99, 1];

export const DEFAULT_INTERVAL_MS = 15_000;
export const DEFAULT_WINDOW_MS = 60_000;
export const DEFAULT_HYSTERESIS = 0.1;

export interface Rule {
  name: string;
  service: string;
  endpoint?: string;
  metric: RuleMetric;
  /** for the metrics that are distributions */
  quantile?: number;
  /** fires when the value is above (or below) the threshold */
  direction: 'above' | 'below';
  threshold: number;
  /** how long the condition must hold before the alert fires (ms; 0: at once) */
  forMs: number;
  /** the range each evaluation looks back over (ms) */
  windowMs: number;
  /** a firing alert resolves only once the value is this share of the threshold past it */
  hysteresis: number;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** the line of the rules file it is on */
  line: number;
}

export type Receiver = { kind: 'alertmanager'; url: string } | { kind: 'webhook'; url: string; secret?: string; headers: Record<string, string> };

export interface RulesFile {
  /** how often rules are evaluated (ms) */
  intervalMs: number;
  rules: Rule[];
  receivers: Receiver[];
}

export class RulesError extends Error {}

/** Prometheus's label names (Alertmanager's too). */
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Reads and checks a rules file; throws RulesError naming the line of the first mistake. */
export function loadRules(file: string): RulesFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new RulesError(`cannot read the rules file ${file}: ${(err as Error).message}`);
  }
  return parseRules(text, file);
}

export function parseRules(text: string, file = 'rules'): RulesFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  const lineOf = (node: Node | null | undefined): number => (node?.range ? lines.linePos(node.range[0]).line : 1);
  const fail = (node: Node | null | undefined, message: string): never => {
    throw new RulesError(`${file}:${lineOf(node)}: ${message}`);
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new RulesError(`${file}:${e.linePos?.[0].line ?? 1}: not valid YAML: ${e.message.split('\n')[0]}`);
  }
  const root = doc.contents;
  if (!isMap(root)) return fail(root, 'the file must be a map with `rules:` (and `receivers:`, `interval:`)');
  allowOnly(root, ['interval', 'rules', 'receivers'], fail);

  const scalar = (map: YAMLMap, key: string): { value: unknown; node: Node } | undefined => {
    const node = map.get(key, true) as Node | undefined;
    if (node === undefined || node === null) return undefined;
    if (!isScalar(node)) return fail(node, `\`${key}\` must be a single value`);
    return { value: node.value, node };
  };
  const text_ = (map: YAMLMap, key: string, required: boolean, max = 512): string | undefined => {
    const s = scalar(map, key);
    if (s === undefined) return required ? fail(map, `\`${key}\` is required`) : undefined;
    if (typeof s.value !== 'string' && typeof s.value !== 'number') return fail(s.node, `\`${key}\` must be text`);
    const v = String(s.value);
    if (v.length === 0 || v.length > max) return fail(s.node, `\`${key}\` must be 1 to ${max} characters`);
    return v;
  };
  const duration = (map: YAMLMap, key: string, fallback: number, zero = false): number => {
    const s = scalar(map, key);
    if (s === undefined) return fallback;
    if (zero && (s.value === 0 || s.value === '0')) return 0;
    const ms = typeof s.value === 'string' ? durationMs(s.value) : undefined;
    return ms ?? fail(s.node, `\`${key}\` must be a duration such as 30s, 5m or 1h, not ${JSON.stringify(s.value)}`);
  };
  const number = (map: YAMLMap, key: string): { value: number; node: Node } | undefined => {
    const s = scalar(map, key);
    if (s === undefined) return undefined;
    if (typeof s.value !== 'number' || !Number.isFinite(s.value)) return fail(s.node, `\`${key}\` must be a number, not ${JSON.stringify(s.value)}`);
    return { value: s.value, node: s.node };
  };
  const stringMap = (map: YAMLMap, key: string, names: RegExp | undefined): Record<string, string> => {
    const node = map.get(key, true) as Node | undefined;
    if (node === undefined || node === null) return {};
    if (!isMap(node)) return fail(node, `\`${key}\` must be a map of names to text`);
    const out: Record<string, string> = {};
    for (const pair of node.items) {
      const k = isScalar(pair.key) ? String(pair.key.value) : '';
      if (names !== undefined && !names.test(k)) fail(pair.key as Node, `\`${key}\`: ${JSON.stringify(k)} is not a valid name (letters, digits and _, not starting with a digit)`);
      if (!isScalar(pair.value) || pair.value.value === null || typeof pair.value.value === 'object') fail((pair.value ?? pair.key) as Node, `\`${key}.${k}\` must be text`);
      out[k] = String((pair.value as { value: unknown }).value);
    }
    return out;
  };

  const intervalMs = duration(root, 'interval', DEFAULT_INTERVAL_MS);
  if (intervalMs < 1000) fail(root.get('interval', true) as Node, '`interval` must be at least 1s');

  const rulesNode = root.get('rules', true) as Node | undefined;
  if (rulesNode === undefined || rulesNode === null) return fail(root, '`rules:` is missing: a list of rules');
  if (!isSeq(rulesNode)) return fail(rulesNode, '`rules` must be a list');
  const names = new Set<string>();
  const rules = rulesNode.items.map((item): Rule => {
    if (!isMap(item)) return fail(item as Node, 'each rule must be a map (name, service, metric, above or below, ...)');
    allowOnly(item, ['name', 'service', 'endpoint', 'metric', 'quantile', 'above', 'below', 'for', 'window', 'hysteresis', 'labels', 'annotations'], fail);
    const name = text_(item, 'name', true, 128)!;
    if (names.has(name)) fail(item.get('name', true) as Node, `a second rule named ${JSON.stringify(name)}: names must be unique`);
    names.add(name);
    const service = text_(item, 'service', true, LIMITS.service)!;
    const endpoint = text_(item, 'endpoint', false, LIMITS.endpoint);
    const metricText = text_(item, 'metric', true, 32)!;
    const metric = RULE_METRICS.find((m) => m === metricText) ?? fail(item.get('metric', true) as Node, `unknown metric ${JSON.stringify(metricText)}: one of ${RULE_METRICS.join(', ')}`);
    if (endpoint !== undefined && (metric === 'loop_delay' || metric === 'long_tasks')) fail(item.get('endpoint', true) as Node, `${metric} is the service's event loop: it has no endpoint`);
    const q = number(item, 'quantile');
    let quantile: number | undefined;
    if (QUANTILE_METRICS.has(metric)) {
      if (q === undefined) fail(item, `${metric} needs a \`quantile\` (0.95 for the p95; 1 for the max)`);
      else if (!(q.value > 0 && q.value <= 1)) fail(q.node, '`quantile` must be above 0 and at most 1');
      else if (metric === 'loop_delay' && !LOOP_QUANTILES.includes(q.value)) fail(q.node, `loop_delay keeps the quantiles ${LOOP_QUANTILES.join(', ')}: use one of them`);
      quantile = q!.value;
    } else if (q !== undefined) fail(q.node, `${metric} is not a distribution: no \`quantile\``);
    const above = number(item, 'above');
    const below = number(item, 'below');
    if ((above === undefined) === (below === undefined)) fail(item, 'a rule needs exactly one of `above` and `below` (its threshold)');
    const { value: threshold, node: thresholdNode } = (above ?? below)!;
    if (threshold < 0) fail(thresholdNode, 'the threshold must not be negative');
    if (metric === 'error_rate' && threshold > 1) fail(thresholdNode, 'error_rate is a share from 0 to 1 (0.05 for 5 %)');
    const h = number(item, 'hysteresis');
    if (h !== undefined && !(h.value >= 0 && h.value < 1)) fail(h.node, '`hysteresis` must be a share from 0 up to (not including) 1');
    const windowMs = duration(item, 'window', DEFAULT_WINDOW_MS);
    return {
      name,
      service,
      ...(endpoint !== undefined ? { endpoint } : {}),
      metric,
      ...(quantile !== undefined ? { quantile } : {}),
      direction: above !== undefined ? 'above' : 'below',
      threshold,
      forMs: duration(item, 'for', 0, true),
      windowMs,
      hysteresis: h?.value ?? DEFAULT_HYSTERESIS,
      labels: stringMap(item, 'labels', LABEL_NAME),
      annotations: stringMap(item, 'annotations', LABEL_NAME),
      line: lineOf(item),
    };
  });

  const receiversNode = root.get('receivers', true) as Node | undefined;
  let receivers: Receiver[] = [];
  if (receiversNode !== undefined && receiversNode !== null) {
    if (!isSeq(receiversNode)) return fail(receiversNode, '`receivers` must be a list');
    receivers = receiversNode.items.map((item): Receiver => {
      if (!isMap(item)) return fail(item as Node, 'each receiver must be a map: `- alertmanager: URL` or `- webhook: URL`');
      allowOnly(item, ['alertmanager', 'webhook', 'secret', 'headers'], fail);
      const am = text_(item, 'alertmanager', false, 2048);
      const hook = text_(item, 'webhook', false, 2048);
      if ((am === undefined) === (hook === undefined)) fail(item, 'a receiver is either `alertmanager: URL` or `webhook: URL`');
      const url = httpUrl((am ?? hook)!, () => fail(item, `${JSON.stringify(am ?? hook)} is not an http:// or https:// URL`));
      if (am !== undefined) {
        if (item.has('secret') || item.has('headers')) fail(item, '`secret` and `headers` are for webhooks');
        return { kind: 'alertmanager', url: url.replace(/\/+$/, '') };
      }
      const secret = text_(item, 'secret', false, 4096);
      return { kind: 'webhook', url, ...(secret !== undefined ? { secret } : {}), headers: stringMap(item, 'headers', /^[A-Za-z0-9-]+$/) };
    });
  }
  return { intervalMs, rules, receivers };
}

function allowOnly(map: YAMLMap, keys: string[], fail: (node: Node | null | undefined, message: string) => never): void {
  for (const pair of map.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : '';
    if (!keys.includes(key)) fail(pair.key as Node, `unknown field ${JSON.stringify(key)}: expected one of ${keys.join(', ')}`);
  }
}

function httpUrl(raw: string, bad: () => never): string {
  try {
    const url = new URL(raw);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url.href;
  } catch {
    // reported below
  }
  return bad();
}
