/**
 * Long tasks located in the TypeScript source (issue 25.3): fixtures/ts-app/app.mts, compiled here by
 * tsc (its map in a file beside the output) and bundled by esbuild (its map inline), each run under
 * the agent shipping to a real collector. A 120 ms burn in `priceOrders` must be placed at its line
 * and column in app.mts, with the compiled file's location beside it, in the list, its stack and
 * the culprit groups; the lines differ between the two (the types are gone from the compiled code).
 * Without its map, a file keeps its own locations.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { startCollector, type LoopSummary } from '@loopscope/collector';
import { api, fixtures, get, startApp, stopApp, tempDir, until } from './helpers.js';

const source = join(fixtures, 'ts-app', 'app.mts');

/** `line:column` (1-based) of `text` in a file: V8 places a function at its parameter list. */
function positionIn(file: string, text: string): string {
  const lines = readFileSync(file, 'utf8').split('\n');
  const line = lines.findIndex((l) => l.includes(text));
  assert.ok(line >= 0, `${text} in ${file}`);
  return `${line + 1}:${lines[line]!.indexOf(text) + 1}`;
}

/** tsc, as a user's build runs it: app.mjs and app.mjs.map in `out`. */
function compileWithTsc(out: string): string {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const args = [tsc, source, '--outDir', out, '--sourceMap', '--target', 'es2022', '--module', 'nodenext', '--strict', '--skipLibCheck', '--types', 'node'];
  const run = spawnSync(process.execPath, args, { encoding: 'utf8' });
  assert.equal(run.status, 0, `tsc: ${run.stdout}${run.stderr}`);
  return join(out, 'app.mjs');
}

/** The loop of `file` run under the agent once its long task of GET `path` has arrived. */
async function locate(file: string, service: string, path = '/price'): Promise<LoopSummary> {
  const collector = await startCollector({ port: 0, dataDir: tempDir(), logger: false });
  const app = await startApp(file, collector.url, { LOOPSCOPE_SERVICE: service });
  try {
    await new Promise((r) => setTimeout(r, 300)); // past startup
    await get(`${app.url}${path}`);
    return await until(`the long task of GET ${path}`, async () => {
      const answer = await api<LoopSummary>(collector.url, `/api/loop?service=${service}&group=culprit`);
      return answer.longTasks.some((t) => t.endpoint === `GET ${path}`) ? answer : undefined;
    });
  } finally {
    await stopApp(app);
    await collector.close();
  }
}

function check(loop: LoopSummary, compiled: string, compiledText: string): void {
  const task = loop.longTasks.find((t) => t.endpoint === 'GET /price')!;
  assert.equal(task.function, 'priceOrders');
  // the line of `function priceOrders(ms: number)`, at its parameter list (tsc's map) or at its
  // name (esbuild's marks the name, and the nearest mapping before the list is that one)
  const [line, from] = positionIn(source, 'function priceOrders(').split(':').map(Number);
  const [, to] = positionIn(source, '(ms: number)').split(':').map(Number);
  const prefix = `${pathToFileURL(source).href}:`;
  const [l, c] = (task.location?.startsWith(prefix) ? task.location.slice(prefix.length) : '').split(':').map(Number);
  assert.ok(l === line && c! >= from! && c! <= to!, `where it is in the TypeScript: ${task.location}, expected line ${line}, column ${from} to ${to}`);
  assert.equal(task.compiledLocation, `${pathToFileURL(compiled).href}:${positionIn(compiled, compiledText)}`, 'where it is in the compiled file');
  assert.ok(task.stack[0]?.startsWith(`priceOrders (${pathToFileURL(source).href}:`), task.stack.join(' < '));
  const group = loop.groups!.find((g) => g.function === 'priceOrders')!;
  assert.deepEqual([group.location, group.compiledLocation], [task.location, task.compiledLocation]);
}

test('tsc with a .map file beside the output: the long task is at its line in app.mts, the compiled one beside it', async () => {
  const compiled = compileWithTsc(tempDir());
  check(await locate(compiled, 'ts-tsc'), compiled, '(ms) {');
});

test('an esbuild bundle with its map inline: the long task is at its line in app.mts, the bundle one beside it', async () => {
  const bundle = join(tempDir(), 'bundle.mjs');
  await build({ entryPoints: [source], bundle: true, platform: 'node', format: 'esm', sourcemap: 'inline', outfile: bundle, logLevel: 'warning' });
  check(await locate(bundle, 'ts-esbuild'), bundle, '(ms) {');
});

test('a map that is named but gone: the compiled file\'s location, and none beside it', async () => {
  const compiled = compileWithTsc(tempDir());
  rmSync(`${compiled}.map`);
  const loop = await locate(compiled, 'ts-no-map');
  const task = loop.longTasks.find((t) => t.endpoint === 'GET /price')!;
  assert.equal(task.location, `${pathToFileURL(compiled).href}:${positionIn(compiled, '(ms) {')}`);
  assert.equal(task.compiledLocation, null);
  assert.equal(loop.groups!.find((g) => g.function === 'priceOrders')?.compiledLocation, null);
});
