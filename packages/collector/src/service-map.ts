/**
 * The service map (`GET /api/servicemap`, GUIDE §3.5): which service calls which, and which
 * databases, caches, queues and hosts without an agent each one uses. The edges are the agents'
 * counts of their outbound calls per target (every call, not a sample: the `calls` of each batch);
 * a target is known to be a service once a trace shows a part of that service under a call to it.
 */
import { callHost, fromWire, mergeWire, quantile, type ServiceMap, type ServiceMapEdge, type ServiceMapNode, type WireSketch } from '@loopscope/protocol';
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
    const callee = c.kind === 'http' ? targets.get(c.target) : undefined;
    let to: string;
    if (callee !== undefined) to = service(callee);
    else {
      to = `${c.kind}:${c.target}`;
      if (!nodes.has(to)) nodes.set(to, { id: to, kind: 'external', name: c.target });
    }
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
