// The whole test suite, in two tiers, from every workspace's compiled tests (npm run build first).
//
// 1. The unit tier: test/unit/*.test.ts of every workspace. Pure logic with fixed inputs: no
//    service, no network, no child process (scripts/unit-guard.mjs makes any of them throw). All
//    files in one run; it takes seconds.
// 2. The rest: every other test/*.test.ts, one file at a time (the timing tests measure the event
//    loop and must not share the machine with each other). They need PostgreSQL, MariaDB, Redis,
//    RabbitMQ, NATS and Chromium (see .ci/run). Run only when the unit tier passed.
//
// `node scripts/test.mjs unit` runs the unit tier alone (npm run test:unit).
// Test files are found from the sources, so a test moved or deleted leaves no stale dist/ file behind.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

const tiers = process.argv.slice(2);
if (tiers.some((t) => t !== 'unit')) {
  console.error(`usage: node scripts/test.mjs [unit]  (got ${tiers.join(' ')})`);
  process.exit(2);
}

const { workspaces } = JSON.parse(readFileSync('package.json', 'utf8'));
/** dist/<dir>/*.test.js of every workspace whose <dir>/*.test.ts exists */
const compiled = (dir) =>
  workspaces
    .filter((w) => existsSync(`${w}/${dir}`))
    .flatMap((w) =>
      readdirSync(`${w}/${dir}`)
        .filter((f) => f.endsWith('.test.ts'))
        .map((f) => `${w}/dist/${dir}/${f.replace(/\.ts$/, '.js')}`),
    );

// agents started by the tests ship nowhere unless a test points them at its own collector
const env = { ...process.env, LOOPSCOPE_COLLECTOR: 'off' };
const run = (files, args) => {
  const missing = files.filter((f) => !existsSync(f));
  if (missing.length) {
    console.error(`not built: ${missing.join(', ')} (run npm run build)`);
    return 1;
  }
  return spawnSync(process.execPath, [...args, '--test', ...files], { stdio: 'inherit', env }).status ?? 1;
};

const unit = compiled('test/unit');
const started = performance.now();
const unitStatus = run(unit, ['--import', './scripts/unit-guard.mjs', '--test-timeout=30000']);
console.log(`unit tier: ${unit.length} files, ${((performance.now() - started) / 1000).toFixed(1)} s${unitStatus ? ', failed' : ''}`);
if (unitStatus || tiers.includes('unit')) process.exit(unitStatus);

process.exit(run(compiled('test'), ['--test-concurrency=1', '--test-timeout=120000']));
