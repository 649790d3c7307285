/**
 * The per-request context: which transaction (and which segment inside it) the running code
 * belongs to. Built on AsyncLocalStorage, so it follows callbacks, promises and async/await,
 * timers, setImmediate, process.nextTick and I/O on its own; `wrap` binds the rest.
 */
import { AsyncLocalStorage, executionAsyncId, executionAsyncResource } from 'node:async_hooks';
import type { Segment, Transaction } from './transaction.js';

/** What the storage holds: a transaction is its own scope; a segment opened by hand gets one. */
export interface Scope {
  readonly tx: Transaction;
  readonly segment: Segment | null;
}

export const storage = new AsyncLocalStorage<Scope>();

/**
 * Runs `fn` outside of any transaction (for the agent's own work). Not `storage.exit()`: on Node 20
 * that disables the storage, and with it the whole async_hooks machinery, and enables it again.
 */
export function outside<T>(fn: () => T): T {
  return storage.run(undefined as unknown as Scope, fn);
}

/**
 * The symbol under which Node 20's AsyncLocalStorage keeps its store on the running resource.
 * Reading and swapping it directly is what getStore() and run() do, without their extra calls and
 * argument arrays; where the storage is built differently (newer Node) the public API is used.
 */
export const resourceStore: symbol | undefined =
  typeof (storage as unknown as { kResourceStore?: unknown }).kResourceStore === 'symbol' ? (storage as unknown as { kResourceStore: symbol }).kResourceStore : undefined;

/** Makes the storage propagate from now on (run() would do it on first use). */
export function enableStorage(): void {
  storage.enterWith(undefined as unknown as Scope);
}

/**
 * The callback the agent's async hook saw start last (timing.ts), by async id and resource: an id
 * stands for one resource, so while that id is still the running one its resource is known without
 * asking Node (`executionAsyncResource()` is not free: ~500 instructions in the hook's mix).
 */
export const lastCallback: { id: number; resource: object | null } = { id: -1, resource: null };

/** The resource of the callback running now. */
function currentResource(): Record<symbol, unknown> {
  return (executionAsyncId() === lastCallback.id ? lastCallback.resource : executionAsyncResource()) as Record<symbol, unknown>;
}

/** `fn.call(self, a, b, c)` inside `scope`: the hot path of every request. */
export function runInScope<S, A, B, C, R>(scope: Scope, fn: (this: S, a: A, b: B, c: C) => R, self: S, a: A, b: B, c: C): R {
  if (resourceStore === undefined) return storage.run(scope, () => fn.call(self, a, b, c));
  const resource = currentResource();
  const previous = resource[resourceStore];
  resource[resourceStore] = scope;
  try {
    return fn.call(self, a, b, c);
  } finally {
    resource[resourceStore] = previous;
  }
}
