/**
 * Endpoint names: `METHOD /path` with the parts that vary per request collapsed into placeholders,
 * so that the number of endpoints stays bounded whatever the URLs. Framework route templates, where
 * known, replace this (they are better); this is the fallback every server gets.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NUMBER = /^[-+]?\d+(?:[.,]\d+)?$/;
const HEX = /^(?:0x)?[0-9a-f]{12,}$/i;
const DIGIT = /\d/;
/** A long token that mixes letters and digits: base64 ids, slugs with ids, session tokens. */
const TOKEN = /^[\w-]{16,}$/;
const DATE = /^\d{4}-\d{2}-\d{2}(?:T[\d:.]+Z?)?$/;
const LETTER = /[a-z]/i;
/** `v2`, `v1.1`, `V3`: an API version, kept. */
const VERSION = /^v\d+(?:\.\d+)*$/i;
/**
 * Words that hold a digit and name a thing rather than an instance: protocols, formats, standards.
 * Any other segment that mixes letters and digits (`u2329ad`, `abort1`, `item42`, `a1b2`) is an id.
 */
const DIGIT_WORDS = new Set([
  'oauth1', 'oauth2', 'http2', 'http3', 'h2', 'h2c', 'h3', 'ipv4', 'ipv6', 's3', 'ec2', 'md5', 'sha1', 'sha256', 'sha384', 'sha512',
  'base32', 'base64', 'utf8', 'utf16', 'x509', 'pkcs12', 'i18n', 'l10n', 'a11y', 'k8s', 'mp3', 'mp4', 'h264', 'html5', 'css3',
  '2fa', 'e2e', 'p2p', 'b2b', 'b2c', '3d',
]);

/** Beyond this many path segments the rest is collapsed into `/…`. */
const MAX_SEGMENTS = 8;
const MAX_SEGMENT_LENGTH = 64;

function placeholder(part: string): string | undefined {
  if (part.length === 0) return undefined;
  if (NUMBER.test(part)) return ':id';
  if (UUID.test(part)) return ':uuid';
  if (DATE.test(part)) return ':date';
  if (HEX.test(part)) return ':hash';
  if (TOKEN.test(part) && DIGIT.test(part)) return ':token';
  if (part.length > MAX_SEGMENT_LENGTH) return ':long';
  if (DIGIT.test(part) && LETTER.test(part) && !VERSION.test(part) && !DIGIT_WORDS.has(part.toLowerCase())) return ':id';
  return undefined;
}

/**
 * `/users/42/orders/9f1c…?x=1` → `/users/:id/orders/:hash`. Query and fragment are dropped. A
 * segment becomes `:id` (a number, or letters and digits mixed: `u2329ad`, `abort1`), `:uuid`,
 * `:date`, `:hash` (12+ hex digits), `:token` (16+ word characters with a digit) or `:long` (over
 * 64 characters); words stay, and so do versions (`v2`) and the few words that hold a digit
 * (`oauth2`, `http2`, `s3`, `sha256`, ...: DIGIT_WORDS). docs/metrics.md, "Endpoint names".
 */
export function normalizePath(rawUrl: string): string {
  let end = rawUrl.length;
  const q = rawUrl.indexOf('?');
  if (q !== -1) end = q;
  const h = rawUrl.indexOf('#');
  if (h !== -1 && h < end) end = h;
  let path = rawUrl.slice(0, end);
  // absolute-form request targets (`GET http://host/x` to a proxy)
  if (!path.startsWith('/')) {
    const scheme = path.indexOf('://');
    const slash = scheme === -1 ? -1 : path.indexOf('/', scheme + 3);
    path = slash === -1 ? '/' : path.slice(slash);
  }
  if (path === '/') return path;
  const parts = path.split('/');
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) {
    if (out.length === MAX_SEGMENTS) {
      out.push('…');
      break;
    }
    let part = parts[i]!;
    if (part.includes('%')) {
      try {
        part = decodeURIComponent(part);
      } catch {
        part = ':invalid';
      }
    }
    out.push(placeholder(part) ?? part);
  }
  return '/' + out.join('/');
}

/**
 * `make(method, key)` memoized per method and key: a name seen before costs two map lookups and
 * allocates nothing. At most `limit` names are kept; past it all are forgotten at once.
 */
export function memoizeNames(limit: number, make: (method: string, key: string) => string): (method: string, key: string) => string {
  const cache = new Map<string, Map<string, string>>();
  let cached = 0;
  return (method, key) => {
    let byKey = cache.get(method);
    if (byKey === undefined) cache.set(method, (byKey = new Map()));
    let name = byKey.get(key);
    if (name === undefined) {
      name = make(method, key);
      if (cached >= limit) {
        for (const names of cache.values()) names.clear();
        cached = 0;
      }
      byKey.set(key, name);
      cached++;
    }
    return name;
  };
}

/** Where an http call went: the host:port of its segment's name (`GET host:port/path`), or ''. */
export function callHost(name: string): string {
  const space = name.indexOf(' ');
  if (space < 0) return '';
  const slash = name.indexOf('/', space + 1);
  return name.slice(space + 1, slash < 0 ? undefined : slash);
}

/** `GET /users/:id`, from the method and the raw URL. */
export const endpointName = memoizeNames(2000, (method, rawUrl) => method + ' ' + normalizePath(rawUrl));
