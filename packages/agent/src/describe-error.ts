/**
 * What a transaction or a call records of its error: text, bounded (LOOPSCOPE_MAX_ERROR_MESSAGE,
 * 300 characters by default), with the secrets it names taken out (`redactSecrets`). An Error is
 * `Name: message`; an object that carries its own message (`next({ error: 'not found' })`, an
 * HttpException-like object) that message. Any other value (a page of text, a response body handed
 * to `next()`) is not an Error, and what it holds is never shipped: only what kind of value it was
 * (docs/metrics.md#errors).
 */
import { CUT_MARK, LIMITS } from '@loopscope/protocol';

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

export const REDACTED = '[redacted]';

/** `scheme://user:password@`: everything between `//` and the host's `@` (the last `@` before the path). */
const URL_CREDENTIALS = /\b([a-z][a-z\d+.-]{0,31}:\/\/)[^\s/?#"'<>`]{0,512}@/gi;
/** A URL's query and fragment (`?token=…`, `#access_token=…`), to the end of the URL. */
const URL_QUERY = /(\b[a-z][a-z\d+.-]{0,31}:\/\/[^\s?#"'<>`]{0,2048})[?#][^\s"'<>`]*/gi;
/** `Bearer <token>` always; `Basic <value>` when the value looks like one (below), not the word in "Basic auth failed". */
const AUTH_SCHEME = /\b(bearer|basic)(\s+)([\w.~+/=-]+)/gi;
/** A credential rather than a word: a digit, a capital past the first letter, or base64/token punctuation. */
const CREDENTIAL_LIKE = /\d|.[A-Z]|[.~+/=_-]/;
/**
 * `password=…`, `pwd=…`, `"token": "…"`, `PGPASSWORD=…`, `client_secret=…`, `JSESSIONID=…`: a key
 * that names a secret, `=` or `:`, and its value (quoted, or up to a space, `&`, `;` or `,`; not a
 * URL, whose secrets the rules above took out: `includes credentials: http://[redacted]@host/`).
 */
const SECRET_PAIR =
  /(["']?)\b((?:[\w-]{0,32}?(?:password|passwd|secret|token|api[_-]?key|apikey|private[_-]?key|credentials?|signature|sess(?:ion)?[_-]?id))|pwd|pass|auth|sid|session|(?:proxy-)?authorization|(?:set-)?cookie)\1(\s*[=:]\s*)(?!\[redacted\]|[a-z][a-z\d+.-]{0,31}:\/\/)("[^"]*"|'[^']*'|[^\s&;,"'<>)}\]]+)/gi;
/** A header line's value, to the end of the line: `Cookie: a=1; b=2`, `Authorization: Basic …`. */
const SECRET_HEADER = /\b((?:proxy-)?authorization|(?:set-)?cookie)(\s*[=:]\s*)(?!["'\s])[^\r\n]+/gi;
/** Text scanned at most: an error message over it is cut before it is scanned (it is cut to ≤ 2048 afterwards anyway). */
const MAX_SCAN = 2 * LIMITS.errorMessage;

/**
 * Free text (an error's message) without the secrets it may name: a URL's user-info becomes
 * `[redacted]` and its query and fragment are dropped; the value after `Bearer` (and after `Basic`
 * when it looks like a credential) is `[redacted]`, and so is the value of every `key=value` or
 * `key: value` whose key names a secret (`password`, `pwd`, `pass`, `secret`, `token`, `api_key`,
 * `auth`, `sid`, `session`, `signature`, `credentials`, and keys that end in the longer ones:
 * `db_password`, `access_token`, `client_secret`, `X-Amz-Signature`, `JSESSIONID`), and the rest
 * of an `Authorization` or `Cookie` header's line. docs/instrumentation.md, "What is shipped, field
 * by field".
 */
export function redactSecrets(text: string): string {
  // a secret cut in half at the end would not be recognized: the last word goes with the cut
  // (a short one: a long run of text is data, and a URL's query is dropped wherever it was cut)
  if (text.length > MAX_SCAN) text = text.slice(0, MAX_SCAN).replace(/\s\S{1,256}$/, '');
  return text
    .replace(URL_CREDENTIALS, `$1${REDACTED}@`)
    .replace(URL_QUERY, '$1')
    .replace(AUTH_SCHEME, (all, scheme: string, space: string, value: string) =>
      scheme.toLowerCase() === 'bearer' || CREDENTIAL_LIKE.test(value) ? `${scheme}${space}${REDACTED}` : all,
    )
    .replace(SECRET_PAIR, (_all, quote: string, key: string, sep: string, value: string) => {
      const q = value.startsWith('"') || value.startsWith("'") ? value[0] : '';
      return `${quote}${key}${quote}${sep}${q}${REDACTED}${q}`;
    })
    .replace(SECRET_HEADER, `$1$2${REDACTED}`);
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
