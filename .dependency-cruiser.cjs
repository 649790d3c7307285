// The import-cycle check (npm run check:cycles; CI runs it): dependency-cruiser over the TypeScript
// and JavaScript sources of every workspace, type-only imports included (a module that needs
// another's types to be compiled depends on it as much as one that calls it). Between workspaces the
// build already refuses cycles (project references cannot be circular, and a clean build of two
// packages that import each other fails), so imports of another workspace, which resolve to its
// dist/, end the walk there. Version 17: 18 needs Node.js 22, and CI runs on the machine's Node.js 20.

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'An import cycle: a module that imports itself through others. Move what both sides need into a module of its own, or hand it in as a parameter.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    exclude: { path: '(^|/)(node_modules|dist)/' },
    doNotFollow: { path: '(^|/)node_modules/' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
