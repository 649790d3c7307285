/**
 * The per-request context: which transaction (and which segment inside it) the running code
 * belongs to. Built on AsyncLocalStorage, so it follows callbacks, promises and async/await,
 * timers, setImmediate, process.nextTick and I/O on its own; `wrap` binds the rest.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
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
