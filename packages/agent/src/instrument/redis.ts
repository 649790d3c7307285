/**
 * Redis through `redis` (node-redis 6, `@redis/client`): every command is a segment of kind
 * `cache`, from the `node-redis:command` tracing channel the client publishes. Its `start` event
 * fires synchronously in the caller's context when the command is issued (queued or written); the
 * segment rides on the event's context object and ends at `asyncStart` (the reply is in) or `error`.
 * Nothing is patched, so `require` and `import` are alike.
 */
import { tracingChannel } from 'node:diagnostics_channel';
import type { Segment } from '../transaction.js';
import { activeScope, startCall } from './calls.js';
import { redisTarget } from './ioredis.js';
import { redisStatement } from './statement.js';

interface CommandEvent {
  command?: unknown;
  args?: unknown[];
  database?: number;
  serverAddress?: string;
  serverPort?: number;
  error?: unknown;
  [SEG]?: Segment;
}

const SEG = Symbol('loopscope.segment');

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
