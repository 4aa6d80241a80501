// Lint rules in the spirit of Temporal's sdk-typescript: no floating promises, type-only imports, and
// no Node built-ins or I/O modules in workflow code (it runs in Temporal's deterministic sandbox).
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];
const ioModules = [
  'node-vault',
  'pg',
  '@octokit/*',
  '@slack/*',
  '@temporalio/client',
  '@temporalio/worker',
  '@temporalio/activity',
  'yaml',
  'tsx',
  'undici',
];

// Layers: imports go down (shared <- policy <- presentation, config <- activities, workflows <- client, workers
// <- gateway, cli, dev). Each folder names the src/ folders it must not reach; a relative import that climbs
// into one of them is refused. One block per folder: flat config replaces a rule's options per file, not merges.
// src/dev (the local stack, the development commands, the stand-ins) is not in the production image: nothing
// else imports it; src/cli/commands.ts reaches the development commands through import() alone.
const folders = (names) => `^(\\.\\./)+(${names.join('|')})/`;
const noIo = {
  paths: nodeBuiltins.map((name) => ({
    name,
    message: 'workflow code runs in a deterministic sandbox: no Node built-ins',
  })),
  patterns: [{ group: ioModules, message: 'workflow code must not do I/O: call an activity instead' }],
};
const everythingAbove = ['activities', 'workers', 'gateway', 'cli', 'dev', 'client', 'audit', 'config'];
const layers = [
  // Pure layers: no I/O and nothing above them. Workflows may take activity *types* (derived from the factories).
  {
    files: ['src/shared/**/*.ts'],
    ignores: ['src/shared/temporal-connection.ts'],
    io: false,
    forbidden: ['policy', 'workflows', 'presentation', ...everythingAbove],
    why: 'shared is the bottom layer',
  },
  {
    files: ['src/policy/**/*.ts'],
    io: false,
    forbidden: ['workflows', 'presentation', ...everythingAbove],
    why: 'the policy is pure: it decides, others act',
  },
  {
    files: ['src/presentation/**/*.ts'],
    io: false,
    forbidden: ['workflows', ...everythingAbove],
    why: 'texts are pure and shared by every channel',
  },
  {
    files: ['src/workflows/**/*.ts'],
    io: false,
    forbidden: ['presentation', ...everythingAbove],
    why: 'workflow code runs in the sandbox: call an activity (its type may be imported)',
    allowTypeImports: true,
  },
  {
    files: ['src/config/**/*.ts'],
    forbidden: ['workflows', 'presentation', ...everythingAbove.filter((f) => f !== 'config')],
    why: 'configuration is read by every zone',
  },
  {
    files: ['src/activities/**/*.ts'],
    forbidden: ['workers', 'gateway', 'cli', 'dev', 'client', 'audit'],
    why: 'activities run in production zones: no dev stack, no entry points',
  },
  {
    files: ['src/client/**/*.ts'],
    forbidden: ['workers', 'gateway', 'cli', 'dev'],
    why: 'the change reader is shared by the CLI and the gateway',
  },
  {
    files: ['src/audit/**/*.ts'],
    forbidden: ['workers', 'gateway', 'cli', 'dev'],
    why: 'the audit record is read by the CLI and the gateway',
  },
  {
    files: ['src/workers/**/*.ts'],
    forbidden: ['gateway', 'cli', 'dev'],
    why: 'workers run in production zones: no dev stack',
  },
  // The `foureyes gateway` command is the gateway process's entry point: it loads src/gateway/main.ts, nothing else.
  {
    files: ['src/gateway/**/*.ts'],
    forbidden: ['cli', 'dev'],
    why: 'the gateway and the CLI never import each other: share through presentation/ or client/',
  },
  {
    files: ['src/cli/**/*.ts'],
    forbidden: ['gateway'],
    why: 'the gateway and the CLI never import each other: share through presentation/ or client/',
    more: [
      {
        forbidden: ['dev'],
        why: 'src/dev is not in the production image: load a development command with import() in commands.ts',
      },
    ],
  },
];
const layerRules = layers.map(({ files, ignores, io, forbidden, why, more = [], allowTypeImports }) => ({
  files,
  ...(ignores ? { ignores } : {}),
  rules: {
    'no-restricted-imports': 'off',
    '@typescript-eslint/no-restricted-imports': [
      'error',
      {
        ...(io === false ? { paths: noIo.paths } : {}),
        patterns: [
          ...(io === false ? noIo.patterns : []),
          ...[{ forbidden, why }, ...more].map((layer) => ({
            regex: folders(layer.forbidden),
            message: `imports go down the layers: ${layer.why}`,
            ...(allowTypeImports ? { allowTypeImports: true } : {}),
          })),
        ],
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ['node_modules/**', '.foureyes/**', '.tools/**', 'scratch/**', 'coverage/**', 'test/fixtures/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.property.name='only'][callee.object.name=/^(it|test|describe)$/]",
          message: 'no .only in committed tests',
        },
      ],
    },
  },
  ...layerRules,
  {
    files: ['src/workflows/**/*.ts', 'src/shared/**/*.ts', 'src/policy/**/*.ts', 'src/presentation/**/*.ts'],
    ignores: ['src/shared/temporal-connection.ts'],
    rules: {
      'no-restricted-globals': [
        'error',
        { name: 'process', message: 'no process in workflow code' },
        { name: 'Buffer', message: 'no Buffer in workflow code' },
        { name: 'setImmediate', message: 'use workflow sleep()' },
      ],
    },
  },
);
