// Scenario "hello": the smallest possible handler, so the agent's fixed cost per request shows.
import { serve } from './harness.js';

serve((_req, res) => {
  res.end('hello world\n');
});
