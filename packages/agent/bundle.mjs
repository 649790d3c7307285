// Bundles the compiled agent (dist/src) into dist/bundle, which is what the package's exports load:
// one file per entry point and the chunks they share, instead of some fifty modules that Node
// resolves, reads and links one by one while the app waits to start (docs/benchmarks.md,
// "Start-up"). The protocol package and the CommonJS libraries the agent uses are inlined;
// import-in-the-middle stays a package of its own (Node loads its hook files by name).
import { build } from 'esbuild';
import { rmSync } from 'node:fs';

const out = 'dist/bundle';
rmSync(out, { recursive: true, force: true });

await build({
  entryPoints: {
    index: 'dist/src/index.js',
    register: 'dist/src/register.js',
    // register.js loads the agent with require() once it knows the Node.js is supported
    agent: 'dist/src/agent.js',
    export: 'dist/src/export/index.js',
  },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  outdir: out,
  chunkNames: 'chunk-[hash]',
  external: ['import-in-the-middle', 'import-in-the-middle/*', 'protobufjs', 'protobufjs/*'],
  // the inlined CommonJS libraries require Node's modules at run time
  banner: { js: "import { createRequire as __loopscopeRequire } from 'node:module'; const require = __loopscopeRequire(import.meta.url);" },
  sourcemap: 'linked',
  logLevel: 'warning',
});
