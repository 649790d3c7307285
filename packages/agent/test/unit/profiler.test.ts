/**
 * Naming a long task from its samples. The profiles here are built in the shape V8's profiler
 * delivers (a call tree, sample ids, time deltas), from stacks of the kind seen in the loop tests,
 * so that the rare cases (a sample that lost its innermost frames, a sample in the garbage
 * collector) are met every time. The end-to-end naming with V8's real profiler is tested in
 * packages/cli/test/loop.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { culprits, ownTime, type Profile, type ProfileNode } from '../../src/loop/profiler.js';

const APP = 'file:///srv/app.mjs';
/** a file of the agent's own (the profiler tells the agent's frames by where its modules are) */
const AGENT = new URL('../../src/timing.js', import.meta.url).href;

/**
 * A frame: "name" is the app's (on line 1 + its index in `names`), "node:name" the runtime's
 * ("node:name@module": in node:module), "agent:name" the agent's, "(name)" V8's own, "=name" a
 * builtin (no file).
 */
function frame(name: string, names: string[]): ProfileNode['callFrame'] {
  if (name.startsWith('(')) return { functionName: name, url: '', lineNumber: -1, columnNumber: -1 };
  if (name.startsWith('=')) return { functionName: name.slice(1), url: '', lineNumber: -1, columnNumber: -1 };
  if (name.startsWith('agent:')) return { functionName: name.slice(6), url: AGENT, lineNumber: 0, columnNumber: 0 };
  if (name.startsWith('node:')) {
    const [fn, module = 'internal/x'] = name.slice(5).split('@');
    return { functionName: fn!, url: `node:${module}`, lineNumber: 0, columnNumber: 0 };
  }
  return { functionName: name === 'anon' ? '' : name, url: APP, lineNumber: names.indexOf(name), columnNumber: 0 };
}

