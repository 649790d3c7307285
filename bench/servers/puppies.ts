// Scenario "puppies": the puppy service's /async endpoint (examples/puppies) — feed (a fetch to an
// upstream that answers after 200 ms), answer, then cuddle (10 ms of CPU after the response).
// The cuddle is a fixed amount of work (BENCH_SPIN_PER_MS, set by the driver), not the example's
// busy-wait by the clock: CPU the agent takes while it runs then makes the request longer instead
// of being absorbed by the wait, so the server's throughput shows what the agent costs.
import { burn, serve } from './harness.js';

const feed = new URL('/delay/200', process.env.UPSTREAM_URL);

serve(async (_req, res) => {
  try {
    const answer = await fetch(feed);
    await answer.text();
    if (!answer.ok) throw new Error(`upstream: HTTP ${answer.status}`);
    res.end('Pup is full!\n');
    burn(10);
  } catch (err) {
    res.writeHead(502).end(String(err));
  }
});
