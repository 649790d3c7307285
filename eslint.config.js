// Lint and format: neostandard (standard's rules for ESLint's flat config, with TypeScript and the
// @stylistic formatting rules), as fastify and pino use it; `npm run lint:fix` is the formatter.
// Where this codebase has a consistent convention of its own, the rule follows it (below); isolated
// departures from standard are fixed in the code.
import neostandard, { resolveIgnoresFromGitignore } from 'neostandard';

export default [
  ...neostandard({ ts: true, semi: true, noJsx: true, ignores: resolveIgnoresFromGitignore() }),

  {
    name: 'loopscope/conventions',
    rules: {
      // semicolons (the `semi` option above), trailing commas in multi-line lists, and
      // `function name(` but `function (`, `async () =>`
      '@stylistic/comma-dangle': ['error', 'always-multiline'],
      '@stylistic/space-before-function-paren': ['error', { anonymous: 'always', named: 'never', asyncArrow: 'always' }],
      // `void promise` marks a promise that is deliberately not awaited (the TypeScript idiom);
      // standard forbids `void` for `void 0`, which this code never writes
      'no-void': 'off',
      // uPlot's constructor is spelled that way by its library
      'new-cap': ['error', { newIsCap: true, capIsNew: false, properties: true, newIsCapExceptions: ['uPlot'] }],
      // promise executors are named (r) or (done, fail) here
      'promise/param-names': ['error', { resolvePattern: '^_?(resolve|r|done)$', rejectPattern: '^_?(reject|fail)$' }],
    },
  },
];
