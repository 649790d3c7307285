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
  return undefined;
}

/** `/users/42/orders/9f1c…?x=1` → `/users/:id/orders/:hash`. Query and fragment are dropped. */
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

/** `GET /users/:id`, from the method and the raw URL. */
export const endpointName = memoizeNames(2000, (method, rawUrl) => method + ' ' + normalizePath(rawUrl));
