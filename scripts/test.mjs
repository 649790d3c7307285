// The whole test suite: every workspace's compiled tests, one file at a time (the timing tests
// measure the event loop and must not share the machine with each other).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

const { workspaces } = JSON.parse(readFileSync('package.json', 'utf8'));
const files = workspaces
  .map((w) => `${w}/dist/test`)
  .filter((dir) => existsSync(dir))
  .flatMap((dir) => readdirSync(dir).filter((f) => f.endsWith('.test.js')).map((f) => `${dir}/${f}`));
// agents started by the tests ship nowhere unless a test points them at its own collector
const env = { ...process.env, LOOPSCOPE_COLLECTOR: 'off' };
const result = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=120000', ...files], { stdio: 'inherit', env });
process.exit(result.status ?? 1);
