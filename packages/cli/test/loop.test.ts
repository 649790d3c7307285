/**
 * Event-loop health and long-task culprits, end to end: an app under the agent → a real collector
 * → GET /api/loop. Ground truth: a handler that runs a named function burning 120 ms, another that
 * runs it for 110 ms, one that runs another for 110 ms, an interval burning 80 ms outside of any
 * request, and fast requests that arrive during the burn; grouped by culprit, each function's tasks
 * are counted and timed together.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { startCollector, type Collector, type LoopSummary } from '@loopscope/collector';
import type { TransactionRecord } from '@loopscope/protocol';
import { api, fixtures, get, startApp, stopApp, tempDir, until } from './helpers.js';

const appFile = join(fixtures, 'loop-app.mjs');

/** Connections kept open, as from a load balancer: requests on them are read as soon as the loop looks. */
const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 6 });

const loop = (collector: Collector, query: string): Promise<LoopSummary> => api<LoopSummary>(collector.url, `/api/loop?${query}`);

/** 1-based line and column of `text` in the fixture (V8 places a function at its parameter list). */
function positionOf(text: string): string {
  const lines = readFileSync(appFile, 'utf8').split('\n');
  const line = lines.findIndex((l) => l.includes(text));
  return `${line + 1}:${lines[line]!.indexOf(text) + 1}`;
}

