/**
 * MySQL and MariaDB through `mysql2`: `query` and `execute` on a connection (and so on a pool, and
 * through `mysql2/promise`, which calls them) are segments of kind `db`; `pool.getConnection` — the
 * wait for a pooled connection — is one of its own (`checkout`). mysql2 publishes tracing channels
 * too, but a pool runs the queued request's query from the context of the request that released
 * the connection, where a channel subscriber cannot tell whose it is; patching the call sites can
 * (docs/instrumentation.md). The internal files are patched, so `require` and `import` are alike.
 */
import { activeScope, finishOnEnd, finishThenCall, startCall } from './calls.js';
import { wrapMethod, type Exports, type ModuleInstrumentation } from './modules.js';
import { sqlOperation, StatementCache } from './statement.js';
import type { Scope } from '../transaction.js';

type Callback = (...args: any[]) => unknown;

interface Config {
  host?: string;
  port?: number;
  database?: string;
  socketPath?: string;
}

interface Command {
  sql?: unknown;
  onResult?: Callback;
  once(event: string, listener: Callback): unknown;
}

const TARGET = Symbol('loopscope.target');
/** A getConnection callback already bound: the pool hands it back to getConnection when a connection frees up. */
const BOUND = Symbol('loopscope.bound');
const statements = new StatementCache('mysql');

function targetOf(self: { [TARGET]?: string }, c: Config | undefined): string {
  return (self[TARGET] ??= c === undefined ? '' : c.socketPath ?? `${c.host ?? 'localhost'}:${c.port ?? 3306}/${c.database ?? ''}`);
}

/** `query(sql | options | Query, values?, cb?)` and `execute(...)` alike. */
function wrapCall(original: Callback): Callback {
  return function (this: { config?: Config; [TARGET]?: string }, sql: unknown, values?: unknown, cb?: unknown): unknown {
    const scope = activeScope();
    const text = typeof sql === 'string' ? sql : (sql as Command | null)?.sql;
    if (scope === undefined || typeof text !== 'string') return original.call(this, sql, values, cb);
    const statement = statements.get(text);
    const operation = sqlOperation(statement);
    const seg = startCall(scope, `mysql ${operation}`, 'db', operation, targetOf(this, this.config), statement);
    try {
      if (typeof values === 'function') return original.call(this, sql, finishThenCall(seg, scope, values as Callback), cb);
      if (typeof cb === 'function') return original.call(this, sql, values, finishThenCall(seg, scope, cb as Callback));
      const command = sql as Command;
      if (typeof command === 'object' && typeof command.onResult === 'function') {
        // a Query built by pool.query: its result callback is already on it
        command.onResult = finishThenCall(seg, scope, command.onResult);
        return original.call(this, sql, values, cb);
      }
      // no callback: the query is an event emitter
      const result = original.call(this, sql, values, cb) as Command;
      finishOnEnd(result, seg);
      return result;
    } catch (error) {
      seg.finish(error);
      throw error;
    }
  };
}

function wrapGetConnection(original: Callback): Callback {
  return function getConnection(this: { config?: { connectionConfig?: Config }; [TARGET]?: string }, cb: unknown): unknown {
    const scope: Scope | undefined = activeScope();
    if (scope === undefined || typeof cb !== 'function' || (cb as { [BOUND]?: true })[BOUND]) return original.call(this, cb);
    const seg = startCall(scope, 'mysql pool checkout', 'db', 'checkout', targetOf(this, this.config?.connectionConfig), undefined);
    const bound = finishThenCall(seg, scope, cb as Callback) as Callback & { [BOUND]?: true };
    bound[BOUND] = true;
    return original.call(this, bound);
  };
}

export const mysql2: ModuleInstrumentation = {
  module: 'mysql2',
  majors: [3],
  files: {
    'lib/base/connection.js'(exports: Exports) {
      const proto = (exports as unknown as { prototype: { query: Callback; execute: Callback } }).prototype;
      wrapMethod(proto, 'query', wrapCall);
      wrapMethod(proto, 'execute', wrapCall);
    },
    'lib/base/pool.js'(exports: Exports) {
      wrapMethod((exports as unknown as { prototype: { getConnection: Callback } }).prototype, 'getConnection', wrapGetConnection);
    },
  },
};
