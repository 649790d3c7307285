/**
 * The per-request context: which transaction (and which segment inside it) the running code
 * belongs to. It follows callbacks, promises and async/await, timers, setImmediate,
 * process.nextTick and I/O on its own; `wrap` binds the rest.
 *
 * The same mechanism as AsyncLocalStorage on async hooks (before AsyncContextFrame) (every async resource is given, when it is
 * created, the scope of the code that created it; the running resource's scope is the current
 * one), with less work per resource, for it runs for every tick, promise and handle of every
 * request:
 * - the creating code's scope is usually known without asking Node for the running resource: the
 *   agent's `before` hook (timing.ts) records each callback's async id, resource and scope in
 *   `callback`, and while that id is still the running one they hold;
 * - a resource created outside any transaction is left alone (no property added), unless it is
 *   an object being given a new async id that had a scope before.
 * (docs/benchmarks.md has what this saved against AsyncLocalStorage on the bench.)
 */
import { createHook, executionAsyncId, executionAsyncResource } from 'node:async_hooks';
import { isWatchedIo } from './io.js';
import type { Scope } from './transaction.js';

/** The property under which a resource keeps the scope it was created in. */
const SCOPE = Symbol('loopscope.scope');

type Resource = Record<typeof SCOPE, Scope | undefined>;

/**
 * The callback running now as last seen, by async id, resource and scope: an async id stands for
 * one resource, so while `executionAsyncId()` is still `id` the other two hold without asking Node
 * (`executionAsyncResource()` is not free). Whatever changes a resource's scope updates this. The
 * resource is null when the hook did not need it (a tick): then it is asked for when needed.
 */
export const callback: { id: number; resource: object | null; scope: Scope | undefined } = { id: -1, resource: null, scope: undefined };

/** The resource of the callback running now. */
export function runningResource(id = executionAsyncId()): object {
  return id === callback.id && callback.resource !== null ? callback.resource : executionAsyncResource();
}

/** The scope of the running code (undefined: none). */
export function currentScope(): Scope | undefined {
  return executionAsyncId() === callback.id ? callback.scope : (executionAsyncResource() as Resource)[SCOPE];
}

/** The scope a resource was created in (undefined: none). */
export function scopeOf(resource: object): Scope | undefined {
  return (resource as Resource)[SCOPE];
}

/*
 * The same reads and writes, for the commonest kinds of resource by themselves: V8 keeps what it
 * learns about a property access per place in the code, and a place that sees objects of every
 * shape (every kind of resource) falls back to a generic lookup, about a hundred instructions;
 * one that sees a tick's shape or two stays fast.
 */
export function tickScopeOf(tick: object): Scope | undefined {
  return (tick as Resource)[SCOPE];
}
export function promiseScopeOf(promise: object): Scope | undefined {
  return (promise as Resource)[SCOPE];
}
function setTickScope(tick: object, scope: Scope): void {
  (tick as Resource)[SCOPE] = scope;
}
function setPromiseScope(promise: object, scope: Scope): void {
  (promise as Resource)[SCOPE] = scope;
}

/**
 * The nextTick callbacks created lately, by async id (a slot per id modulo RECENT, emptied when the
 * callback runs): the `before` hook finds a tick's resource here instead of asking Node for the
 * running resource (ten ticks per HTTP request). A tick runs before the loop goes on, so its slot
 * is overwritten only if RECENT other resources are created in between; then Node is asked.
 */
const RECENT = 64;
const recentIds = new Float64Array(RECENT).fill(-1);
const recentTicks: Array<object | null> = new Array<object | null>(RECENT).fill(null);

/** The tick callback `asyncId` stands for, if it is one created lately; it is forgotten here. */
export function takeRecentTick(asyncId: number): object | null {
  const slot = asyncId & (RECENT - 1);
  if (recentIds[slot] !== asyncId) return null;
  const tick = recentTicks[slot]!;
  recentTicks[slot] = null;
  recentIds[slot] = -1;
  return tick;
}

/** Told of the request of a file-system or name-resolution operation made in a transaction (io.ts); null: none watched. */
let onIoRequest: ((asyncId: number, type: string, scope: Scope) => void) | null = null;

export function watchIoRequests(fn: ((asyncId: number, type: string, scope: Scope) => void) | null): void {
  onIoRequest = fn;
}

const propagation = createHook({
  init(asyncId, type, _triggerAsyncId, resource) {
    const scope = currentScope();
    if (type === 'TickObject') {
      const slot = asyncId & (RECENT - 1);
      recentIds[slot] = asyncId;
      recentTicks[slot] = resource;
      if (scope !== undefined) setTickScope(resource, scope);
    } else if (scope !== undefined) {
      if (type === 'PROMISE') setPromiseScope(resource, scope);
      else {
        (resource as Resource)[SCOPE] = scope;
        if (onIoRequest !== null && isWatchedIo(type)) onIoRequest(asyncId, type, scope);
      }
    } else if (type !== 'PROMISE' && (resource as Resource)[SCOPE] !== undefined) {
      // an object given a new async id (a timer re-armed after it fired) forgets its old scope;
      // ticks and promises are new objects (and most of the resources of a request)
      (resource as Resource)[SCOPE] = undefined;
    }
  },
});

/** Makes the context propagate from now on. */
export function enableStorage(): void {
  propagation.enable();
}

/** `fn.call(self, a, b, c)` inside `scope`: the hot path of every request. */
export function runInScope<S, A, B, C, R>(scope: Scope | undefined, fn: (this: S, a: A, b: B, c: C) => R, self: S, a: A, b: B, c: C): R {
  const id = executionAsyncId();
  const resource = runningResource(id) as Resource;
  const previous = resource[SCOPE];
  resource[SCOPE] = scope;
  callback.id = id;
  callback.resource = resource;
  callback.scope = scope;
  try {
    return fn.call(self, a, b, c);
  } finally {
    // callbacks run inside `fn` (a nested MakeCallback) have moved `callback` on
    resource[SCOPE] = previous;
    callback.id = id;
    callback.resource = resource;
    callback.scope = previous;
  }
}

/** `fn(...args)` inside `scope` (undefined: outside any transaction). */
export function runIn<A extends unknown[], R>(scope: Scope | undefined, fn: (...args: A) => R, ...args: A): R {
  return runInScope(scope, Reflect.apply, undefined, fn, undefined, args) as R;
}

/** Runs `fn` outside of any transaction (for the agent's own work). */
export function outside<T>(fn: () => T): T {
  return runIn(undefined, fn);
}
