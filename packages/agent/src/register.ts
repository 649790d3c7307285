/**
 * Zero-code start: `node --import loopscope/register app.js` (ESM or CommonJS app) or
 * `node --require loopscope/register app.cjs`. Configuration comes from the environment (the
 * LOOPSCOPE_* variables of the README's table, read by config.ts).
 */
import { createRequire } from 'node:module';
import { isMainThread } from 'node:worker_threads';
import { supportedNode, unsupportedNodeMessage } from './config.js';

try {
  // Preloads under --require run in every thread, Node's module-hooks thread included (the agent
  // registers import-in-the-middle's loader, which starts that thread): the agent watches the main
  // thread only, and is loaded in no other (loading it there too made the main thread wait some
  // 50 ms longer for the hooks thread to start).
  if (isMainThread) {
    // On a Node.js it does not support, the agent is not loaded at all: one warning, and the app
    // runs as without it.
    if (supportedNode(process.version)) {
      // what the agent costs in memory counts from before it was loaded
      const rss = process.memoryUsage.rss();
      const agent = createRequire(import.meta.url)('./agent.js') as typeof import('./agent.js');
      agent.loadedFrom(rss);
      agent.start();
    } else process.emitWarning(unsupportedNodeMessage(process.version), { code: 'LOOPSCOPE_UNSUPPORTED_NODE' });
  }
} catch (error) {
  // the app starts whatever happens to the agent
  process.emitWarning(`loopscope: the agent did not start: ${String(error)}`);
}
