/**
 * Secrets out of free text that a sender ships (an error's message, a probe's failure): the agent,
 * the proxy and the probe use this one definition. docs/instrumentation.md, "What is shipped, field
 * by field".
 */
import { LIMITS } from './limits.js';

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
