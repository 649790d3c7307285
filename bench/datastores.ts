/**
 * # Data-store instrumentation overhead
 *
 * What it measures: the client process's CPU time per call (process.cpuUsage() over the measured
 * calls divided by their number) and its throughput, for each instrumented library, in three
 * variants of the same child process:
 *
 *   none       LOOPSCOPE_ENABLED=false: no agent at all
 *   agent      the agent running, every call inside a transaction, but the library loaded *before*
 *              the agent started, so it is not patched (what the agent costs without this work)
 *   patched    the same with the library loaded after the agent: every call is a segment
 *
 * The instrumentation's own cost is `patched` against `agent`; `none` is for reference (node-redis
 * is seen through its `node-redis:command` channel, which the agent subscribes to however the library
 * was loaded: its `agent` and `patched` are the same, and its cost is in `patched` against `none`
 * together with the agent's own). Each call
 * is a transaction of its own (a request making one call), 32 in flight. Workloads: pg
 * `pool.query('SELECT 1')` (pool of 4), mysql2 `pool.query('SELECT 1')` (pool of 4), ioredis and
 * node-redis `GET`, amqplib `sendToQueue` (a small message), nats `publish` (flushed at the end).
 *
 * Runs are interleaved (for each round, for each library, the three variants in rotating order),
 * each run a fresh process with a warm-up of 1000 calls; the table shows the medians over the
 * rounds and, as the noise, the spread (max-min over median) of the CPU per call of `agent` or
 * `patched`, whichever is larger. The database servers run on the same 2 vCPUs: throughput is
 * noisy, CPU per call less so.
 *
 * Run (from the repository root, after `npm run build`; the services on 127.0.0.1 as for the tests):
 *   npm run bench:datastores                         5 rounds, 5000 calls per run (about a minute)
 *   node bench/dist/datastores.js --rounds 3 --calls 20000 --libs pg,ioredis
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const LIBS = ['pg', 'mysql2', 'ioredis', 'redis', 'amqplib', 'nats'] as const;
type Lib = (typeof LIBS)[number];
const VARIANTS = ['none', 'agent', 'patched'] as const;
type Variant = (typeof VARIANTS)[number];
const IN_FLIGHT = 32;
const WARMUP = 1000;

interface Sample {
  cpuUsPerCall: number;
  callsPerSecond: number;
}

/** What one call and its setup are, per library: `open` returns the call and the closer. */
async function open(lib: Lib): Promise<{ call(): Promise<unknown>; close(): Promise<unknown> }> {
  switch (lib) {
    case 'pg': {
      const { default: pg } = await import('pg');
      const pool = new pg.Pool({ host: '127.0.0.1', user: 'postgres', database: 'test', max: 4 });
      return { call: () => pool.query('SELECT 1'), close: () => pool.end() };
    }
    case 'mysql2': {
      const { default: mysql } = await import('mysql2/promise');
      const pool = mysql.createPool({ host: '127.0.0.1', user: 'root', password: '', database: 'test', connectionLimit: 4 });
      return { call: () => pool.query('SELECT 1'), close: () => pool.end() };
    }
    case 'ioredis': {
      const { Redis } = await import('ioredis');
      const redis = new Redis({ host: '127.0.0.1' });
      return { call: () => redis.get('loopscope:bench'), close: () => redis.quit() };
    }
    case 'redis': {
      const { createClient } = await import('redis');
      const client = await createClient({ socket: { host: '127.0.0.1', port: 6379 } }).connect();
      return { call: () => client.get('loopscope:bench'), close: () => client.quit() };
    }
    case 'amqplib': {
      const { default: amqp } = await import('amqplib');
      const conn = await amqp.connect('amqp://guest:guest@127.0.0.1:5672');
      const channel = await conn.createChannel();
      const queue = `loopscope-bench-${process.pid}`;
      await channel.assertQueue(queue, { autoDelete: false });
      const body = Buffer.from('puppy');
      return {
        call: async () => channel.sendToQueue(queue, body),
        close: async () => {
          await channel.deleteQueue(queue);
          await conn.close();
        },
      };
    }
    case 'nats': {
      const { connect } = await import('nats');
      const nc = await connect({ servers: '127.0.0.1:4222' });
      const body = new TextEncoder().encode('puppy');
      return {
        call: async () => nc.publish('loopscope.bench', body),
        close: async () => {
          await nc.flush();
          await nc.close();
        },
      };
    }
  }
}

