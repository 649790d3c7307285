/**
 * Module hooks: a package is patched whether the app `require`s it or `import`s it, once per copy,
 * only in the major versions the instrumentation supports, and a patch that throws never breaks the
 * app's `require`. The packages are small fixtures in test/fixtures/node_modules.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { instrumentModules, wrapMethod } from '../src/instrument/modules.js';
import { Tracker } from '../src/tracker.js';

const fixtures = fileURLToPath(new URL('../../test/fixtures/', import.meta.url));
const requireFixture = createRequire(fixtures);
/** What an ESM app gets from `import cjs from 'fake-cjs'` and `import { greet } from 'fake-esm'`. */
const importLibs = (): Promise<{ cjs: { Client: new () => { query(sql: string): string } }; greet(name: string): string }> =>
  import(pathToFileURL(`${fixtures}import-libs.mjs`).href);

/** What instrumentations are handed to run message transactions with (none run here). */
const tracker = new Tracker({ service: 'modules', maxLingerMs: 1000, maxSegments: 10, maxOpenTransactions: 10 });
let caught = 0;
const calls: string[] = [];
const patched: string[] = [];

const uninstall = instrumentModules(
  [
    {
      module: 'fake-cjs',
      majors: [2],
      patch(exports, version) {
        patched.push(`fake-cjs@${version}`);
        const proto = (exports.Client as { prototype: { query(sql: string): string } }).prototype;
        wrapMethod(proto, 'query', (original) =>
          function (this: unknown, ...args: unknown[]) {
            calls.push(`query ${String(args[0])}`);
            return original.apply(this, args);
          },
        );
      },
      files: {
        'lib/inner.js'(exports) {
          wrapMethod(exports, 'inner', (original) =>
            function (this: unknown, ...args: unknown[]) {
              return `patched ${String(original.apply(this, args))}`;
            },
          );
        },
      },
    },
    {
      module: 'fake-esm',
      majors: [1],
      patch(exports) {
        const greet = exports.greet as (name: string) => string;
        exports.greet = (name: string) => greet(name).toUpperCase();
      },
    },
    { module: 'fake-old', majors: [2], patch: () => assert.fail('fake-old 1.x is not supported and must be left alone') },
  ],
  tracker,
  () => caught++,
);
after(uninstall);

test('a CommonJS package is patched on require, internal files included', () => {
  const lib = requireFixture('fake-cjs') as { Client: new () => { query(sql: string): string }; inner(): string };
  assert.equal(new lib.Client().query('select 1'), 'ran select 1');
  assert.deepEqual(calls, ['query select 1']);
  assert.equal(lib.inner(), 'patched inner');
  assert.deepEqual(patched, ['fake-cjs@2.1.0']);
});

test('the same CommonJS package imported from ESM is the same copy and is not wrapped twice', async () => {
  calls.length = 0;
  const { Client } = (await importLibs()).cjs;
  assert.equal(new Client().query('select 2'), 'ran select 2');
  assert.deepEqual(calls, ['query select 2'], 'one wrapper ran, not two');
});

test('an ESM-only package is patched on import, and its live binding sees the patch', async () => {
  const { greet } = await importLibs();
  assert.equal(greet('puppy'), 'HELLO PUPPY');
});

test('a version outside the supported majors is left alone', () => {
  const lib = requireFixture('fake-old') as { run(): string };
  assert.equal(lib.run(), 'old');
  assert.equal(caught, 0);
});

test('a patch that throws is counted and the app still gets the module', () => {
  const before = caught;
  const undo = instrumentModules(
    [
      {
        module: 'fake-throws',
        majors: [1],
        patch: () => {
          throw new Error('agent bug');
        },
      },
    ],
    tracker,
    () => caught++,
  );
  try {
    assert.deepEqual({ ...(requireFixture('fake-throws') as object) }, { ok: true });
    assert.equal(caught, before + 1);
  } finally {
    undo();
  }
});

test('wrapMethod wraps once and keeps the name and arity', () => {
  const target = {
    send(a: number, b: number) {
      return a + b;
    },
  };
  assert.equal(wrapMethod(target, 'send', (o) => function (this: unknown, ...args: unknown[]) { return (o.apply(this, args) as number) * 10; }), true);
  assert.equal(wrapMethod(target, 'send', (o) => o), false);
  assert.equal(target.send(1, 2), 30);
  assert.equal(target.send.name, 'send');
  assert.equal(target.send.length, 2);
});
