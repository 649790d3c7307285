/**
 * Statements as segments carry them: SQL with every literal replaced by `?`, Redis commands with
 * their key and never a value (docs/instrumentation.md#statements). Values never leave the process:
 * a string that does not end, a comment, a dollar-quoted body all become `?` or nothing.
 */
import { SEGMENT_TEXT_LIMITS } from '@loopscope/protocol';

/** `postgres`: `"x"` is an identifier, backslashes escape only in `E'...'`; `mysql`: `"x"` is a string, backslashes escape. */
export type SqlDialect = 'postgres' | 'mysql';

const MAX = SEGMENT_TEXT_LIMITS.statement;
/** Longer SQL is scanned this far only: what lies beyond would be cut anyway. */
const MAX_SCAN = 16 * MAX;

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
/** letters, digits, `_`, `$` (identifier characters in both dialects) and anything non-ASCII */
const isWord = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || isDigit(c) || c === 95 || c === 36 || c > 127;
const isSpace = (c: number): boolean => c === 32 || c === 9 || c === 10 || c === 13 || c === 12;
const isHex = (c: number): boolean => isDigit(c) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);

/** End (exclusive) of the quoted run that opens at `i` with `quote`; doubled quotes and (when `backslash`) `\x` escape. */
function quotedEnd(sql: string, i: number, quote: number, backslash: boolean): number {
  let j = i + 1;
  while (j < sql.length) {
    const c = sql.charCodeAt(j);
    if (backslash && c === 92) j += 2;
    else if (c === quote) {
      if (sql.charCodeAt(j + 1) === quote) j += 2;
      else return j + 1;
    } else j++;
  }
  return sql.length; // never closed: all of the rest is the literal
}

/** `$tag$` opening at `i`, or undefined (`$1` placeholders and `a$b` identifiers are not tags). */
function dollarTag(sql: string, i: number): string | undefined {
  let j = i + 1;
  while (j < sql.length && sql.charCodeAt(j) !== 36) {
    const c = sql.charCodeAt(j);
    if (!isWord(c) || (j === i + 1 && isDigit(c))) return undefined;
    j++;
  }
  return j < sql.length ? sql.slice(i, j + 1) : undefined;
}

/** Keywords after which a `-` or `+` is a sign (`SELECT -1`, `WHERE x = 1 AND -2 < y`). */
const BEFORE_VALUE = new Set(['SELECT', 'WHERE', 'AND', 'OR', 'NOT', 'THEN', 'ELSE', 'WHEN', 'IN', 'IS', 'BY', 'LIMIT', 'OFFSET', 'VALUES', 'BETWEEN', 'LIKE', 'CASE', 'SET', 'RETURN', 'ON', 'AS']);

/** Whether a `-`/`+` written now would start a value: after an operator, `(`, `,`, a keyword or nothing; not after an operand. */
function signStartsValue(out: string): boolean {
  let k = out.length - 1;
  while (k >= 0 && isSpace(out.charCodeAt(k))) k--;
  if (k < 0) return true;
  const c = out.charCodeAt(k);
  if (c === 41 || c === 63 || c === 34 || c === 96 || c === 93) return false; // ) ? "x" `x` ]
  if (!isWord(c)) return true;
  let j = k;
  while (j >= 0 && isWord(out.charCodeAt(j))) j--;
  return BEFORE_VALUE.has(out.slice(j + 1, k + 1).toUpperCase());
}

