/**
 * Redis through `ioredis`: every command is a segment of kind `cache`, started in the caller's
 * context when the command is issued — also when ioredis only queues it until the connection is
 * ready (its own `ioredis:command` channel fires at write time, from whatever context flushes the
 * queue, which is why this patches `sendCommand` instead; docs/instrumentation.md).
 */
import type { Segment } from '../transaction.js';
import { activeScope, finishOnSettle, startCall } from './calls.js';
import { wrapMethod, type Exports, type ModuleInstrumentation } from './modules.js';
import { redisStatement } from './statement.js';

const SEG = Symbol('loopscope.segment');

type Fn = (...args: any[]) => unknown;

interface Command {
  name: string;
  args: unknown[];
  promise: Promise<unknown>;
  [SEG]?: Segment;
}

interface Client {
  options: { host?: string; port?: number; db?: number; path?: string };
  condition?: { select?: number } | null;
}

export function redisTarget(host: string | undefined, port: number | undefined, db: number | undefined): string {
  return `${host ?? 'localhost'}:${port ?? 6379}/${db ?? 0}`;
}

function wrapSendCommand(original: Fn): Fn {
  return function sendCommand(this: Client, command: Command, ...rest: unknown[]): unknown {
    // a command queued while connecting passes here again when the queue is flushed: one segment
    if (command === null || typeof command !== 'object' || command[SEG] !== undefined) return original.call(this, command, ...rest);
    const scope = activeScope();
    if (scope === undefined) return original.call(this, command, ...rest);
    const name = String(command.name).toUpperCase();
    const o = this.options;
    const seg = startCall(scope, `redis ${name}`, 'cache', name, o.path ?? redisTarget(o.host, o.port, this.condition?.select ?? o.db), redisStatement(name, command.args[0]));
    command[SEG] = seg;
    finishOnSettle(command.promise, seg);
    return original.call(this, command, ...rest);
  };
}

export const ioredis: ModuleInstrumentation = {
  module: 'ioredis',
  majors: [6],
  files: {
    'built/Redis.js'(exports: Exports) {
      wrapMethod((exports.default as { prototype: { sendCommand: Fn } }).prototype, 'sendCommand', wrapSendCommand);
    },
  },
};
