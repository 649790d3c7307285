/**
 * The libraries the agent patches through module hooks (./modules.ts), one file each. Libraries that
 * publish diagnostics channels (node:http, undici's fetch, Fastify) subscribe instead and are not listed here.
 */
import { express4, router2 } from './express.js';
import { koa, koaRouter } from './koa.js';
import type { ModuleInstrumentation } from './modules.js';

export const libraries: readonly ModuleInstrumentation[] = [express4, router2, koa, koaRouter];
