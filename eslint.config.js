// Lint rules in the spirit of Temporal's sdk-typescript: no floating promises, type-only imports, and
// no Node built-ins or I/O modules in workflow code (it runs in Temporal's deterministic sandbox).
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];
const ioModules = ['node-vault', 'pg', '@octokit/*', '@slack/*', '@temporalio/client', '@temporalio/worker', '@temporalio/activity', 'yaml', 'tsx', 'undici'];

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
      'no-restricted-syntax': ['error', { selector: "CallExpression[callee.property.name='only'][callee.object.name=/^(it|test|describe)$/]", message: 'no .only in committed tests' }],
    },
  },
  {
    files: ['src/workflows/**/*.ts', 'src/shared/**/*.ts', 'src/policy/**/*.ts'],
    ignores: ['src/shared/temporal-connection.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({ name, message: 'workflow code runs in a deterministic sandbox: no Node built-ins' })),
          patterns: [{ group: ioModules, message: 'workflow code must not do I/O: call an activity instead' }],
        },
      ],
      'no-restricted-globals': ['error', { name: 'process', message: 'no process in workflow code' }, { name: 'Buffer', message: 'no Buffer in workflow code' }, { name: 'setImmediate', message: 'use workflow sleep()' }],
    },
  },
);
