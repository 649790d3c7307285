// The puppy service from Amy Boyle's talk "Monitoring Asynchronous Applications".
// Human = CPU, puppy = request, feeding = I/O, cuddling = CPU.
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { wrap } from 'loopscope';
import type { Kennel } from './kennel.js';

type Handler = (res: http.ServerResponse) => void | Promise<void>;
type Callback = (err?: Error) => void;

/** Keeps the CPU (and so the event loop) busy for `ms` milliseconds. */
export function burn(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

export function createApp(opts: { upstream: string; kennel?: Kennel }): http.Server {
  const { upstream, kennel } = opts;

  async function fetchText(path: string): Promise<string> {
    const res = await fetch(new URL(path, upstream));
    if (!res.ok) throw new Error(`upstream ${path}: HTTP ${res.status}`);
    return res.text();
  }

  // Callback style, as the talk's third-party APIs that take a callback.
  function callUpstream(path: string, cb: Callback): void {
    http
      .get(new URL(path, upstream), (res) => {
        res.on('end', () => cb()).resume();
      })
      .on('error', cb);
  }
  const feedPuppy = (cb: Callback) => callUpstream('/delay/30', cb);
  const doDishes = (cb: Callback) => callUpstream('/delay/120', cb);
  const roombaRoom = (cb: Callback) => callUpstream('/delay/60', cb);

  const routes: Record<string, Handler> = {
    // Feed (I/O, the loop is free), answer, then cuddle (CPU after the response).
    '/async': async (res) => {
      await fetchText('/delay/200');
      res.end('Pup is full!\n');
      burn(10);
    },

    // Stand there while the puppy eats: nobody else is served meanwhile.
    '/sync': (res) => {
      burn(200);
      res.end('Pup is full!\n');
    },

    '/sequential': async (res) => {
      for (let i = 0; i < 10; i++) await fetchText('/delay/20');
      res.end('Fetched 10 pages, one after the other\n');
    },

    '/concurrent': async (res) => {
      await Promise.all(Array.from({ length: 10 }, () => fetchText('/delay/20')));
      res.end('Fetched 10 pages at once\n');
    },

    // The critical path slide: the slowest of three parallel chores decides when we are done.
    '/chores': (res) => {
      let thingsDone = 0;
      const thingDone: Callback = (err) => {
        if (err) return fail(res, err);
        thingsDone += 1;
        if (thingsDone === 3) res.end('All chores done\n');
      };
      feedPuppy(wrap(thingDone));
      doDishes(wrap(thingDone));
      roombaRoom(wrap(thingDone));
    },

    // Feeding with a memory: the favourite food from the cache (Redis), the bowl filled (I/O), and
    // the feeding written down (PostgreSQL or SQLite): http, cache and db time side by side.
    '/feed': async (res) => {
      const puppy = 1 + Math.floor(Math.random() * 10);
      const food = (await kennel?.favouriteFood()) ?? 'kibble';
      await fetchText('/delay/30');
      await kennel?.recordFeeding(puppy, 100);
      res.end(`Fed puppy ${puppy} some ${food}\n`);
    },

    '/health': (res) => {
      res.end('ok\n');
    },
  };

  return http.createServer(async (req, res) => {
    const { pathname } = new URL(req.url ?? '/', 'http://puppies');
    const handler = req.method === 'GET' ? routes[pathname] : undefined;
    if (!handler) {
      res.writeHead(404).end('Not found\n');
      return;
    }
    try {
      await handler(res);
    } catch (err) {
      fail(res, err);
    }
  });
}

function fail(res: http.ServerResponse, err: unknown): void {
  if (res.headersSent) return;
  res.writeHead(502).end(`Upstream failed: ${err instanceof Error ? err.message : String(err)}\n`);
}
