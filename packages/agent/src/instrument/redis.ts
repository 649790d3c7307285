/**
 * Redis through `redis` (node-redis 6, `@redis/client`): every command is a segment of kind
 * `cache`, from the `node-redis:command` tracing channel the client publishes. Its `start` event
 * fires synchronously in the caller's context when the command is issued (queued or written); the
 * segment rides on the event's context object and ends at `asyncStart` (the reply is in) or `error`.
 * Only the client pool (`createClientPool`) is patched: a task queued for a busy pool runs from the
 * context of the request that returned a client, so each task is bound to the context that queued it.
 */
import { tracingChannel } from 'node:diagnostics_channel';
import type { Segment } from '../transaction.js';
import { activeScope, callInScope, startCall } from './calls.js';
import { redisTarget } from './ioredis.js';
import { wrapMethod, type Exports, type ModuleInstrumentation } from './modules.js';
import { redisStatement } from './statement.js';

const SEG = Symbol('loopscope.segment');

interface CommandEvent {
  command?: unknown;
  args?: unknown[];
  database?: number;
  serverAddress?: string;
  serverPort?: number;
  error?: unknown;
  [SEG]?: Segment;
}

export function instrumentRedis(onError: () => void): () => void {
  const channel = tracingChannel<unknown, CommandEvent>('node-redis:command');
  const handlers = {
    start(event: CommandEvent) {
      try {
        const scope = activeScope();
        if (scope === undefined) return;
        const name = String(event.command).toUpperCase();
        // the event's args are the client's own sanitized copy: args[1] is the key where it kept one
        event[SEG] = startCall(scope, `redis ${name}`, 'cache', name, redisTarget(event.serverAddress, event.serverPort, event.database), redisStatement(name, event.args?.[1]));
      } catch {
        onError();
      }
    },
    asyncStart(event: CommandEvent) {
      event[SEG]?.finish(event.error);
    },
    error(event: CommandEvent) {
      event[SEG]?.finish(event.error ?? 'failed');
    },
    end() {},
    asyncEnd() {},
  };
  channel.subscribe(handlers);
  return () => channel.unsubscribe(handlers);
}

type Fn = (...args: any[]) => unknown;

function wrapExecute(original: Fn): Fn {
  return function execute(this: unknown, fn: unknown): unknown {
    const scope = activeScope();
    if (scope === undefined || typeof fn !== 'function') return original.call(this, fn);
    return original.call(this, function (this: unknown, client: unknown): unknown {
      return callInScope(scope, fn as Fn, this, [client]);
    });
  };
}

/** node-redis's client pool, in `@redis/client` (which `redis` re-exports). */
export const redisPool: ModuleInstrumentation = {
  module: '@redis/client',
  majors: [5, 6],
  files: {
    'dist/lib/client/pool.js'(exports: Exports) {
      wrapMethod((exports.RedisClientPool as { prototype: { execute: Fn } }).prototype, 'execute', wrapExecute);
    },
  },
};
