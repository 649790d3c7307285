/**
 * Zero-code start: `node --import loopscope/register app.js` (ESM or CommonJS app) or
 * `node --require loopscope/register app.cjs`. Configuration comes from the environment (GUIDE 3.1).
 */
import { start } from './agent.js';

try {
  start();
} catch (error) {
  // the app starts whatever happens to the agent
  process.emitWarning(`loopscope: the agent did not start: ${String(error)}`);
}