/** The child: one variant of one library, `calls` measured calls; prints a Sample as JSON. */
async function child(lib: Lib, variant: Variant, calls: number): Promise<void> {
  const loopscope = await import('loopscope');
  // 'agent': the library is loaded before the agent starts, so it stays unpatched
  if (variant === 'agent') await open(lib).then((c) => c.close());
  if (variant !== 'none') loopscope.start({ service: 'bench-datastores', collector: 'off' });
  const { call, close } = await open(lib);
  const run = async (n: number): Promise<void> => {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next++ < n) await loopscope.transaction('bench call', call);
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  };
  await run(WARMUP);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await run(calls);
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await close();
  const sample: Sample = { cpuUsPerCall: (cpu.user + cpu.system) / calls, callsPerSecond: (calls / wall) * 1000 };
  process.stdout.write(`${JSON.stringify(sample)}\n`);
  await loopscope.shutdown();
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function driver(libs: Lib[], rounds: number, calls: number): void {
  const samples = new Map<string, Sample[]>();
  const self = fileURLToPath(import.meta.url);
  for (let round = 0; round < rounds; round++) {
    for (const lib of libs) {
      // rotate the order so that no variant always runs first
      const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]!);
      for (const variant of order) {
        const env = { ...process.env, LOOPSCOPE_COLLECTOR: 'off', LOOPSCOPE_ENABLED: variant === 'none' ? 'false' : 'true' };
        const out = spawnSync(process.execPath, [self, '--child', lib, variant, String(calls)], { env, encoding: 'utf8', timeout: 120_000 });
        if (out.status !== 0) throw new Error(`${lib} ${variant} failed: ${out.stderr}`);
        const key = `${lib} ${variant}`;
        samples.set(key, [...(samples.get(key) ?? []), JSON.parse(out.stdout.trim().split('\n').pop()!) as Sample]);
      }
      process.stderr.write('.');
    }
  }
  process.stderr.write('\n');
  const rows = libs.map((lib) => {
    const cpu = (v: Variant): number => median(samples.get(`${lib} ${v}`)!.map((s) => s.cpuUsPerCall));
    const rate = (v: Variant): number => median(samples.get(`${lib} ${v}`)!.map((s) => s.callsPerSecond));
    const spread = (v: Variant): number => {
      const xs = samples.get(`${lib} ${v}`)!.map((s) => s.cpuUsPerCall);
      return (Math.max(...xs) - Math.min(...xs)) / median(xs);
    };
    return {
      library: lib,
      'µs/call none': cpu('none').toFixed(1),
      'µs/call unpatched': cpu('agent').toFixed(1),
      'µs/call patched': cpu('patched').toFixed(1),
      // node-redis is seen through its tracing channel, subscribed to whenever the agent runs: no unpatched variant
      'patch +µs/call': lib === 'redis' ? 'n/a' : (cpu('patched') - cpu('agent')).toFixed(1),
      'patch +%': lib === 'redis' ? 'n/a' : `${(((cpu('patched') - cpu('agent')) / cpu('agent')) * 100).toFixed(1)} %`,
      'noise (spread)': `${(Math.max(spread('agent'), spread('patched')) * 100).toFixed(0)} %`,
      'calls/s none': rate('none').toFixed(0),
      'calls/s unpatched': rate('agent').toFixed(0),
      'calls/s patched': rate('patched').toFixed(0),
    };
  });
  console.log(`data-store instrumentation overhead: ${rounds} rounds × ${calls} calls per run, ${IN_FLIGHT} in flight, medians`);
  console.table(rows);
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { child: { type: 'boolean' }, rounds: { type: 'string', default: '5' }, calls: { type: 'string', default: '5000' }, libs: { type: 'string', default: LIBS.join(',') } },
});
if (values.child) await child(positionals[0] as Lib, positionals[1] as Variant, Number(positionals[2]));
else driver(values.libs.split(',') as Lib[], Number(values.rounds), Number(values.calls));
