/**
 * Timers a transaction creates keep it open until they have fired or been cleared (the done
 * condition): setTimeout, setInterval and setImmediate (global and `node:timers`) and the promise
 * timers of `node:timers/promises`. Only timers created inside a transaction are touched; an
 * unref'd timer does not keep the transaction open.
 */
import { syncBuiltinESMExports } from 'node:module';
import { createRequire } from 'node:module';
import { currentScope } from '../context.js';

const require = createRequire(import.meta.url);

type AnyFn = (...args: any[]) => any;

export function instrumentTimers(onError: () => void): () => void {
  const timers = require('node:timers') as Record<string, AnyFn>;
  const promises = require('node:timers/promises') as Record<string, AnyFn>;
  const restore: Array<() => void> = [];

  const patch = (target: Record<string, AnyFn>, name: string, make: (original: AnyFn) => AnyFn): void => {
    const original = target[name];
    if (typeof original !== 'function') return;
    const patched = make(original);
    Object.defineProperty(patched, 'name', { value: original.name });
    target[name] = patched;
    restore.push(() => {
      target[name] = original;
    });
  };

  // callback timers: tracked on the transaction; when one fires, the transaction may be done
  const callbackTimer = (original: AnyFn): AnyFn =>
    function (this: unknown, callback: unknown, ...rest: unknown[]) {
      const scope = currentScope();
      if (scope === undefined || typeof callback !== 'function' || !scope.tx.open) return Reflect.apply(original, this, [callback, ...rest]);
      const tx = scope.tx;
      const wrapped = function (this: unknown, ...args: unknown[]) {
        try {
          return Reflect.apply(callback, this, args);
        } finally {
          try {
            tx.host.maybeDone(tx);
          } catch {
            onError();
          }
        }
      };
      const handle = Reflect.apply(original, this, [wrapped, ...rest]);
      tx.trackTimer(handle);
      return handle;
    };
  for (const name of ['setTimeout', 'setInterval', 'setImmediate']) {
    patch(timers, name, callbackTimer);
    patch(globalThis as unknown as Record<string, AnyFn>, name, callbackTimer);
  }

  // promise timers: pending work while they run
  const promiseTimer = (original: AnyFn): AnyFn =>
    function (this: unknown, ...args: unknown[]) {
      const scope = currentScope();
      if (scope === undefined || !scope.tx.open) return Reflect.apply(original, this, args);
      const tx = scope.tx;
      tx.hold();
      return (Reflect.apply(original, this, args) as Promise<unknown>).finally(() => tx.release());
    };
  patch(promises, 'setTimeout', promiseTimer);
  patch(promises, 'setImmediate', promiseTimer);

  syncBuiltinESMExports();
  return () => {
    for (const undo of restore) undo();
    syncBuiltinESMExports();
  };
}
