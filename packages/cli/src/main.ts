#!/usr/bin/env node
/**
 * The `loopscope` command. Each subcommand lives in a module of its own that exports a runner
 * (argv after the subcommand's name) and its usage text; this file only dispatches.
 */
import { isUsageError } from './args.js';
import { DEMO_USAGE, runDemo } from './demo.js';
import { PROBE_USAGE, runProbe } from './probe.js';
import { PROXY_USAGE, runProxy } from './proxy.js';
import { UP_USAGE, runUp } from './up.js';

interface Command {
  run(argv: string[]): Promise<void>;
  usage: string;
}

const COMMANDS: Record<string, Command> = {
  up: { run: runUp, usage: UP_USAGE },
  demo: { run: runDemo, usage: DEMO_USAGE },
  proxy: { run: runProxy, usage: PROXY_USAGE },
  probe: { run: runProbe, usage: PROBE_USAGE },
};

const USAGE = `usage: loopscope <command> [options]

${Object.values(COMMANDS)
  .map((c) => c.usage)
  .join('\n\n')}`;

// the command's own warnings (the exporter's: its collector cannot be reached, refuses, took it
// back) are lines of its output, without Node's "(node:PID) Warning:" and its --trace-warnings hint
process.removeAllListeners('warning');
process.on('warning', (w) => process.stderr.write(`${w.name === 'Warning' ? '' : `${w.name}: `}${w.message}\n`));

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === 'help' || name === '--help' || name === '-h') {
    console.log(USAGE);
    return 0;
  }
  const command = name === undefined ? undefined : COMMANDS[name];
  if (!command) {
    console.error(`loopscope: ${name === undefined ? 'no command given' : `unknown command "${name}"`}\n\n${USAGE}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.usage);
    return 0;
  }
  try {
    await command.run(rest);
    return 0;
  } catch (err) {
    if (isUsageError(err)) {
      console.error(`loopscope ${name}: ${err.message}\n\n${command.usage}`);
      return 2;
    }
    console.error(`loopscope ${name}: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
