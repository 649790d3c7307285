/**
 * The libraries the agent patches through module hooks (./modules.ts), one file each. Libraries that
 * publish diagnostics channels (node:http, undici's fetch, Fastify, node-redis's commands) subscribe instead and
 * are not listed here.
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
