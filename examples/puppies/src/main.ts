// Starts the puppy service (and, unless UPSTREAM_URL is set, its upstream in the same process).
//   node --import loopscope/register dist/src/main.js
import type { AddressInfo } from 'node:net';
import { createApp } from './app.js';
import { openKennel } from './kennel.js';
import { startUpstream } from './upstream.js';

const upstream = process.env.UPSTREAM_URL ?? (await startUpstream()).url;
// PUPPIES_POSTGRES / PUPPIES_REDIS: where the kennel keeps its records (see kennel.ts for the defaults)
const kennel = await openKennel({ postgres: process.env.PUPPIES_POSTGRES, redis: process.env.PUPPIES_REDIS });
const app = createApp({ upstream, kennel });

app.listen(Number(process.env.PORT ?? 4500), '127.0.0.1', () => {
  const { port } = app.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  console.log(`puppies:  ${url}  (/async /sync /sequential /concurrent /chores /feed /health)`);
  console.log(`kennel:   feedings in ${kennel.database}, favourite food ${kennel.cached ? 'cached in Redis' : 'not cached (Redis not reachable)'}`);
  console.log(`upstream: ${upstream}`);
  console.log(`traffic:  node dist/src/traffic.js ${url}`);
});