/** A profile of samples, each [time in ms, stack outermost first]; a stack is a path in the call tree. */
function profileOf(samples: Array<[number, string[]]>): Profile {
  const names = [...new Set(samples.flatMap(([, stack]) => stack))].filter((name) => !/^(?:\(|=|node:|agent:)/.test(name));
  const root: ProfileNode = { id: 1, callFrame: frame('(root)', names), children: [] };
  const nodes = [root];
  const ids: number[] = [];
  for (const [, stack] of samples) {
    let node = root;
    for (const name of stack) {
      const callFrame = frame(name, names);
      let child = node.children!.map((id) => nodes[id - 1]!).find((n) => n.callFrame.functionName === callFrame.functionName && n.callFrame.url === callFrame.url);
      if (child === undefined) {
        child = { id: nodes.length + 1, callFrame, children: [] };
        nodes.push(child);
        node.children!.push(child.id);
      }
      node = child;
    }
    ids.push(node.id);
  }
  const times = samples.map(([ms]) => ms * 1000);
  return { nodes, startTime: 0, samples: ids, timeDeltas: times.map((t, i) => t - (i === 0 ? 0 : times[i - 1]!)) };
}

const window = (fromMs: number, toMs: number) => ({ from: fromMs * 1000, to: toMs * 1000 });
const handler = ['node:parserOnIncoming', 'node:emit', 'anon'];

test('a busy loop is named by its function, a sample in a builtin counting for its caller', () => {
  const profile = profileOf([
    [10, ['(idle)']],
    [60, [...handler, 'crunchNumbers', 'node:now']],
    [110, [...handler, 'crunchNumbers']],
  ]);
  const [culprit] = culprits(profile, [window(20, 140)]);
  assert.equal(culprit?.function, 'crunchNumbers');
  assert.equal(culprit?.location, `${APP}:2:1`);
  assert.deepEqual(culprit?.stack, [`crunchNumbers (${APP}:2:1)`, `(anonymous) (${APP}:1:1)`, 'emit (node:internal/x:1:1)', 'parserOnIncoming (node:internal/x:1:1)']);
});

test('a sample that lost its innermost frame does not outvote the true one, in either order', () => {
  const lost = [...handler];
  const inLoop = [...handler, 'crunchNumbers', 'node:now', 'node:now'];
  for (const samples of [[[50, inLoop], [100, lost]], [[50, lost], [100, inLoop]]] as Array<Array<[number, string[]]>>) {
    const [culprit] = culprits(profileOf(samples), [window(0, 123)]);
    assert.equal(culprit?.function, 'crunchNumbers', JSON.stringify(samples));
  }
});

test('samples outside the window, in the garbage collector or in the runtime alone do not count', () => {
  const profile = profileOf([
    [5, [...handler, 'other']],
    [40, ['(garbage collector)']],
    [60, ['node:processTimers', 'node:listOnTimeout']],
    [80, [...handler, 'crunchNumbers']],
    [200, [...handler, 'other']],
  ]);
  const [culprit, none] = culprits(profile, [window(30, 130), window(150, 190)]);
  assert.equal(culprit?.function, 'crunchNumbers');
  assert.equal(none, undefined, 'a window with no sample has no culprit');
});

/** A frame of a module-hook library installed at `dir` (the agent's copy or the app's own). */
function hookFrame(dir: string, functionName: string): ProfileNode['callFrame'] {
  return { functionName, url: `file://${dir}/node_modules/require-in-the-middle/index.js`, lineNumber: 152, columnNumber: 26 };
}

test("the app's module loading is named after the app's frame that required, not a module hook's", () => {
  // main.js requires ./schema.js, which V8 compiles (no JavaScript of schema.js on the stack yet),
  // through the require hooks of two copies of require-in-the-middle: the agent's and the app's own
  const main = { functionName: '', url: 'file:///srv/app/main.js', lineNumber: 3, columnNumber: 0 };
  const frames: Array<ProfileNode['callFrame']> = [
    { functionName: '(root)', url: '', lineNumber: -1, columnNumber: -1 },
    main,
    hookFrame('/srv/app', 'patchedRequire'),
    hookFrame('/opt/loopscope/node_modules/loopscope', 'patchedRequire'),
    { functionName: 'Module._load', url: 'node:internal/modules/cjs/loader', lineNumber: 1002, columnNumber: 23 },
    { functionName: 'wrapSafe', url: 'node:internal/modules/cjs/loader', lineNumber: 1400, columnNumber: 10 },
  ];
  const nodes: ProfileNode[] = frames.map((callFrame, i) => ({ id: i + 1, callFrame, children: i + 1 < frames.length ? [i + 2] : [] }));
  // three samples: in the compile, in the app's hook, in the agent's hook
  const profile: Profile = { nodes, startTime: 0, samples: [6, 3, 4], timeDeltas: [50_000, 50_000, 50_000] };
  const [culprit] = culprits(profile, [window(0, 200)]);
  assert.equal(culprit?.function, '(anonymous)');
  assert.equal(culprit?.location, 'file:///srv/app/main.js:4:1');
});

test('a window with no app frame is named after what its samples were', () => {
  const name = (stacks: string[][]): string | undefined =>
    culprits(profileOf(stacks.map((stack, i) => [10 + 10 * i, stack])), [window(0, 100)])[0]?.function;
  assert.equal(name([['(garbage collector)'], ['(garbage collector)'], ['(program)']]), '(garbage collection)');
  assert.equal(name([['(program)'], ['(program)'], ['(garbage collector)']]), '(native code)');
  assert.equal(name([['(idle)']]), '(idle)');
  assert.equal(name([['node:processTimers', 'node:listOnTimeout']]), '(Node.js internals)');
  assert.equal(name([['(garbage collector)'], ['(program)']]), '(garbage collection)', 'a tie goes to the garbage collector');
  const loading = profileOf([[10, ['node:run']], [20, ['node:run']]]);
  for (const node of loading.nodes) if (node.callFrame.url !== '') node.callFrame.url = 'node:internal/modules/esm/module_job';
  const [esm] = culprits(loading, [window(0, 100)]);
  assert.equal(esm?.function, '(module loading)');
  assert.equal(esm?.location, undefined);
  assert.deepEqual(esm?.stack, ['run (node:internal/modules/esm/module_job:1:1)']);
});

test('a task spread over several functions is named by the innermost one most of it ran in', () => {
  const spread = profileOf([
    [10, [...handler, 'render', 'a']],
    [20, [...handler, 'render', 'b']],
    [30, [...handler, 'render', 'c']],
    [40, [...handler, 'parse']],
  ]);
  assert.equal(culprits(spread, [window(0, 50)])[0]?.function, 'render', 'three of four samples are in render, none of its callees holds half');
  const even = profileOf([
    [10, [...handler, 'render', 'a']],
    [20, [...handler, 'parse']],
    [30, [...handler, 'render', 'a']],
  ]);
  assert.equal(culprits(even, [window(0, 50)])[0]?.function, 'a', 'two of three samples are in a');
});

test("the agent's own time: its code, the async hooks it turns on and its own work, never the app's calls it passes on", () => {
  // one sample every 10 ms; each stands for the 10 ms before it
  const stacks: Array<[string, string[]]> = [
    ['its hook, reading the clock', ['node:processTicksAndRejections', 'node:emitBefore@internal/async_hooks', 'agent:before', '=now']],
    ['its hook, reading libuv idle time', ['node:listOnTimeout', 'agent:before', 'node:get idleTime@internal/perf/nodetiming', '=idleTime']],
    ["Node's dispatch of its hook", ['node:processTicksAndRejections', 'node:emitBefore@internal/async_hooks']],
    ['the promise tracking its hook turns on', [...handler, 'render', 'node:trackPromise@internal/async_hooks']],
    ['a flush, in the gzip it calls', ['node:listOnTimeout', 'agent:tick', 'agent:agentWork', 'agent:cut', 'node:gzipSync@zlib']],
    ["the app's request through the agent's wrapper", [...handler, 'render', 'agent:request', 'node:ClientRequest@_http_client', '=write']],
    ["the app's own code", [...handler, 'render']],
    ["Node's trampoline of every callback", ['node:callbackTrampoline@internal/async_hooks']],
    ["Node's own work under the trampoline", ['node:callbackTrampoline@internal/async_hooks', 'node:socketOnData@_http_client', 'node:parserOnIncomingClient@_http_client']],
    ["the app's code under the agent's wrapper of its handler", ['node:emit@events', 'agent:emit', 'anon', 'render', '=now']],
    ['the garbage collector', ['(garbage collector)']],
    ['idle', ['(idle)']],
  ];
  const own = [0, 1, 2, 3, 4];
  const profile = profileOf(stacks.map(([, stack], i) => [10 * (i + 1), stack]));
  assert.deepEqual(ownTime(profile), { sampledUs: 10_000 * stacks.length, ownUs: 10_000 * own.length });
  // each alone, so that a wrong one is named
  stacks.forEach(([what, stack], i) => {
    const one = ownTime(profileOf([[10, stack]]));
    assert.equal(one.ownUs, own.includes(i) ? 10_000 : 0, what);
  });
});
