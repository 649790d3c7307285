/**
 * The service map (`GET /api/servicemap`, GUIDE §3.5): which service calls which, and which
 * databases, caches, queues and hosts without an agent each one uses. The edges are the agents'
 * counts of their outbound calls per target (every call, not a sample: the `calls` of each batch);
 * a target is known to be a service once a trace shows a part of that service under a call to it.
 */
import { callHost, fromWire, mergeWire, quantile, type ServiceMap, type ServiceMapCallTrace, type ServiceMapEdge, type ServiceMapNode, type WireSketch } from '@loopscope/protocol';
import type { CallTotals, TracePart } from './storage/storage.js';

/** [target, service] for each part of the trace that was called over http by another part. */
export function targetsOf(parts: readonly TracePart[]): Array<[string, string]> {
  const calls = new Map<string, { name: string; kind: string; service: string }>();
  for (const { record } of parts) for (const s of record.segments) if (s.spanId !== undefined) calls.set(s.spanId, { name: s.name, kind: s.kind, service: record.service });
  const out: Array<[string, string]> = [];
  for (const { record } of parts) {
    const call = record.parentSpanId == null ? undefined : calls.get(record.parentSpanId);
    if (call === undefined || call.kind !== 'http' || call.service === record.service) continue;
    const host = callHost(call.name);
    if (host !== '') out.push([host, record.service]);
  }
  return out;
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000;

/** The map's node a call of `kind` to `target` goes to: the service the target is known to be, else `<kind>:<target>`. */
export function nodeOf(kind: string, target: string, targets: ReadonlyMap<string, string>): string {
  const callee = kind === 'http' ? targets.get(target) : undefined;
  return callee !== undefined ? `service:${callee}` : `${kind}:${target}`;
}

/**
 * The parts of one trace that called `node` (a part of one of `callers`, by a segment whose node it
 * is), each with its calls to it; for a service node, the callee's endpoints under them. A call is
 * to a service when the target is known to be it, or when a part of that service is under the call.
 */
export function callsTo(parts: readonly TracePart[], node: string, callers: ReadonlySet<string>, targets: ReadonlyMap<string, string>): ServiceMapCallTrace[] {
  const under = new Map<string, { service: string; endpoint: string }>();
  for (const { record } of parts) if (record.parentSpanId != null) under.set(record.parentSpanId, { service: record.service, endpoint: record.endpoint });
  const out: ServiceMapCallTrace[] = [];
  for (const { record } of parts) {
    if (!callers.has(record.service)) continue;
    let calls = 0;
    let errors = 0;
    let longest = { name: '', ms: -1 };
    const callee = new Set<string>();
    for (const s of record.segments) {
      const target = s.target ?? (s.kind === 'http' ? callHost(s.name) : '');
      const child = s.spanId === undefined ? undefined : under.get(s.spanId);
      const to = child !== undefined && child.service !== record.service ? `service:${child.service}` : target === '' ? '' : nodeOf(s.kind, target, targets);
      if (to !== node) continue;
      calls++;
      if (s.error !== undefined) errors++;
      const ms = round(s.end - s.start);
      if (ms > longest.ms) longest = { name: s.name, ms };
      if (child !== undefined) callee.add(child.endpoint);
    }
    if (calls === 0) continue;
    out.push({ traceId: record.traceId, service: record.service, endpoint: record.endpoint, start: record.start, status: record.status, response: record.response, calls, errors, longest, callee: [...callee].sort() });
  }
  return out;
}

export function buildServiceMap(calls: readonly CallTotals[], targets: ReadonlyMap<string, string>, services: readonly string[]): ServiceMap {
  const nodes = new Map<string, ServiceMapNode>();
  const service = (name: string): string => {
    const id = `service:${name}`;
    if (!nodes.has(id)) nodes.set(id, { id, kind: 'service', name });
    return id;
  };
  for (const s of services) service(s);
  const edges = new Map<string, { edge: Omit<ServiceMapEdge, 'p95'>; duration: WireSketch }>();
  for (const c of calls) {
    const from = service(c.service);
    const to = nodeOf(c.kind, c.target, targets);
    if (to.startsWith('service:')) service(to.slice('service:'.length));
    else if (!nodes.has(to)) nodes.set(to, { id: to, kind: 'external', name: c.target });
    const key = `${from}\n${to}\n${c.kind}`;
    const e = edges.get(key);
    if (e === undefined) edges.set(key, { edge: { from, to, kind: c.kind, count: c.count, errors: c.errors }, duration: { ...c.duration, bins: [...c.duration.bins] } });
    else {
      e.edge.count += c.count;
      e.edge.errors += c.errors;
      mergeWire(e.duration, c.duration);
    }
  }
  return {
    nodes: [...nodes.values()].sort((a, b) => a.id.localeCompare(b.id)),
    edges: [...edges.values()].map(({ edge, duration }) => ({ ...edge, p95: round(quantile(fromWire(duration), 0.95)) })).sort((a, b) => b.count - a.count),
  };
}
