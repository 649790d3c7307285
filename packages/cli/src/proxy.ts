/**
 * `loopscope proxy`: the measuring reverse proxy in the foreground (blackbox/proxy-server.ts). Prints
 * one line on stdout when it is ready; SIGINT or SIGTERM stops it: it stops accepting, lets the
 * requests in flight finish, and ships what it measured (at most 2 s more).
 */
import { parseArgs } from 'node:util';
import { Recorder } from './blackbox/recorder.js';
import { startProxy } from './blackbox/proxy-server.js';
import { joinNegatives, parseCollector, parseHttpUrl, parseListen, parseService, untilSignal } from './args.js';

export const PROXY_USAGE = `loopscope proxy --listen [HOST:]PORT --target URL [--service NAME] [--collector URL]
  A reverse proxy in front of any HTTP server (an app that cannot load the agent): forwards every
  request to URL (bodies streamed, keep-alive, WebSocket upgrades, X-Forwarded-* headers) and
  records its response time (first and last byte), status and bytes, named by endpoint like the
  agent names them. cpu, external and blocking cannot be seen from outside: they show as unknown.
  A target that does not answer gets a 502 that says why, recorded as an error. HOST defaults to
  127.0.0.1; --service to <target host>-proxy; --collector to LOOPSCOPE_COLLECTOR or
  http://127.0.0.1:4400 (\`off\` ships nothing).`;

export async function runProxy(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: joinNegatives(argv),
    options: { listen: { type: 'string' }, target: { type: 'string' }, service: { type: 'string' }, collector: { type: 'string' } },
    strict: true,
    allowPositionals: false,
  });
  const { host, port } = parseListen(values.listen);
  const target = parseHttpUrl(values.target, '--target', '--target http://127.0.0.1:3000');
  const service = values.service === undefined ? `${target.host}-proxy` : parseService(values.service);
  const collector = parseCollector(values.collector);
  const recorder = new Recorder({ service, collector, sender: 'loopscope-proxy' });
  let proxy;
  try {
    proxy = await startProxy({ port, host, target, recorder });
  } catch (err) {
    await recorder.close();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new Error(`port ${port} on ${host} is already in use: choose another with --listen`);
    if (code === 'EACCES') throw new Error(`not allowed to listen on ${host}:${port}: choose a port above 1023 with --listen`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new Error(`cannot listen on host ${host}: it is not an address of this machine`);
    throw err;
  }
  console.log(`loopscope proxy listening on ${proxy.url}, forwarding to ${target.origin}, service "${service}"`);
  await untilSignal();
  await proxy.close();
  await recorder.close();
}