test('a 120 ms handler is a long task with its function, file and line, its trace, and the requests it blocked', async () => {
  const collector = await startCollector({ port: 0, dataDir: tempDir(), logger: false });
  const app = await startApp('loop-app.mjs', collector.url, { LOOPSCOPE_SERVICE: 'loop-e2e' });
  try {
    await new Promise((r) => setTimeout(r, 500)); // past startup
    // six open connections (they are not part of the measurement)
    await Promise.all(Array.from({ length: 6 }, () => get(`${app.url}/warm`, keepAlive)));
    const report = get(`${app.url}/report`, keepAlive);
    await new Promise((r) => setTimeout(r, 10));
    // five fast requests arrive while the loop burns: each waits for the rest of the burn
    await Promise.all([report, ...Array.from({ length: 5 }, () => get(`${app.url}/fast`, keepAlive))]);

    const task = await until('the long task of GET /report', async () => (await loop(collector, 'service=loop-e2e')).longTasks.find((t) => t.endpoint === 'GET /report'));
    assert.ok(Math.abs(task.ms - 120) <= 5, `long task of ${task.ms} ms, expected 120 ± 5`);
    assert.equal(task.function, 'crunchNumbers');
    // the profile names a function by where it is defined: the line of `function crunchNumbers`
    assert.ok(task.location?.endsWith(`/loop-app.mjs:${positionOf('(ms) {')}`), `location ${task.location}`);
    assert.ok(task.stack.length > 0 && task.stack[0]!.startsWith('crunchNumbers'), task.stack.join(' < '));

    const report1 = app.records().find((r) => r.endpoint === 'GET /report')!;
    assert.equal(task.traceId, report1.traceId);
    const trace = await api<TransactionRecord>(collector.url, `/api/traces/${task.traceId}`);
    assert.equal(trace.endpoint, 'GET /report', 'the long task links to its trace');

    // the five fast requests were blocked by it, and the task knows
    const fast = app.records().filter((r) => r.endpoint === 'GET /fast');
    assert.equal(fast.length, 5);
    assert.ok(fast.every((r) => r.blocking > 90), `blocking of the fast requests: ${fast.map((r) => r.blocking).join(', ')}`);
    const blocked = task.blocked.find((b) => b.endpoint === 'GET /fast');
    assert.equal(blocked?.count, 5, JSON.stringify(task.blocked));
    // each arrived about 10 ms into the burn and waited for the rest of it; their blocking may also
    // hold a little of the time before the burn (the I/O bound), which the task does not claim
    const truth = fast.reduce((sum, r) => sum + r.blocking, 0);
    assert.ok(blocked!.ms <= truth + 0.01 && blocked!.ms >= 5 * 90, `blocked ${blocked!.ms} ms of their ${truth} ms of blocking`);

    // the loop delay of that interval reflects it: the delay is measured when the loop comes back,
    // and counted in the interval that was running then (on a boundary, the one before or after)
    const second = Math.floor((task.at + task.ms) / 1000) * 1000;
    const burnt = await until('an interval whose loop delay shows the burn', async () => {
      const intervals = await Promise.all([second - 1000, second, second + 1000].map((s) => loop(collector, `service=loop-e2e&from=${s}&to=${s + 1000}`)));
      return intervals.find((i) => i.delay.max >= 100);
    }, 5000).catch(async (error: unknown) => {
      const seconds = [-3, -2, -1, 0, 1, 2, 3].map((k) => second + k * 1000);
      const maxes = await Promise.all(seconds.map(async (s) => (await loop(collector, `service=loop-e2e&from=${s}&to=${s + 1000}`)).delay.max));
      throw new Error(`${String(error)}; task ${task.at}+${task.ms}; delay max per second from ${seconds[0]}: ${maxes.join(', ')}`);
    });
    assert.ok(burnt.delay.p99 >= 100, `loop delay p99 ${burnt.delay.p99} ms`);
    // the loop over time says the same at that second: its delay series, and the loop was busy then
    const from = second - 5000;
    const series = async (metric: string): Promise<Array<[number, number | null]>> =>
      (await api<{ points: Array<[number, number | null]> }>(collector.url, `/api/timeseries?service=loop-e2e&metric=${metric}&q=1&step=1000&from=${from}&to=${second + 3000}`)).points;
    const [delays, busy, gc] = await Promise.all([series('loop_delay'), series('utilization'), series('gc')]);
    const peak = delays.reduce((a, b) => ((b[1] ?? 0) > (a[1] ?? 0) ? b : a));
    assert.ok(peak[1]! >= 100 && Math.abs(peak[0] - second) <= 1000, `loop delay peaks at ${peak[1]} ms at ${peak[0] - second} ms from the burn's end`);
    // (the 120 ms fall in one of the agent's 1 s intervals or two, each counted at its start's
    // second: at least 60 ms of one was busy)
    const burnSeconds = busy.filter(([t]) => t + 2000 > task.at && t < task.at + task.ms).map(([, v]) => v ?? 0);
    assert.ok(Math.max(...burnSeconds) >= 0.06, `utilization of the burn's seconds: ${JSON.stringify(busy)}`);
    assert.ok(busy.every(([, v]) => v === null || (v >= 0 && v <= 1)) && gc.every(([, v]) => v === null || (v >= 0 && v <= 1000)), JSON.stringify({ busy, gc }));

    const all = await loop(collector, 'service=loop-e2e&sort=worst');
    assert.deepEqual(all.longTasks.map((t) => t.ms), [...all.longTasks.map((t) => t.ms)].sort((a, b) => b - a), 'worst first');
    assert.ok(all.utilization > 0 && all.utilization <= 1);
    assert.ok(all.cpu.user > 0 && all.memory.rss > 0);
  } finally {
    keepAlive.destroy();
    await stopApp(app);
    await collector.close();
  }
});

test('an interval burning 80 ms outside of any request is a long task of no transaction, with its function', async () => {
  const collector = await startCollector({ port: 0, dataDir: tempDir(), logger: false });
  // a low threshold: explaining the tasks (rotating the agent's profile) must not be one itself
  const app = await startApp('loop-app.mjs', collector.url, { LOOPSCOPE_SERVICE: 'loop-interval', HOUSEKEEPING: '1', LOOPSCOPE_LONG_TASK_MS: '20' });
  // from the moment it listens: loading the app is work of no transaction too, and may be long
  const since = `service=loop-interval&from=${Date.now()}`;
  try {
    const chore = await until('the housekeeping long task', async () => (await loop(collector, since)).longTasks.find((t) => t.endpoint === null));
    assert.equal(chore.function, 'housekeeping');
    assert.equal(chore.traceId, null);
    assert.ok(Math.abs(chore.ms - 80) <= 5, `housekeeping task of ${chore.ms} ms, expected 80 ± 5`);
    assert.ok(chore.location?.endsWith(`/loop-app.mjs:${positionOf('() {')}`), `location ${chore.location}`);
    // every one of them is named, also those that end near a batch's cut (the profile taken for
    // one batch holds the samples of a task shipped with the next)
    const chores = await until('four housekeeping tasks', async () => {
      const tasks = (await loop(collector, since)).longTasks;
      return tasks.length >= 4 ? tasks : undefined;
    });
    assert.deepEqual(new Set(chores.map((t) => t.function)), new Set(['housekeeping']), JSON.stringify(chores.map((t) => [t.function, t.ms])));
  } finally {
    await stopApp(app);
    await collector.close();
  }
});

