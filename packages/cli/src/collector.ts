/**
 * Starting the collector for `up` and `demo`: the system errors a user can cause with the flags
 * (a busy port, a --data that is not a directory, a --storage that is not there) become messages
 * that say what to do.
 */
import { ClickHouseError, DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT, startCollector, type Collector, type CollectorOptions } from '@loopscope/collector';

/** startCollector(options), its errors explained; any other error is thrown as it is. */
export async function startCollectorExplained(options: CollectorOptions): Promise<Collector> {
  const { port = DEFAULT_PORT, host = DEFAULT_HOST, dataDir = DEFAULT_DATA_DIR } = options;
  try {
    return await startCollector(options);
  } catch (err) {
    if (err instanceof ClickHouseError && err.code === null) throw new Error(`${err.message}: start it, or correct --storage`);
    const { code, syscall } = err as NodeJS.ErrnoException;
    if (syscall === 'mkdir' || syscall === 'open') {
      if (code === 'EEXIST' || code === 'ENOTDIR') throw new Error(`--data must be a directory (it is created if missing), and ${dataDir} is a file or lies under one`);
      if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') throw new Error(`cannot create the data directory ${dataDir} (${code}): choose one you may write to with --data`);
    }
    // the port that failed: the collector's, or the OTLP port
    const failed = (err as { port?: number }).port ?? port;
    const flag = options.otlpPort !== undefined && failed === options.otlpPort && failed !== port ? '--otlp-port' : '--port';
    if (code === 'EADDRINUSE') throw new Error(`port ${failed} on ${host} is already in use: stop what listens there, or choose another port with ${flag}`);
    if (code === 'EACCES') throw new Error(`not allowed to listen on ${host}:${failed}: choose a port above 1023 with ${flag}`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new Error(`cannot listen on host ${host}: it is not an address of this machine`);
    throw err;
  }
}
