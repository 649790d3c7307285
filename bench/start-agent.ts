/**
 * `node --import bench/dist/start-agent.js server.js`: the agent started by hand, as
 * `loopscope.start()` does, for the overhead benchmark on a Node that `loopscope/register` does not
 * start on (20: `--nodes 20`), so that its figure can stand beside the supported lines'.
 */
import { start } from 'loopscope';

start();
