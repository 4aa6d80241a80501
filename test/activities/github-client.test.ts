// What the orchestrator's GitHub look-ups say when the credentials cannot do what they must: a refused token,
// an App not installed on the repository, an installation that does not cover it. The message (which the
// change's timeline shows) names the variable or the repository and what to do, and the failure is not
// retried, since retrying cannot fix it. Over real HTTP against the GitHub stand-in.
import { ApplicationFailure } from '@temporalio/activity';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGitHubActivities } from '../../src/activities/github.ts';
import { createGitHubClients, GitHubConfigError } from '../../src/activities/github-client.ts';
import { parseConfig } from '../../src/config/load.ts';
import { startGitHubStandin, type RunningStandin } from '../../src/dev/github-standin/index.ts';

let gh: RunningStandin;
let dir: string;
let app: { appId: number; installationId: number; privateKey: string };
let pull: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'foureyes-github-client-'));
  gh = await startGitHubStandin({ dataDir: dir });
  gh.standin.addUser({ login: 'sam-dev', email: 'sam@example.com' });
  gh.standin.createRepo({ fullName: 'acme/shop' });
  gh.standin.createRepo({ fullName: 'acme/billing' });
  pull = (
    await gh.standin.openPullRequest({
      repo: 'acme/billing',
      author: 'sam-dev',
      title: 'x',
      commits: [{ message: 'x' }],
    })
  ).pull.number;
  app = gh.standin.addApp({ slug: 'foureyes', repositories: ['acme/shop'] });
});
afterAll(async () => {
  await gh?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const config = () =>
  parseConfig(
    `people: [{ github: sam-dev, emails: [sam@example.com] }]\nenvironments: [{ name: staging, deploy: { run: "true" } }]\nrepositories: [{ name: acme/billing, remote: /tmp/x }]\n`,
    'test.yaml',
  );

async function lookUpFailure(env: NodeJS.ProcessEnv): Promise<ApplicationFailure> {
  const activities = createGitHubActivities(config, { GITHUB_API_URL: gh.url, ...env });
  const error = await activities
    .lookUpPullRequestChanges({ change: `acme/billing#${pull}`, kind: 'opened', headSha: 'x' })
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(error).toBeInstanceOf(ApplicationFailure);
  return error as ApplicationFailure;
}

describe('GitHub look-ups the credentials cannot make', () => {
  it('an App not installed on the repository: names the App and the repository, not retried', async () => {
    const failure = await lookUpFailure({ GITHUB_APP_ID: String(app.appId), GITHUB_PRIVATE_KEY: app.privateKey });
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toBe(
      `the GitHub App ${app.appId} is not installed on acme/billing: install it on that repository (the App's page → Install App); push again or close and reopen the pull request once that is fixed`,
    );
  });

  it('a fixed installation that does not cover the repository: names GITHUB_INSTALLATION_ID and the repository', async () => {
    const failure = await lookUpFailure({
      GITHUB_APP_ID: String(app.appId),
      GITHUB_PRIVATE_KEY: app.privateKey,
      GITHUB_INSTALLATION_ID: String(app.installationId),
    });
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toMatch(
      new RegExp(
        `^installation GITHUB_INSTALLATION_ID=${app.installationId} of the GitHub App ${app.appId} does not cover acme/billing: add the repository to the installation`,
      ),
    );
  });

  it('a token GitHub refuses (401): names GITHUB_TOKEN, never the token, not retried', async () => {
    const failure = await lookUpFailure({ GITHUB_TOKEN: 'ghp_revoked_token_value_123' });
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toBe(
      `GitHub at ${gh.url} refused GITHUB_TOKEN (401 Bad credentials): the token is wrong, expired or revoked; create a new one and restart foureyes`,
    );
    expect(JSON.stringify(failure)).not.toContain('ghp_revoked_token_value_123');
  });

  it('a pull request that does not exist stays an ordinary 404 when the repository is reachable', async () => {
    const clients = createGitHubClients(
      { GITHUB_API_URL: gh.url, GITHUB_APP_ID: String(app.appId), GITHUB_PRIVATE_KEY: app.privateKey },
      { retries: 0 },
    );
    const octokit = await clients.forRepo('acme', 'shop');
    const error = await octokit.rest.pulls
      .get({ owner: 'acme', repo: 'shop', pull_number: 999 })
      .catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(GitHubConfigError);
    expect(error).toMatchObject({ status: 404 });
  });
});
