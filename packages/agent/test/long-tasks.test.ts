/**
 * The agent's own work is never a long task of the app's. End to end: an unmodified app under
 * `--import loopscope/register` ships its long tasks to a stand-in collector (a real HTTP server
 * on 127.0.0.1 that keeps the batches), and among them are neither the agent's start (installing
 * its hooks, starting the profiler) nor anything named after the agent's code, while a handler
 * that burns 120 ms still is one, named by its function. And the agent's periodic work (a flush,
 * taking the profile: too quick to be caught in the act end to end) is taken out of the slice it
 * ran in.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';
import type { WireBatch, WireLongTask } from '@loopscope/protocol';
import { LongTasks } from '../src/loop/long-tasks.js';
import { burn, firstLine, get, until } from './helpers.js';

const fixtures = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));
/** The agent's own files, as the profiler names them (file URLs of the compiled agent). */
const agentFiles = new URL('../src/', import.meta.url).href;

/** A stand-in collector: the long tasks of every batch it is sent. */
async function startSink(): Promise<{ url: string; longTasks: WireLongTask[]; batches(): number; close(): void }> {
  const longTasks: WireLongTask[] = [];
  let batches = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const batch = JSON.parse(gunzipSync(Buffer.concat(chunks)).toString('utf8')) as WireBatch;
      batches++;
      longTasks.push(...(batch.loop?.longTasks ?? []));
      res.end('{"ok":true}');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    longTasks,
    batches: () => batches,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

const describe = (t: WireLongTask): string => `${t.ms} ms at ${t.at} of ${t.endpoint ?? 'no transaction'}: ${t.function} (${t.location ?? 'no location'})`;

test("the agent's start and flushes are not long tasks of the app; a 120 ms handler is", async () => {
  const sink = await startSink();
  // frequent flushes: the profile is taken after every one that follows a long task
  const child = spawn(process.execPath, ['--import', 'loopscope/register', 'long-task-app.mjs'], {
    cwd: fixtures,
    env: { ...process.env, LOOPSCOPE_COLLECTOR: sink.url, LOOPSCOPE_SERVICE: 'long-tasks', LOOPSCOPE_FLUSH_MS: '200' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const line = await firstLine(child, 'long-task-app.mjs');
    const [, port, appStart] = /listening (\d+) first line at ([\d.]+)/.exec(line)!;
    const url = `http://127.0.0.1:${port}`;
    // three long tasks, each followed by a flush that takes the profile to name it (a batch
    // shipped after the task, so by a flush that came after it), with fast requests between them
    for (let i = 0; i < 3; i++) {
      await get(`${url}/busy`);
      const shipped = sink.batches();
      for (let k = 0; k < 10; k++) await get(`${url}/`);
      await until(`a flush after long task ${i + 1}`, () => (sink.batches() > shipped ? true : undefined));
    }
    const busy = await until('the three long tasks of GET /busy', () => {
      const found = sink.longTasks.filter((t) => t.endpoint === 'GET /busy');
      return found.length === 3 ? found : undefined;
    });
    // two more flushes after them: whatever the agent did is shipped by now (tasks settle in 250 ms)
    const seen = sink.batches();
    await until('two more batches', () => (sink.batches() >= seen + 2 ? true : undefined));

    for (const task of busy) {
      assert.equal(task.function, 'crunchNumbers', describe(task));
      assert.ok(task.location?.startsWith(`file://${fixtures}long-task-app.mjs:`), describe(task));
    }
    const all = sink.longTasks.map(describe).join('\n');
    const blamed = sink.longTasks.filter((t) => t.location?.startsWith(agentFiles) === true);
    assert.deepEqual(blamed.map(describe), [], `long tasks named after the agent's own code, of all:\n${all}`);
    // before the app's first line ran, only Node and the agent did: nothing there is the app's
    const beforeApp = sink.longTasks.filter((t) => t.at + t.ms <= Number(appStart));
    assert.deepEqual(beforeApp.map(describe), [], `long tasks over before the app's first line (${appStart}), of all:\n${all}`);
  } finally {
    child.kill();
    sink.close();
  }
});

test('a long task before routing and the requests it kept waiting are named by the route template, even when routing comes batches later', async () => {
  const sink = await startSink();
  const child = spawn(process.execPath, ['--import', 'loopscope/register', 'auth-middleware-app.cjs'], {
    cwd: fixtures,
    // the session store answers after 700 ms: three batches go out before the router sees a request
    env: { ...process.env, LOOPSCOPE_COLLECTOR: sink.url, LOOPSCOPE_SERVICE: 'auth-middleware', LOOPSCOPE_FLUSH_MS: '200', AUTH_DELAY_MS: '700' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const [, port] = /listening (\d+)/.exec(await firstLine(child, 'auth-middleware-app.cjs'))!;
    const names = ['alpha', 'beta', 'gamma', 'delta'];
    // four at once, each over a connection of its own: each one's 80 ms in the auth middleware
    // keeps the others waiting before their router has seen them
    for (let round = 0; round < 2; round++) {
      await Promise.all(names.map((name) => get(`http://127.0.0.1:${port}/api/items/${name}`, new http.Agent())));
    }
    // (loading Express is one too, of no transaction)
    const ofRequests = (): WireLongTask[] => sink.longTasks.filter((t) => t.endpoint !== undefined);
    const tasks = await until('the eight long tasks of the auth middleware', () => (ofRequests().length >= 8 ? ofRequests() : undefined), undefined, () =>
      sink.longTasks.map(describe).join('\n'),
    );
    const all = tasks.map((t) => `${describe(t)}; blocked ${JSON.stringify(t.blocked)}`).join('\n');
    assert.deepEqual([...new Set(tasks.map((t) => t.endpoint))], ['GET /api/items/:name'], all);
    // the stacks are the app's and Express's: no frame of the agent's wrappers or hooks
    const stacks = tasks.flatMap((t) => t.stack ?? []);
    assert.ok(stacks.some((f) => f.includes('express')), stacks.join('\n'));
    assert.deepEqual(stacks.filter((f) => /packages\/agent\/dist\/|node_modules\/loopscope\/|-in-the-middle/.test(f)), []);
    const blocked = tasks.flatMap((t) => t.blocked);
    assert.ok(blocked.length > 0, `no request was kept waiting:\n${all}`);
    assert.deepEqual([...new Set(blocked.map((b) => b.endpoint))], ['GET /api/items/:name'], all);
  } finally {
    child.kill();
    sink.close();
  }
});

test("the app's module loading is named after the app's line that required, not a module hook's frame", async () => {
  // the app in a folder of its own, with its own copy of require-in-the-middle and a big data file
  const dir = mkdtempSync(join(tmpdir(), 'loopscope-start-'));
  const modules = fileURLToPath(new URL('../../../../node_modules/', import.meta.url));
  for (const pkg of ['require-in-the-middle', 'module-details-from-path', 'debug', 'ms']) cpSync(join(modules, pkg), join(dir, 'node_modules', pkg), { recursive: true, dereference: true });
  cpSync(join(fixtures, 'module-loading-app.cjs'), join(dir, 'app.cjs'));
  const items = Array.from({ length: 300_000 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'], price: i / 7 }));
  writeFileSync(join(dir, 'catalog.json'), JSON.stringify(items));
  const sink = await startSink();
  const child = spawn(process.execPath, ['--import', new URL('../src/register.js', import.meta.url).href, 'app.cjs'], {
    cwd: dir,
    env: { ...process.env, LOOPSCOPE_COLLECTOR: sink.url, LOOPSCOPE_SERVICE: 'module-loading', LOOPSCOPE_FLUSH_MS: '200' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    await firstLine(child, 'module-loading-app');
    const loading = await until('the long task of loading catalog.json', () => sink.longTasks.find((t) => t.ms >= 100), undefined, () => sink.longTasks.map(describe).join('\n'));
    const all = sink.longTasks.map((t) => `${describe(t)}\n  ${(t.stack ?? []).join('\n  ')}`).join('\n');
    assert.equal(loading.location, `${pathToFileURL(join(dir, 'app.cjs')).href}:1:1`, all);
    const hooks = sink.longTasks.filter((t) => /in-the-middle/.test(t.location ?? '') || t.function === 'patchedRequire');
    assert.deepEqual(hooks.map(describe), [], all);
  } finally {
    child.kill();
    sink.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the agent's own work is taken out of the slice it ran in", async () => {
  const tasks = new LongTasks(50, null);
  // 60 ms of the agent's and 20 of the app's in one slice: not a long task
  let start = performance.now();
  tasks.agentWork(() => burn(60));
  burn(20);
  tasks.slice(start, performance.now() - start, null, null);
  // 70 ms of the app's, then 60 of the agent's: a long task of the app's 70
  start = performance.now();
  burn(70);
  tasks.agentWork(() => burn(60));
  const busy = performance.now() - start;
  tasks.slice(start, busy, null, null);
  // tasks are shipped once settled (250 ms after they ended): the first take that has any
  const shipped = await until('a long task to settle', () => {
    const taken = tasks.take();
    return taken.length > 0 ? taken : undefined;
  }, undefined, undefined, 20);
  assert.equal(shipped.length, 1, JSON.stringify(shipped));
  assert.ok(shipped[0]!.ms >= 70 && shipped[0]!.ms <= busy - 60 + 0.01, `${shipped[0]!.ms} ms of a ${busy} ms slice`);
  assert.equal(shipped[0]!.function, '(unknown)');
});
