/**
 * What a transaction or a call records of its error: text, bounded (LOOPSCOPE_MAX_ERROR_MESSAGE,
 * 300 characters by default), with the secrets it names taken out (the protocol's `redactSecrets`). An Error is
 * `Name: message`; an object that carries its own message (`next({ error: 'not found' })`, an
 * HttpException-like object) that message. Any other value (a page of text, a response body handed
 * to `next()`) is not an Error, and what it holds is never shipped: only what kind of value it was
 * (docs/metrics.md#errors).
 */
import { CUT_MARK, LIMITS, redactSecrets } from '@loopscope/protocol';

export const DEFAULT_MAX_MESSAGE = 300;
let maxMessage = DEFAULT_MAX_MESSAGE;

/** The longest message kept (the agent's configuration; at most what the wire format takes). */
export function setMaxMessage(max: number): void {
  maxMessage = Math.max(20, Math.min(LIMITS.errorMessage, Math.round(max)));
}

/** `Object {a, b}`: an object's kind and keys, never its values. */
function keysOf(value: object): string {
  let name = 'Object';
  try {
    const ctor = (value as { constructor?: { name?: unknown } }).constructor;
    if (typeof ctor?.name === 'string' && ctor.name !== '') name = ctor.name;
    return `${name} {${Object.keys(value).slice(0, 10).join(', ')}}`;
  } catch {
    return name; // a proxy that throws
  }
}

/** What kind of value something that is not an Error was. */
function kindOf(value: unknown): string {
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  if (typeof value === 'object' && value !== null) return keysOf(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`;
  return typeof value === 'symbol' ? 'a symbol' : String(value);
}

export function describeError(error: unknown): string {
  let text: string;
  if (error instanceof Error) text = error.message ? `${error.name}: ${error.message}` : error.name;
  else {
    const { message, error: inner } = typeof error === 'object' && error !== null ? (error as { message?: unknown; error?: unknown }) : {};
    if (typeof message === 'string' && message !== '') text = message;
    else if (typeof inner === 'string' && inner !== '') text = inner;
    else text = `${kindOf(error)} (not an Error)`;
  }
  text = redactSecrets(text);
  return text.length > maxMessage ? text.slice(0, maxMessage - CUT_MARK.length) + CUT_MARK : text;
}
