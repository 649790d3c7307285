/**
 * PostgreSQL through `pg` (node-postgres): every `client.query` (and so `pool.query`) is a segment
 * of kind `db`, and every `pool.connect` — the wait for a pooled client, including opening a new
 * connection — is one of its own (`checkout`, kind `db`; docs/instrumentation.md says why).
 * `lib/client.js` is patched rather than the entry, so `import pg from 'pg'` (its ESM wrapper
 * loads the same CommonJS file) and `require('pg')` are both seen.
 */
import { activeScope, callOutside, finishOnEnd, finishOnSettle, finishThenCall, startCall } from './calls.js';
import { wrapMethod, type Exports, type ModuleInstrumentation } from './modules.js';
import { sqlOperation, StatementCache } from './statement.js';
import type { Scope } from '../transaction.js';

const TARGET = Symbol('loopscope.target');

type Callback = (...args: any[]) => unknown;

interface PgClient {
  [TARGET]?: string;
  host?: string;
  port?: number;
  database?: string;
}

interface Submittable {
  submit: unknown;
  text?: unknown;
  callback?: Callback;
  once(event: string, listener: Callback): unknown;
}

interface PgPool {
  [TARGET]?: string;
  options?: { host?: string; port?: number; database?: string; connectionString?: string };
}

const statements = new StatementCache('postgres');

const target = (host: string | undefined, port: number | string | undefined, database: string | undefined): string => `${host || 'localhost'}:${port || 5432}/${database ?? ''}`;

/** A pool knows its options only: host, port and database, or a connection string. */
function poolTarget(pool: PgPool): string {
  const o = pool.options ?? {};
  if (typeof o.connectionString === 'string') {
    try {
      const url = new URL(o.connectionString);
      return target(url.hostname, url.port, decodeURIComponent(url.pathname.slice(1)));
    } catch {
      // not a URL (a libpq keyword string): the options' own fields below
    }
  }
  return target(o.host, o.port, o.database);
}

function wrapQuery(original: Callback): Callback {
  return function query(this: PgClient, config: unknown, values?: unknown, callback?: unknown): unknown {
    const scope = activeScope();
    const text = typeof config === 'string' ? config : (config as { text?: unknown } | null)?.text;
    if (scope === undefined || typeof text !== 'string') return original.call(this, config, values, callback);
    const statement = statements.get(text);
    const operation = sqlOperation(statement);
    const seg = startCall(scope, `postgres ${operation}`, 'db', operation, (this[TARGET] ??= target(this.host, this.port, this.database)), statement);
    try {
      if (typeof values === 'function') return original.call(this, config, finishThenCall(seg, scope, values as Callback));
      if (typeof callback === 'function') return original.call(this, config, values, finishThenCall(seg, scope, callback as Callback));
      const submittable = config !== null && typeof config === 'object' && typeof (config as Submittable).submit === 'function' ? (config as Submittable) : undefined;
      if (submittable !== undefined) {
        if (typeof submittable.callback === 'function') submittable.callback = finishThenCall(seg, scope, submittable.callback);
        else finishOnEnd(submittable, seg); // pg-cursor, pg-query-stream, a Query without callback
        return original.call(this, config, values, callback);
      }
      return finishOnSettle(original.call(this, config, values, callback), seg);
    } catch (error) {
      seg.finish(error);
      throw error;
    }
  };
}

function wrapConnect(original: Callback): Callback {
  return function connect(this: PgPool, callback?: unknown): unknown {
    const scope: Scope | undefined = activeScope();
    if (scope === undefined) return original.call(this, callback);
    const seg = startCall(scope, 'postgres pool checkout', 'db', 'checkout', (this[TARGET] ??= poolTarget(this)), undefined);
    // the client comes from whoever released it: the callback goes back to the caller's context
    if (typeof callback === 'function') return original.call(this, finishThenCall(seg, scope, callback as Callback));
    return finishOnSettle(original.call(this), seg);
  };
}

/** Releasing a client is the pool's business: its idle timer must not keep the releasing request open. */
function wrapRelease(original: Callback): Callback {
  return function _release(this: unknown, ...args: unknown[]): unknown {
    return callOutside(original, this, args);
  };
}

export const pg: ModuleInstrumentation = {
  module: 'pg',
  majors: [8],
  files: {
    'lib/client.js'(exports: Exports) {
      wrapMethod((exports as unknown as { prototype: { query: Callback } }).prototype, 'query', wrapQuery);
    },
  },
};

/** pg's Pool is pg-pool's, a package of its own: checkout is patched there. */
export const pgPool: ModuleInstrumentation = {
  module: 'pg-pool',
  majors: [3],
  patch(exports: Exports) {
    const proto = (exports as unknown as { prototype: { connect: Callback; _release: Callback } }).prototype;
    wrapMethod(proto, 'connect', wrapConnect);
    wrapMethod(proto, '_release', wrapRelease);
  },
};
