// One service of the trace-completeness benchmark's chain: each request calls NEXT_URL (if set)
// over node:http with a kept-alive agent, burns `burn` ms of CPU, then answers; `?fail=1` answers
// 500. Prints its port over IPC like the other benchmark servers.
import http from 'node:http';
import { burn, serve } from './harness.js';

const next = process.env.NEXT_URL;
const cpuMs = Number(process.env.BURN_MS ?? 0.2);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

function call(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    http.get(url, { agent }, (res) => res.on('end', resolve).on('error', reject).resume()).on('error', reject);
  });
}

serve(async (req, res) => {
  try {
    if (next !== undefined) await call(`${next}${req.url ?? '/'}`);
    burn(cpuMs);
    res.statusCode = req.url?.includes('fail=1') === true ? 500 : 200;
    res.end('done');
  } catch (error) {
    res.writeHead(502).end(String(error));
  }
});