test('long tasks grouped by culprit: one function from two endpoints and another, whom they kept waiting and when; one culprit alone', async () => {
  const collector = await startCollector({ port: 0, dataDir: tempDir(), logger: false });
  const app = await startApp('loop-app.mjs', collector.url, { LOOPSCOPE_SERVICE: 'loop-culprits' });
  await new Promise((r) => setTimeout(r, 500)); // past startup
  const from = Date.now();
  try {
    await Promise.all(Array.from({ length: 6 }, () => get(`${app.url}/warm`, keepAlive)));
    // crunchNumbers: three times 120 ms from GET /report, each with two fast requests waiting, and
    // twice 110 ms from GET /export; compress: twice 110 ms from GET /archive (each long enough for
    // the profiler's samples to name it on a loaded machine: a 60 ms task was once left unnamed)
    for (let i = 0; i < 3; i++) {
      const report = get(`${app.url}/report`, keepAlive);
      await new Promise((r) => setTimeout(r, 10));
      await Promise.all([report, get(`${app.url}/fast`, keepAlive), get(`${app.url}/fast`, keepAlive)]);
    }
    for (let i = 0; i < 2; i++) await get(`${app.url}/export`, keepAlive);
    for (let i = 0; i < 2; i++) await get(`${app.url}/archive`, keepAlive);
    const range = (to: number): string => `service=loop-culprits&limit=1000&from=${from}&to=${to}`;
    const { answer, to } = await until('the seven long tasks', async () => {
      const to = Date.now() + 1000;
      const a = await loop(collector, `${range(to)}&group=culprit`);
      return a.longTaskCount >= 7 ? { answer: a, to } : undefined;
    });
    const groups = answer.groups!;
    const tasks = (await loop(collector, range(to))).longTasks;
    // each task is its endpoint's function, or (unknown) where no profiler sample fell in it (the
    // profiler's samples can come late on a loaded machine: at most one of the seven here)
    const ran: Record<string, string> = { 'GET /report': 'crunchNumbers', 'GET /export': 'crunchNumbers', 'GET /archive': 'compress' };
    assert.ok(tasks.every((t) => t.function === ran[t.endpoint!] || t.function === '(unknown)') && tasks.filter((t) => t.function === '(unknown)').length <= 1, JSON.stringify(tasks.map((t) => [t.endpoint, t.function])));
    const g = groups.find((x) => x.function === 'crunchNumbers')!;
    const other = groups.find((x) => x.function === 'compress')!;
    // most time first
    assert.deepEqual(groups.map((x) => x.totalMs), [...groups.map((x) => x.totalMs)].sort((a, b) => b - a));
    const burnt = (fn: string): number => tasks.filter((t) => t.function === fn).reduce((n, t) => n + (t.endpoint === 'GET /report' ? 120 : 110), 0);
    assert.ok(g.location?.endsWith(`/loop-app.mjs:${positionOf('(ms) {')}`), `location ${g.location}`); // (crunchNumbers, the first)
    assert.deepEqual(g.endpoints, ['GET /export', 'GET /report']);
    assert.deepEqual(other.endpoints, ['GET /archive']);
    assert.ok(Math.abs(g.totalMs - burnt('crunchNumbers')) <= 5 * g.count, `held the loop ${g.totalMs} ms in all, expected ${burnt('crunchNumbers')} ± 5 each`);
    assert.ok(Math.abs(g.maxMs - 120) <= 5, `longest ${g.maxMs} ms`);
    assert.ok(Math.abs(other.totalMs - burnt('compress')) <= 5 * other.count, `compress held the loop ${other.totalMs} ms`);
    assert.ok(g.blocked.count >= 6 && g.blocked.ms >= 6 * 90, `kept waiting: ${JSON.stringify(g.blocked)}`);
    // (no request was sent while compress ran: at most one that had just come in waited a moment)
    assert.ok(other.blocked.count <= 1 && other.blocked.ms < 5, `behind compress: ${JSON.stringify(other.blocked)}`);
    // the groups are the list's tasks, counted and timed per culprit
    for (const x of groups) {
      const own = tasks.filter((t) => t.function === x.function && t.location === x.location);
      assert.equal(own.length, x.count, x.function);
      assert.ok(Math.abs(own.reduce((n, t) => n + t.ms, 0) - x.totalMs) < 0.01, x.function);
      const waited = own.flatMap((t) => t.blocked);
      assert.equal(waited.reduce((n, b) => n + b.count, 0), x.blocked.count, `${x.function}: the requests its tasks kept waiting`);
      assert.ok(Math.abs(waited.reduce((n, b) => n + b.ms, 0) - x.blocked.ms) < 0.01, x.function);
      // when: each task's time in its thirtieth of the range
      const line = new Array<number>(30).fill(0);
      for (const t of own) line[Math.floor(((t.at - from) * 30) / (to - from))]! += t.ms;
      assert.deepEqual(x.timeline.map((v) => Math.round(v)), line.map((v) => Math.round(v)), x.function);
    }
    // the truth: two fast requests waited behind each 120 ms task
    const fast = tasks.flatMap((t) => t.blocked.filter((b) => b.endpoint === 'GET /fast'));
    assert.equal(fast.reduce((n, b) => n + b.count, 0), 6, JSON.stringify(tasks.map((t) => [t.endpoint, t.blocked])));
    // one culprit alone: its tasks, and only its
    const one = await loop(collector, `${range(to)}&function=crunchNumbers&location=${encodeURIComponent(g.location!)}`);
    assert.equal(one.longTaskCount, g.count);
    assert.deepEqual(new Set(one.longTasks.map((t) => t.function)), new Set(['crunchNumbers']));
  } finally {
    keepAlive.destroy();
    await stopApp(app);
    await collector.close();
  }
});

