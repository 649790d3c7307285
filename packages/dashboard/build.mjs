// Builds the dashboard into dist/public: one minified script and one stylesheet (uPlot's included),
// named by content hash so browsers may cache them for good, and index.html pointing at them.
// No CDN: everything the page loads comes from the collector.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { gzipSync } from 'node:zlib';

const out = 'dist/public';
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const result = await build({
  entryPoints: { app: 'web/main.ts' },
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022',
  outdir: out,
  entryNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs);
const js = outputs.find((f) => f.endsWith('.js'));
const css = outputs.find((f) => f.endsWith('.css'));
const html = readFileSync('web/index.html', 'utf8').replace('%JS%', basename(js)).replace('%CSS%', basename(css));
writeFileSync(`${out}/index.html`, html);

const size = (f) => `${basename(f)} ${(statSync(f).size / 1024).toFixed(1)} kB (${(gzipSync(readFileSync(f)).length / 1024).toFixed(1)} kB gzipped)`;
console.log(`dashboard: ${size(js)}, ${size(css)}`);
