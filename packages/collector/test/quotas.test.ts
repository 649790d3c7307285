/**
 * Limits under abuse (docs/collector.md#limits): a real collector with small limits, fed by hand
 * batches that go over each one, read back through the query API and /metrics; query ranges and
 * steps that would ask for too much; and a query cut off at its time limit on ClickHouse.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { EndpointSummary, LoopSummary, ServiceSummary, TraceSummary } from '@loopscope/protocol';
import { ClickHouseError, parseClickHouseUrl } from '../src/index.js';
import { ClickHouseClient } from '../src/storage/clickhouse/client.js';
import { startClickHouse, type ClickHouse } from './clickhouse-tools.js';
import { batch, get, interval, loopSample, random, randomTx, sendBatch, startTestCollector, trace, type TestCollector } from './helpers.js';

const rand = random(26);
const NOW = Date.now();
const OTHER = 'OTHER (endpoint limit reached)';
const tx = (): ReturnType<typeof randomTx> => randomTx(rand, 0);

/** `loopscope_over_limit_total{service,limit}` in the collector's /metrics, 0 when absent. */
async function overLimit(collector: TestCollector, service: string, limit: string): Promise<number> {
  const text = await (await fetch(`${collector.url}/metrics`)).text();
  const m = new RegExp(`^loopscope_over_limit_total\\{service="${service.replace(/[()]/g, '\\$&')}",limit="${limit}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

describe('what one sender may send', () => {
  let collector: TestCollector;
  before(async () => {
    collector = await startTestCollector({ quotas: { services: 3, endpoints: 5, instances: 2, tracesPerMinute: 10, longTasksPerMinute: 4 } });
  });
  after(() => collector.close());

  it('endpoints past the limit are folded into one, with their traces, and counted', async () => {
    const endpoints = Array.from({ length: 8 }, (_, i) => `GET /e${i}`);
    const b = batch('many-endpoints', 'i-1', endpoints.map((e) => interval(e, NOW - 5000, [tx(), tx()])), [trace('many-endpoints', 'GET /e7', NOW - 5000, tx())]);
    assert.equal((await sendBatch(collector.url, b)).status, 200);
    const rows = (await get(`${collector.url}/api/endpoints?service=many-endpoints`)).body as EndpointSummary[];
    assert.deepEqual(rows.map((r) => [r.endpoint, r.count]).sort(), [...endpoints.slice(0, 5).map((e) => [e, 2]), [OTHER, 6]].sort());
    const traces = (await get(`${collector.url}/api/traces?service=many-endpoints`)).body as TraceSummary[];
    assert.deepEqual(traces.map((t) => t.endpoint), [OTHER]);
    assert.equal(await overLimit(collector, 'many-endpoints', 'endpoints'), 4, 'three intervals and one trace');
    // the first five stay theirs: sent again, they are not folded
    assert.equal((await sendBatch(collector.url, batch('many-endpoints', 'i-1', [interval('GET /e0', NOW - 4000, [tx()])]))).status, 200);
    const again = (await get(`${collector.url}/api/endpoints?service=many-endpoints`)).body as EndpointSummary[];
    assert.equal(again.find((r) => r.endpoint === 'GET /e0')?.count, 3);
  });

  it('instances past the limit are folded into one, and counted', async () => {
    for (const instance of ['a', 'b', 'c', 'd']) assert.equal((await sendBatch(collector.url, batch('many-instances', instance, [interval('GET /x', NOW - 5000, [tx()])]))).status, 200);
    const service = ((await get(`${collector.url}/api/services`)).body as ServiceSummary[]).find((s) => s.service === 'many-instances')!;
    assert.equal(service.instances, 3, 'a, b and OTHER');
    assert.equal(((await get(`${collector.url}/api/endpoints?service=many-instances`)).body as EndpointSummary[])[0]!.count, 4, 'every request still counted');
    assert.equal(await overLimit(collector, 'many-instances', 'instances'), 2);
  });

  it('traces and long tasks past a minute\'s are left out, and counted', async () => {
    const traces = Array.from({ length: 15 }, () => trace('flood', 'GET /flood', NOW - 5000, tx()));
    const longTasks = Array.from({ length: 7 }, (_, i) => ({ at: NOW - 5000 + i, ms: 60, function: `block${i}`, blocked: [] }));
    const b = { ...batch('flood', 'i-1', [interval('GET /flood', NOW - 5000, [tx()])], traces), loop: loopSample(NOW - 5000, { longTasks }) };
    assert.equal((await sendBatch(collector.url, b)).status, 200);
    const stored = (await get(`${collector.url}/api/traces?service=flood&limit=100`)).body as TraceSummary[];
    assert.equal(stored.length, 10);
    const loop = (await get(`${collector.url}/api/loop?service=flood&from=${NOW - 60_000}`)).body as LoopSummary;
    assert.equal(loop.longTaskCount, 4);
    assert.equal(await overLimit(collector, 'flood', 'tracesPerMinute'), 5);
    assert.equal(await overLimit(collector, 'flood', 'longTasksPerMinute'), 3);
  });

  it('a service past the service limit is refused whole, saying so, and counted', async () => {
    const answer = await sendBatch(collector.url, batch('one-too-many', 'i-1', [interval('GET /x', NOW - 5000, [tx()])]));
    assert.equal(answer.status, 403);
    assert.match(answer.body.error, /^the collector takes at most 3 services active within an hour, and "one-too-many" is not one of them: the batch is not stored \(raise it with --limit services=N\)$/);
    const services = ((await get(`${collector.url}/api/services`)).body as ServiceSummary[]).map((s) => s.service).sort();
    assert.deepEqual(services, ['flood', 'many-endpoints', 'many-instances']);
    assert.equal(await overLimit(collector, 'OTHER (service limit reached)', 'services'), 1);
    const health = (await get(`${collector.url}/api/health`)).body as { limits: { services: number; over: Record<string, Record<string, number>> } };
    assert.equal(health.limits.services, 3);
    assert.deepEqual(health.limits.over['flood'], { tracesPerMinute: 5, longTasksPerMinute: 3 });
  });

  it('a 90-day query at 1-second steps is refused, and at its own default step answered', async () => {
    const from = NOW - 90 * 86_400_000;
    const refused = await get(`${collector.url}/api/timeseries?service=flood&metric=response&step=1000&from=${from}&to=${NOW}`);
    assert.equal(refused.status, 400);
    assert.match(refused.body.error, /gives 7776001 points, more than 1500; ask for a step of at least \d+ ms or a shorter range/);
    const coarse = await get(`${collector.url}/api/timeseries?service=flood&metric=response&from=${from}&to=${NOW}`);
    assert.equal(coarse.status, 200);
    assert.ok(coarse.body.points.length <= 1500, `${coarse.body.points.length} points`);
    assert.equal((await get(`${collector.url}/api/endpoints?service=flood&from=${from}&to=${NOW}`)).status, 200);
  });
});

describe('a query past its time limit, on ClickHouse', () => {
  let clickhouse: ClickHouse;
  before(async () => {
    clickhouse = await startClickHouse();
  });
  after(() => clickhouse?.stop());

  it('is stopped by ClickHouse at its max_execution_time: a 503 that says so', async () => {
    const target = parseClickHouseUrl(clickhouse.database());
    const client = new ClickHouseClient({ ...target, database: 'system' }, 30_000, 1000);
    const started = Date.now();
    const err = await client.query('SELECT count() AS n FROM system.numbers WHERE sipHash64(number) = 0').then(
      () => assert.fail('a query over endless numbers ended'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ClickHouseError, String(err));
    assert.equal(err.statusCode, 503);
    assert.match(err.message, /the query was cut off at its time limit \(--query-timeout\); ask for a shorter range$/);
    assert.ok(Date.now() - started < 20_000, 'stopped, not run to its end');
  });

  it('is cut off by the collector with a 503 that says so; the health check still answers', async () => {
    const collector = await startTestCollector({ storageUrl: clickhouse.database(), queryTimeoutMs: 1 });
    try {
      const res = await fetch(`${collector.url}/api/services`);
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '5');
      assert.match(((await res.json()) as { error: string }).error, /^the query took longer than 1 ms and was cut off \(--query-timeout\); ask for a shorter range$/);
      assert.equal((await fetch(`${collector.url}/api/health`)).status, 200, 'the health check is not a query of the data');
    } finally {
      await collector.close();
    }
  });
});
