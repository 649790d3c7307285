/** What every subcommand needs to read its flags, and the error that means "you typed it wrong". */
import { readFileSync } from 'node:fs';
import { DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT } from '@loopscope/collector';
import { durationMs } from '@loopscope/protocol';

/** A mistake in the command line: main prints the message and the command's usage, and exits 2. */
export class UsageError extends Error {}

/** parseArgs' own errors (unknown flag, missing value) are usage errors too. */
export function isUsageError(err: unknown): err is Error {
  return err instanceof UsageError || (err instanceof TypeError && String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS'));
}

/**
 * The command line with a negative number after a flag joined to it (`--rps -5` → `--rps=-5`), for
 * parseArgs: it takes `-5` for a flag and answers three lines on ambiguity; joined, the flag's own
 * check says what is wrong with the value.
 */
export function joinNegatives(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = argv[i + 1];
    if (arg.startsWith('--') && !arg.includes('=') && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

export function parsePort(raw: string, flag = '--port'): number {
  const port = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
  if (!(port >= 0 && port <= 65535)) throw new UsageError(`${flag} must be a port number from 0 to 65535 (0 picks a free one), not ${JSON.stringify(raw)}`);
  return port;
}

/** "90s", "15m", "2h", "7d", "500ms" → ms. */
export function parseDuration(raw: string, flag: string): number {
  const ms = durationMs(raw);
  if (ms === undefined) throw new UsageError(`${flag} must be a duration such as 90s, 15m, 2h or 7d, not ${JSON.stringify(raw)}`);
  return ms;
}

/** The flags of every command that starts a collector. */
export const COLLECTOR_FLAGS = {
  port: { type: 'string', default: String(DEFAULT_PORT) },
  host: { type: 'string', default: DEFAULT_HOST },
  data: { type: 'string', default: DEFAULT_DATA_DIR },
} as const;

/** `--listen PORT` or `--listen HOST:PORT` (IPv6 in brackets); the host defaults to 127.0.0.1. */
export function parseListen(raw: string | undefined): { host: string; port: number } {
  if (raw === undefined) throw new UsageError('--listen is required: the port the proxy listens on, e.g. --listen 8080');
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(.+)$/.exec(raw);
  if (m === null) return { host: DEFAULT_HOST, port: parsePort(raw, '--listen') };
  return { host: m[1] ?? m[2]!, port: parsePort(m[3]!, '--listen') };
}

/** An http(s) URL given as `name` (a flag, or "the URL"): the proxy's target, the probe's URL. */
export function parseHttpUrl(raw: string | undefined, name: string, example: string): URL {
  if (raw === undefined) throw new UsageError(`${name} is required, e.g. ${example}`);
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    // said below
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new UsageError(`${name} must be an http:// or https:// URL such as ${example.split(' ').pop()}, not ${JSON.stringify(raw)}`);
  }
  return url;
}

/** `--collector`: a collector's base URL or `off`; by default LOOPSCOPE_COLLECTOR, then the local one. */
export function parseCollector(raw: string | undefined): string {
  const value = raw ?? (process.env.LOOPSCOPE_COLLECTOR || `http://${DEFAULT_HOST}:${DEFAULT_PORT}`);
  if (value === 'off') return value;
  const flag = raw === undefined ? 'LOOPSCOPE_COLLECTOR' : '--collector';
  try {
    const url = new URL(value);
    if (url.protocol === 'http:' || url.protocol === 'https:') return value;
  } catch {
    // said below
  }
  throw new UsageError(`${flag} must be the collector's http:// URL (e.g. http://127.0.0.1:4400) or off, not ${JSON.stringify(value)}`);
}

/** `--service`: 1 to 256 characters, as the wire format wants. */
export function parseService(raw: string): string {
  if (raw.length === 0 || raw.length > 256) throw new UsageError(`--service must be a name of 1 to 256 characters, not ${JSON.stringify(raw)}`);
  return raw;
}

/** Resolves on the first SIGINT or SIGTERM. */
export function untilSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
}

/** The content of a file a flag or variable names (a token, a certificate), or a UsageError that says which and why. */
export function readNamedFile(file: string, source: string): Buffer {
  let content: Buffer;
  try {
    content = readFileSync(file);
  } catch (err) {
    throw new UsageError(`${source}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (content.length === 0) throw new UsageError(`${source}: ${file} is empty`);
  return content;
}

/**
 * A token from the first of its flag, its file flag, its variable and its variable's file that is
 * given (`--read-token`, `--read-token-file`, LOOPSCOPE_READ_TOKEN, LOOPSCOPE_READ_TOKEN_FILE); a
 * file's content without the line end after it. A file keeps the token out of `ps`.
 */
export function readToken(flag: string, values: { value?: string | undefined; file?: string | undefined }, variable: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (values.value !== undefined && values.file !== undefined) throw new UsageError(`--${flag} and --${flag}-file exclude each other`);
  if (values.value !== undefined) return nonEmpty(values.value, `--${flag}`);
  if (values.file !== undefined) return fromFile(values.file, `--${flag}-file`);
  if (env[variable]) return env[variable];
  if (env[`${variable}_FILE`]) return fromFile(env[`${variable}_FILE`]!, `${variable}_FILE`);
  return undefined;
}

function nonEmpty(token: string, source: string): string {
  if (token.length === 0) throw new UsageError(`${source} is empty`);
  return token;
}

const fromFile = (file: string, source: string): string => nonEmpty(readNamedFile(file, source).toString('utf8').replace(/\r?\n$/, ''), `${source}: ${file}`);
