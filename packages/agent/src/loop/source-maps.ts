/**
 * Where a long task's code is in the source the app was written in: a location in compiled
 * JavaScript (`file:///app/dist/app.js:6:21`, as the profiler gives it) mapped through the file's
 * source map to the TypeScript (or other) source it came from (`file:///app/src/app.ts:9:5`). A file
 * says where its map is in its last `//# sourceMappingURL=` comment: inline (a `data:` URL, as
 * esbuild's and tsc's `inlineSourceMap` write) or a file beside it (`app.js.map`, as tsc's
 * `sourceMap` writes). Files are read off the event loop (fs.promises) the first time a location in
 * them is asked for, and their maps parsed once and kept: at most MAX_FILES files, the least
 * recently used let go; a file or a map over MAX_BYTES is not read. Parsing a map is the agent's own
 * work (`own`), never part of a long task; look-ups run as the batch is cut, which is the agent's
 * already. A file without a map, or that cannot be read, keeps its locations as they are.
 */
import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';

type Mapper = (line: number, column: number) => string | undefined;
type Entry = { state: 'reading' } | { state: 'none' } | { state: 'mapped'; find: Mapper };

const MAX_FILES = 64;
const MAX_BYTES = 32 * 1024 * 1024;
/** `file:///…/app.js:6:21` (or a path): the file, its 1-based line and column */
const LOCATION = /^(.+):(\d+):(\d+)$/;
/** a stack entry as the profiler writes it: `name (location)` */
const FRAME = /^(.*) \((.+:\d+:\d+)\)$/;

export class SourceMaps {
  private readonly files = new Map<string, Entry>();

  /** `own` runs the agent's synchronous work (parsing a map) outside the app's slices. */
  constructor(private readonly own: <T>(fn: () => T) => T) {}

  /**
   * Whether the files of these locations have been looked at (mapped, or known to have no map);
   * starts reading those that have not. A task waits for its files before it is shipped.
   */
  ready(locations: Iterable<string>): boolean {
    let ready = true;
    for (const location of locations) {
      const file = LOCATION.exec(location)?.[1];
      if (file === undefined) continue;
      const entry = this.files.get(file);
      if (entry === undefined) {
        this.read(file);
        ready = false;
      } else if (entry.state === 'reading') ready = false;
    }
    return ready;
  }

  /** The location in the source its file's map points to; undefined without a map (or one that says nothing there). */
  map(location: string): string | undefined {
    const parts = LOCATION.exec(location);
    if (parts === null) return undefined;
    const [line, column] = [Number(parts[2]), Number(parts[3])];
    // (a function the profiler has no line for has lineNumber -1: `:0:0` here; the map library throws on it)
    if (line < 1 || column < 1) return undefined;
    const entry = this.files.get(parts[1]!);
    if (entry?.state !== 'mapped') return undefined;
    // (used: the least recently used file is let go first)
    this.files.delete(parts[1]!);
    this.files.set(parts[1]!, entry);
    return entry.find(line, column);
  }

  /** A stack entry, `name (location)`, with its location mapped. */
  mapFrame(frame: string): string {
    const parts = FRAME.exec(frame);
    const mapped = parts === null ? undefined : this.map(parts[2]!);
    return mapped === undefined ? frame : `${parts![1]} (${mapped})`;
  }

  /** The locations a stack entry holds (none, or one). */
  static frameLocation(frame: string): string[] {
    const parts = FRAME.exec(frame);
    return parts === null ? [] : [parts[2]!];
  }

  private read(file: string): void {
    if (this.files.size >= MAX_FILES) this.files.delete(this.files.keys().next().value!);
    this.files.set(file, { state: 'reading' });
    this.load(file).then(
      (find) => this.files.set(file, find === undefined ? { state: 'none' } : { state: 'mapped', find }),
      () => this.files.set(file, { state: 'none' }),
    );
  }

  private async load(file: string): Promise<Mapper | undefined> {
    // only the app's files on disk (not node:internal, nor what a loader made up)
    const path = file.startsWith('file:') ? fileURLToPath(file) : file.startsWith('/') ? file : undefined;
    if (path === undefined || (await stat(path)).size > MAX_BYTES) return undefined;
    const code = await readFile(path, 'utf8');
    const at = code.lastIndexOf('sourceMappingURL=');
    if (at < 0 || !/\/\/[#@] $/.test(code.slice(Math.max(0, at - 4), at))) return undefined;
    const reference = /^\S+/.exec(code.slice(at + 'sourceMappingURL='.length))?.[0];
    if (reference === undefined) return undefined;
    const base = file.startsWith('file:') ? file : pathToFileURL(path).href;
    const mapUrl = new URL(reference, base);
    let text: string;
    if (mapUrl.protocol === 'data:') {
      const comma = mapUrl.pathname.indexOf(',');
      const header = mapUrl.pathname.slice(0, comma);
      const data = mapUrl.pathname.slice(comma + 1);
      text = header.endsWith(';base64') ? Buffer.from(data, 'base64').toString('utf8') : decodeURIComponent(data);
    } else if (mapUrl.protocol === 'file:') {
      const mapPath = fileURLToPath(mapUrl);
      if ((await stat(mapPath)).size > MAX_BYTES) return undefined;
      text = await readFile(mapPath, 'utf8');
    } else return undefined;
    // loaded when a first long task needs it: the app's start does not pay for it
    const { TraceMap, originalPositionFor } = await import('@jridgewell/trace-mapping');
    const map = this.own(() => new TraceMap(text, mapUrl.protocol === 'data:' ? base : mapUrl.href));
    return (line, column) => {
      const found = originalPositionFor(map, { line, column: column - 1 });
      return found.source === null ? undefined : `${found.source}:${found.line}:${found.column + 1}`;
    };
  }
}
