// Starts the puppy service (and, unless UPSTREAM_URL is set, its upstream in the same process).
//   node --import loopscope/register dist/src/main.js
import type { AddressInfo } from 'node:net';
import { createApp } from './app.js';
import { startUpstream } from './upstream.js';

const upstream = process.env.UPSTREAM_URL ?? (await startUpstream()).url;
const app = createApp({ upstream });

app.listen(Number(process.env.PORT ?? 4500), '127.0.0.1', () => {
  const { port } = app.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  console.log(`puppies:  ${url}  (/async /sync /sequential /concurrent /chores /health)`);
  console.log(`upstream: ${upstream}`);
  console.log(`traffic:  node dist/src/traffic.js ${url}`);
});