/** Replaces SQL literals with `?`, drops comments, collapses whitespace, cuts to the wire limit. */
export function sanitizeSql(sql: string, dialect: SqlDialect): string {
  const mysql = dialect === 'mysql';
  const n = Math.min(sql.length, MAX_SCAN);
  let out = '';
  let i = 0;
  while (i < n && out.length <= MAX) {
    const c = sql.charCodeAt(i);
    const next = sql.charCodeAt(i + 1);
    if (isSpace(c)) {
      while (i < n && isSpace(sql.charCodeAt(i))) i++;
      if (out.length > 0 && !out.endsWith(' ')) out += ' ';
    } else if ((c === 45 && next === 45) || (mysql && c === 35)) {
      // -- or # comment, to the end of the line
      while (i < n && sql.charCodeAt(i) !== 10) i++;
    } else if (c === 47 && next === 42) {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? n : end + 2;
      if (out.length > 0 && !out.endsWith(' ')) out += ' ';
    } else if (c === 39 || (mysql && c === 34)) {
      // a string; in PostgreSQL a backslash escapes only in E'...' (handled below)
      i = quotedEnd(sql, i, c, mysql);
      out += '?';
    } else if ((c === 69 || c === 101) && next === 39 && !mysql && (out.length === 0 || !isWord(out.charCodeAt(out.length - 1)))) {
      i = quotedEnd(sql, i + 1, 39, true); // E'...'
      out += '?';
    } else if ((c === 88 || c === 120 || c === 66 || c === 98 || c === 78 || c === 110) && next === 39 && (out.length === 0 || !isWord(out.charCodeAt(out.length - 1)))) {
      i = quotedEnd(sql, i + 1, 39, mysql); // X'ff', B'01', N'text'
      out += '?';
    } else if (c === 34 || c === 96) {
      // "identifier" (PostgreSQL) or `identifier` (MySQL): kept
      const end = quotedEnd(sql, i, c, false);
      out += sql.slice(i, end);
      i = end;
    } else if (c === 36 && !mysql && !isWord(out.length === 0 ? 32 : out.charCodeAt(out.length - 1))) {
      const tag = dollarTag(sql, i);
      if (tag === undefined) {
        // $1 placeholder: kept
        let j = i + 1;
        while (j < n && isDigit(sql.charCodeAt(j))) j++;
        out += sql.slice(i, j);
        i = j;
      } else {
        const end = sql.indexOf(tag, i + tag.length);
        i = end < 0 ? n : end + tag.length;
        out += '?';
      }
    } else if ((isDigit(c) || (c === 46 && isDigit(next)) || ((c === 45 || c === 43) && (isDigit(next) || next === 46))) && (out.length === 0 || !isWord(out.charCodeAt(out.length - 1)))) {
      if ((c === 45 || c === 43) && !signStartsValue(out)) {
        out += sql[i]; // a minus between two operands
        i++;
        continue;
      }
      if (c === 45 || c === 43) i++;
      if (sql.charCodeAt(i) === 48 && (sql.charCodeAt(i + 1) | 32) === 120) {
        i += 2;
        while (i < n && isHex(sql.charCodeAt(i))) i++;
      } else {
        while (i < n && (isDigit(sql.charCodeAt(i)) || sql.charCodeAt(i) === 46)) i++;
        if ((sql.charCodeAt(i) | 32) === 101 && (isDigit(sql.charCodeAt(i + 1)) || ((sql.charCodeAt(i + 1) === 45 || sql.charCodeAt(i + 1) === 43) && isDigit(sql.charCodeAt(i + 2))))) {
          i += 2;
          while (i < n && isDigit(sql.charCodeAt(i))) i++;
        }
      }
      out += '?';
    } else if (isWord(c)) {
      let j = i + 1;
      while (j < n && isWord(sql.charCodeAt(j))) j++;
      out += sql.slice(i, j);
      i = j;
    } else {
      out += sql[i];
      i++;
    }
  }
  out = out.trimEnd();
  return out.length > MAX || n < sql.length ? `${out.slice(0, MAX - 1)}…` : out;
}

/** The statement's first keyword, upper case (`SELECT`, `INSERT`, `WITH`), or `query`. */
export function sqlOperation(statement: string): string {
  let j = 0;
  while (j < statement.length && j < SEGMENT_TEXT_LIMITS.operation && isWord(statement.charCodeAt(j)) && !isDigit(statement.charCodeAt(j))) j++;
  return j === 0 ? 'query' : statement.slice(0, j).toUpperCase();
}

/** Memoized per raw text (bounded): an app sends the same few statements over and over. */
export class StatementCache {
  private readonly seen = new Map<string, string>();
  constructor(private readonly dialect: SqlDialect) {}

  get(sql: string): string {
    let s = this.seen.get(sql);
    if (s === undefined) {
      s = sanitizeSql(sql, this.dialect);
      if (this.seen.size >= 1000) this.seen.clear();
      if (sql.length <= 4 * MAX) this.seen.set(sql, s);
    }
    return s;
  }
}

/** Commands whose first argument is not a key (a password, a script, a message): their statement is the command alone. */
const NO_KEY = new Set(['AUTH', 'HELLO', 'ACL', 'CONFIG', 'CLIENT', 'ECHO', 'PING', 'EVAL', 'EVALSHA', 'EVAL_RO', 'EVALSHA_RO', 'SCRIPT', 'FUNCTION', 'FCALL', 'MIGRATE', 'SELECT', 'MULTI', 'EXEC', 'INFO', 'QUIT']);
const MAX_KEY = 128;
/** A run of 16+ letters, digits, `_` or `-` in a key; with a digit in it, a token (a session id, a hash): `?`, as in URL paths. */
const KEY_RUN = /[\w-]{16,}/g;
const DIGIT = /\d/;
const tokenToPlaceholder = (run: string): string => (DIGIT.test(run) ? '?' : run);

/**
 * `GET user:42`: the command and its key (cut to 128 characters), never the values; a part of the
 * key that is a token (`sess:<session id>`, the cookie's value) is `?`.
 */
export function redisStatement(command: string, key: unknown): string {
  const name = command.toUpperCase();
  if (NO_KEY.has(name) || (typeof key !== 'string' && !Buffer.isBuffer(key))) return name;
  const k = String(key).replace(KEY_RUN, tokenToPlaceholder);
  return `${name} ${k.length > MAX_KEY ? `${k.slice(0, MAX_KEY - 1)}…` : k}`;
}
