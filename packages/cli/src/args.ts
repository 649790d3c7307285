/** What every subcommand needs to read its flags, and the error that means "you typed it wrong". */
import { DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT } from '@loopscope/collector';

/** A mistake in the command line: main prints the message and the command's usage, and exits 2. */
export class UsageError extends Error {}

/** parseArgs' own errors (unknown flag, missing value) are usage errors too. */
export function isUsageError(err: unknown): err is Error {
  return err instanceof UsageError || (err instanceof TypeError && String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS'));
}

export function parsePort(raw: string, flag = '--port'): number {
  const port = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
  if (!(port >= 0 && port <= 65535)) throw new UsageError(`${flag} must be a port number from 0 to 65535 (0 picks a free one), not ${JSON.stringify(raw)}`);
  return port;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "90s", "15m", "2h", "7d", "500ms" → ms. */
export function parseDuration(raw: string, flag: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(raw.trim());
  const ms = m ? Number(m[1]) * UNITS[m[2]!]! : NaN;
  if (!(ms > 0)) throw new UsageError(`${flag} must be a duration such as 90s, 15m, 2h or 7d, not ${JSON.stringify(raw)}`);
  return ms;
}

/** The flags of every command that starts a collector. */
export const COLLECTOR_FLAGS = {
  port: { type: 'string', default: String(DEFAULT_PORT) },
  host: { type: 'string', default: DEFAULT_HOST },
  data: { type: 'string', default: DEFAULT_DATA_DIR },
} as const;
