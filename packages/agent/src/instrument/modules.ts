/**
 * Patching the libraries that publish no diagnostics channels: one hook for `require`
 * (require-in-the-middle) and one for `import` (import-in-the-middle's loader, registered for the
 * instrumented packages only: in the app's thread through `module.registerHooks()` where Node's
 * synchronous hooks can run it, 22.22.3, 24.11.1 and 26 on; elsewhere in a loader thread through
 * `module.register()`, which Node 26 deprecates with a warning the app must not see). Each instrumentation names its package, the major versions it
 * supports and a `patch` that wraps methods in place. A package loaded both ways, or twice, is
 * patched once per copy: `wrapMethod` marks what it wrapped. An exception inside a patch is
 * counted and never reaches the app's `require`/`import`.
 */
import { readFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { join } from 'node:path';
import { Hook as ImportHook } from 'import-in-the-middle';
import { Hook as RequireHook } from 'require-in-the-middle';
import type { Tracker } from '../tracker.js';

/** A module's exports: the object `require` returns, or an ESM namespace. */
export type Exports = Record<string | symbol, unknown>;

export interface ModuleInstrumentation {
  /** The package, as the app names it: `pg`, `@koa/router`. */
  readonly module: string;
  /** Major versions the patch is written and tested for; other versions are left alone. */
  readonly majors: readonly number[];
  /**
   * Patches the package's entry exports (module.exports for CommonJS, the namespace for ESM).
   * Called once per loaded copy of the package.
   */
  patch?(exports: Exports, version: string, tracker: Tracker): void;
  /** Patches files inside the package (`lib/router/layer.js`), for CommonJS packages only. */
  readonly files?: Readonly<Record<string, (exports: Exports, version: string, tracker: Tracker) => void>>;
}

const WRAPPED = Symbol('loopscope.wrapped');

type AnyFunction = (this: unknown, ...args: unknown[]) => unknown;

/**
 * Replaces `target[name]` with `wrapper(original)` once; a second call on the same target is a
 * no-op. Returns false when there is nothing to wrap.
 */
export function wrapMethod<T extends object>(target: T, name: keyof T & (string | symbol), wrapper: (original: AnyFunction) => AnyFunction): boolean {
  const original = (target as Record<string | symbol, unknown>)[name];
  if (typeof original !== 'function' || (original as { [WRAPPED]?: true })[WRAPPED]) return false;
  const wrapped = wrapper(original as AnyFunction);
  Object.defineProperty(wrapped, WRAPPED, { value: true });
  Object.defineProperty(wrapped, 'name', { value: original.name });
  Object.defineProperty(wrapped, 'length', { value: original.length });
  (target as Record<string | symbol, unknown>)[name] = wrapped;
  return true;
}

/** Package versions by directory: a package whose files are hooked one by one is read once. */
const versions = new Map<string, string | undefined>();

function versionOf(baseDir: string | undefined): string | undefined {
  if (baseDir === undefined) return undefined;
  if (versions.has(baseDir)) return versions.get(baseDir);
  let version: string | undefined;
  try {
    version = (JSON.parse(readFileSync(join(baseDir, 'package.json'), 'utf8')) as { version?: string }).version;
  } catch {
    version = undefined;
  }
  versions.set(baseDir, version);
  return version;
}

function supported(inst: ModuleInstrumentation, version: string | undefined): version is string {
  return version !== undefined && inst.majors.includes(Number.parseInt(version, 10));
}

let loaderRegistered = false;

/**
 * Registers import-in-the-middle's loader for `include`. Its synchronous flavour is loaded only
 * where it runs (require of its ES modules: no await in the agent's start).
 */
function registerLoader(include: string[]): void {
  const load = createRequire(import.meta.url);
  const { supportsSyncHooks } = load('import-in-the-middle/supports-sync-hooks.mjs') as { supportsSyncHooks(): boolean };
  if (supportsSyncHooks()) (load('import-in-the-middle/register-hooks.mjs') as { register(o: { include: string[] }): void }).register({ include });
  else register('import-in-the-middle/hook.mjs', import.meta.url, { data: { include } });
}

/**
 * Installs the hooks for `list`. Packages already loaded before this call are not patched, which is
 * why the agent is loaded first (`--import loopscope/register`). Returns the uninstaller (hooks
 * stop patching new loads; what is patched stays patched).
 */
export function instrumentModules(list: readonly ModuleInstrumentation[], tracker: Tracker, onError: () => void): () => void {
  if (list.length === 0) return () => {};
  const byName = new Map(list.map((inst) => [inst.module, inst]));
  const run = (fn: () => void): void => {
    try {
      fn();
    } catch {
      onError();
    }
  };
  const requireNames = [...byName.keys()];
  for (const inst of list) for (const file of Object.keys(inst.files ?? {})) requireNames.push(`${inst.module}/${file}`);

  const requireHook = new RequireHook(requireNames, { internals: true }, (exports, name, baseDir) => {
    const slash = name.startsWith('@') ? name.indexOf('/', name.indexOf('/') + 1) : name.indexOf('/');
    const inst = byName.get(slash < 0 ? name : name.slice(0, slash));
    const version = versionOf(baseDir);
    if (inst === undefined || !supported(inst, version)) return exports;
    run(() => {
      if (slash < 0) inst.patch?.(exports as Exports, version, tracker);
      else inst.files?.[name.slice(slash + 1)]?.(exports as Exports, version, tracker);
    });
    return exports;
  });

  if (!loaderRegistered) {
    // only the instrumented packages go through the ESM loader's wrapper
    registerLoader([...byName.keys()]);
    loaderRegistered = true;
  }
  const importHook = new ImportHook([...byName.keys()], (namespace, name, baseDir, format) => {
    const inst = byName.get(name);
    const version = versionOf(baseDir === undefined || baseDir === '' ? undefined : baseDir);
    if (inst === undefined || !supported(inst, version)) return;
    // a CommonJS package imported from ESM: its module.exports is the namespace's default
    const exports = format === 'commonjs' && namespace.default !== undefined ? (namespace.default as Exports) : namespace;
    run(() => inst.patch?.(exports, version, tracker));
  });

  return () => {
    requireHook.unhook();
    importHook.unhook();
  };
}
