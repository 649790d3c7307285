// Scenario "async": three parallel outbound calls to an upstream that answers after 5 ms,
// then ~0.2 ms of handler CPU, then the response.
import http from 'node:http';
import { burn, serve } from './harness.js';

const upstream = new URL('/', process.env.UPSTREAM_URL);
const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

function call(): Promise<void> {
  return new Promise((resolve, reject) => {
    http
      .get(upstream, { agent }, (res) => {
        res.on('end', resolve).on('error', reject).resume();
      })
      .on('error', reject);
  });
}

serve(async (_req, res) => {
  try {
    await Promise.all([call(), call(), call()]);
    burn(0.2);
    res.end('done\n');
  } catch (err) {
    res.writeHead(502).end(String(err));
  }
});
