/**
 * The libraries the agent patches through module hooks (./modules.ts), one file each. Not listed
 * here, because no module hook is needed for them: what the agent follows through diagnostics
 * channels (outbound node:http requests, the end of a fetch, Fastify, node-redis's commands) and
 * Node's own objects it wraps in place when it starts (the node:http and node:https servers, the
 * global fetch, the timers). docs/instrumentation.md lists them all.
 */
import { express4, router2 } from './express.js';
import { koa, koaRouter } from './koa.js';
import type { ModuleInstrumentation } from './modules.js';
import { amqplib } from './amqplib.js';
import { ioredis } from './ioredis.js';
import { mysql2 } from './mysql2.js';
import { nats } from './nats.js';
import { pg, pgPool } from './pg.js';
import { redisPool } from './redis.js';

export const libraries: readonly ModuleInstrumentation[] = [express4, router2, koa, koaRouter, pg, pgPool, mysql2, ioredis, redisPool, amqplib, nats];