test('under mixed fast load with no slice over the threshold, no long task is reported', async () => {
  const collector = await startCollector({ port: 0, dataDir: tempDir(), logger: false });
  const app = await startApp('loop-app.mjs', collector.url, { LOOPSCOPE_SERVICE: 'loop-quiet' });
  try {
    await new Promise((r) => setTimeout(r, 500));
    const from = Date.now();
    const deadline = from + 3000;
    let sent = 0;
    while (Date.now() < deadline) {
      await Promise.all([get(`${app.url}/fast`), get(`${app.url}/small?ms=2`), get(`${app.url}/small?ms=5`)]);
      sent += 3;
    }
    const loadEnd = Date.now();
    await until('the load at the collector', async () => {
      const rows = await api<Array<{ count: number }>>(collector.url, '/api/endpoints?service=loop-quiet');
      return rows.reduce((n, r) => n + r.count, 0) >= sent ? true : undefined;
    });
    // a long task is shipped by the first flush 250 ms after it ended (docs/metrics.md): once a
    // batch sent after that has arrived, any task of the load would be at the collector (50 ms to
    // spare between this process's clock and the app's, which dates the batch)
    await until('a batch sent 250 ms after the load ended', async () => {
      const services = await api<Array<{ service: string; lastSeen: number }>>(collector.url, '/api/services');
      return (services.find((s) => s.service === 'loop-quiet')?.lastSeen ?? 0) >= loadEnd + 250 + 50 ? true : undefined;
    });
    const quiet = await loop(collector, `service=loop-quiet&from=${from}`);
    assert.deepEqual(quiet.longTasks, []);
    assert.ok(quiet.utilization > 0, 'the loop was busy some of the time');
  } finally {
    await stopApp(app);
    await collector.close();
  }
});
