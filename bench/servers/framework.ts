// Scenario per framework: the example app of examples/frameworks/$FRAMEWORK (Express 4/5, Fastify
// 4/5, Koa 2/3), required as CommonJS, served by the harness. Knows nothing of any agent.
import { createRequire } from 'node:module';
import type http from 'node:http';
import { serve } from './harness.js';

const name = process.env.FRAMEWORK;
if (name === undefined || !/^[a-z]+\d$/.test(name)) throw new Error(`FRAMEWORK=${String(name)}: expected a folder of examples/frameworks`);
const require = createRequire(import.meta.url);
// the app's request listener (Fastify's is a promise of one)
const handler = (await require(`../../../examples/frameworks/${name}/handler.cjs`)) as http.RequestListener;
serve(handler);
