/**
 * One synthetic check: a GET of a URL on a new connection (as a first-time visitor makes it), timed
 * from the start to the connection, the status line (first byte) and the last byte of the body. A
 * check fails — an error with its reason — when it times out, the connection is refused or fails,
 * or the status is not the one expected; one that got no status line at all is recorded under the
 * endpoint's name followed by `(no answer)`.
 */
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { endpointName } from '@loopscope/protocol';
import type { Exchange } from './recorder.js';

/** What the name of a check that got no answer ends with. */
export const NO_ANSWER = '(no answer)';

export interface CheckOptions {
  url: URL;
  /** the whole check, connection to last byte, ms */
  timeoutMs: number;
  expectStatus: number;
}

/** A network error in words: what a person reading the trace needs to know. */
function networkFailure(url: URL, error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'ECONNREFUSED':
      return `connection refused: nothing listens on ${url.host} (ECONNREFUSED)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `host ${url.hostname} does not resolve (${error.code})`;
    case 'ECONNRESET':
      return `connection reset by ${url.host} before the response was complete (ECONNRESET)`;
    default:
      return `${error.code ?? 'error'}: ${error.message}`;
  }
}

export function check({ url, timeoutMs, expectStatus }: CheckOptions): Promise<Exchange> {
  const t0 = performance.now();
  const start = performance.timeOrigin + t0;
  const since = (): number => performance.now() - t0;
  return new Promise((resolve) => {
    let connected: number | undefined;
    let firstByte: number | undefined;
    let status = 0;
    let bytes = 0;
    let settled = false;
    const finish = (failure: string | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const end = since();
      const phases: Exchange['phases'] = [];
      if (connected !== undefined) phases.push({ name: `connect to ${url.host}`, start: 0, end: connected });
      if (firstByte !== undefined) {
        phases.push({ name: 'until the status line', start: connected ?? 0, end: firstByte }, { name: 'the body', start: firstByte, end });
      } else phases.push({ name: connected === undefined ? `connect to ${url.host}` : 'waiting for the status line', start: connected ?? 0, end });
      // a check that got no answer (refused, failed, timed out before the status line) is an error, not
      // a fast answer: under a name of its own, it stays out of the answered checks' percentiles
      const endpoint = endpointName('GET', url.pathname + url.search);
      resolve({ endpoint: firstByte === undefined ? `${endpoint} ${NO_ANSWER}` : endpoint, start, response: end, firstByte, status, failure, requestBytes: 0, responseBytes: bytes, phases });
    };
    const req = (url.protocol === 'https:' ? https : http).get(url, { agent: false, headers: { 'user-agent': 'loopscope-probe' } }, (res) => {
      firstByte = since();
      status = res.statusCode ?? 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('end', () => finish(status === expectStatus ? undefined : `wrong status ${status}, expected ${expectStatus}`));
      res.on('error', (error: NodeJS.ErrnoException) => finish(networkFailure(url, error)));
    });
    req.on('socket', (socket) => socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => (connected = since())));
    req.on('error', (error: NodeJS.ErrnoException) => finish(networkFailure(url, error)));
    const timer = setTimeout(() => {
      const stage = firstByte !== undefined ? 'the body did not end' : connected !== undefined ? 'no status line' : 'no connection';
      finish(`timeout: ${stage} within ${timeoutMs} ms`);
      req.destroy();
    }, timeoutMs);
  });
}
