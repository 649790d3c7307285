/**
 * Zero-code start: `node --import loopscope/register app.js` (ESM or CommonJS app) or
 * `node --require loopscope/register app.cjs`. Configuration comes from the environment (the
 * LOOPSCOPE_* variables of the README's table, read by config.ts).
 */
import { isMainThread } from 'node:worker_threads';
import { start } from './agent.js';

try {
  // Preloads run in every thread, Node's module-hooks thread included (the agent registers
  // import-in-the-middle's loader, which starts that thread, which would start an agent of its own
  // under --require): the agent watches the main thread only.
  if (isMainThread) start();
} catch (error) {
  // the app starts whatever happens to the agent
  process.emitWarning(`loopscope: the agent did not start: ${String(error)}`);
}
