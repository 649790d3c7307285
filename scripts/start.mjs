// `npm start`: the puppies demo with the agent, and traffic driven at it.
// The collector and its dashboard arrive with the collector issue; until then the agent's records
// are printed here as they finish.
import { spawn } from 'node:child_process';

const port = process.env.PORT ?? '4500';
const upstreamPort = process.env.UPSTREAM_PORT ?? '4401';
// the outside world in a process of its own, so that its work is not on the app's event loop
const upstream = spawn(process.execPath, ['examples/puppies/dist/src/upstream.js'], { env: { ...process.env, PORT: upstreamPort }, stdio: 'inherit' });
console.log('loopscope: the collector is coming (next issue); printing what the agent measures meanwhile.');
const app = spawn(process.execPath, ['--import', 'loopscope/register', '--import', './scripts/print-transactions.mjs', 'examples/puppies/dist/src/main.js'], {
  env: { ...process.env, PORT: port, UPSTREAM_URL: `http://127.0.0.1:${upstreamPort}`, LOOPSCOPE_SERVICE: process.env.LOOPSCOPE_SERVICE ?? 'puppies' },
  stdio: 'inherit',
});
const traffic = spawn(process.execPath, ['examples/puppies/dist/src/traffic.js', `http://127.0.0.1:${port}`], { stdio: 'inherit' });
const stop = () => {
  app.kill();
  traffic.kill();
  upstream.kill();
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
app.on('exit', (code) => {
  traffic.kill();
  upstream.kill();
  process.exit(code ?? 0);
});
