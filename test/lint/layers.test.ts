// The layer rules in eslint.config.js, run by ESLint itself on imports placed in each folder: a wrong import
// is an error naming the layer, a right one passes (so neither half can pass by accident).
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/config/paths.ts';

// Only the import rules, without type information: the probes are text, not files of the TypeScript project.
const eslint = new ESLint({
  cwd: projectRoot(),
  overrideConfig: { files: ['**/*.ts'], languageOptions: { parserOptions: { projectService: false, project: null } } },
  ruleFilter: ({ ruleId }) => ruleId === '@typescript-eslint/no-restricted-imports',
});

async function problems(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${projectRoot()}/${file}` });
  return (result?.messages ?? []).map((m) => `${m.ruleId}: ${m.message}`);
}

describe('layer lint', () => {
  const wrong: Array<[string, string, RegExp]> = [
    [
      'src/gateway/routes/probe.ts',
      "import { run } from '../../cli/status.ts';\nvoid run;\n",
      /gateway and the CLI never import each other/,
    ],
    [
      'src/cli/probe.ts',
      "import { handleGetChange } from '../gateway/routes/changes.ts';\nvoid handleGetChange;\n",
      /gateway and the CLI never import each other/,
    ],
    [
      'src/activities/probe.ts',
      "import { startOpenBao } from '../dev/openbao.ts';\nvoid startOpenBao;\n",
      /activities run in production zones/,
    ],
    [
      'src/workers/probe.ts',
      "import { dataDir } from '../dev/paths.ts';\nvoid dataDir;\n",
      /workers run in production zones/,
    ],
    // src/dev is not in the production image: the stand-ins under it included, and the CLI too (statically).
    [
      'src/activities/probe.ts',
      "import { signedSlackHeaders } from '../dev/slack-standin/sign.ts';\nvoid signedSlackHeaders;\n",
      /activities run in production zones/,
    ],
    [
      'src/workers/probe.ts',
      "import { startTeamsStandin } from '../dev/teams-standin/server.ts';\nvoid startTeamsStandin;\n",
      /workers run in production zones/,
    ],
    [
      'src/gateway/routes/probe.ts',
      "import { GitHubStandin } from '../../dev/github-standin/index.ts';\nvoid GitHubStandin;\n",
      /gateway and the CLI never import each other/,
    ],
    [
      'src/cli/probe.ts',
      "import { startStack } from '../dev/stack.ts';\nvoid startStack;\n",
      /src\/dev is not in the production image/,
    ],
    ['src/cli/gateway.ts', "export { dataDir } from '../dev/paths.ts';\n", /src\/dev is not in the production image/],
    [
      'src/workflows/probe.ts',
      "import { createGitHubActivities } from '../activities/github.ts';\nvoid createGitHubActivities;\n",
      /workflow code runs in the sandbox/,
    ],
    ['src/workflows/probe.ts', "import { readFileSync } from 'node:fs';\nvoid readFileSync;\n", /no Node built-ins/],
    ['src/policy/probe.ts', "import { Client } from '@temporalio/client';\nvoid Client;\n", /must not do I\/O/],
    [
      'src/shared/probe.ts',
      "import { decideEvent } from '../policy/sod.ts';\nvoid decideEvent;\n",
      /shared is the bottom layer/,
    ],
    [
      'src/presentation/probe.ts',
      "import { changeStatus } from '../client/read-change.ts';\nvoid changeStatus;\n",
      /texts are pure/,
    ],
  ];
  it.each(wrong)('refuses a wrong import in %s', async (file, code, message) => {
    const found = await problems(file, code);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(message);
  });

  const right: Array<[string, string]> = [
    [
      'src/gateway/routes/probe.ts',
      "import { formatStatus } from '../../presentation/texts.ts';\nimport { changeStatus } from '../../client/read-change.ts';\nvoid formatStatus;\nvoid changeStatus;\n",
    ],
    ['src/cli/probe.ts', "import { changeStatus } from '../client/read-change.ts';\nvoid changeStatus;\n"],
    ['src/activities/probe.ts', "import { policyName } from '../shared/openbao-layout.ts';\nvoid policyName;\n"],
    // A development command is loaded with import(), which the production CLI guards (src/dev may be absent).
    ['src/cli/probe.ts', "export const load = () => import('../dev/cli/up.ts');\n"],
    ['src/dev/cli/probe.ts', "import { CliError } from '../../cli/commands.ts';\nvoid CliError;\n"],
    [
      'src/workflows/probe.ts',
      "import type { OrchestratorActivities } from '../activities/interfaces.ts';\nexport type A = OrchestratorActivities;\n",
    ],
  ];
  it.each(right)('accepts an import down the layers in %s', async (file, code) => {
    expect(await problems(file, code)).toEqual([]);
  });
});
