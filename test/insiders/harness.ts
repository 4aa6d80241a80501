// What the insider tests stand on: the real gateway (webhooks from the GitHub stand-in, the approval API),
// the real orchestrator zone (the bundled changeWorkflow, GitHub look-ups over HTTP at the stand-in) and
// the real checks zone, on the shared Temporal dev server; the deploy zone is a double that records what it
// was asked to deploy (its own tests use OpenBao). An attacker here is anyone with a Temporal client and
// no gateway key, or a GitHub user who can push, close, reopen and retarget pull requests.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StandinPull } from '../../src/dev/github-standin/model.ts';
import type { ChangeStatus, DeployInput, DeployReport, VerifyReport } from '../../src/shared/types.ts';
import { startGatewayStack, threePeopleConfig, type GatewayStack } from '../helpers/gateway-stack.ts';

export interface InsiderStack extends GatewayStack {
  /** Every deploy the deploy zone was asked to run. */
  deployed: DeployInput[];
  /** POST /api/changes/acme/shop/{n}/approvals as `login` (their stand-in token); the answer's status and JSON. */
  approveApi(
    login: string,
    number: number,
    body: Record<string, unknown>,
  ): Promise<{ status: number; json: Record<string, unknown> }>;
  /** The change's status through the gateway (undefined: no such change). */
  statusOf(number: number): Promise<ChangeStatus | undefined>;
  until(number: number, what: string, ok: (s: ChangeStatus) => boolean, timeoutMs?: number): Promise<ChangeStatus>;
  /** The head commit of acme/shop's default branch. */
  mainSha(): string;
}

export const PEOPLE = ['sam-dev', 'alex-reviewer', 'jo-platform'];

export async function startInsiderStack(
  name: string,
  options: { repository?: string[]; production?: string } = {},
): Promise<InsiderStack> {
  const secret = randomBytes(20).toString('hex');
  const app: { appId?: number; privateKey?: string } = {};
  const appEnv = (s: GatewayStack) => {
    if (app.appId === undefined) Object.assign(app, s.github.standin.addApp({ slug: 'foureyes' }));
    return { GITHUB_APP_ID: String(app.appId), GITHUB_PRIVATE_KEY: app.privateKey as string };
  };
  const deployed: DeployInput[] = [];
  const deployDouble = {
    async deploy(input: DeployInput): Promise<DeployReport> {
      deployed.push(input);
      return {
        environment: input.environment,
        sha: input.sha,
        status: 'deployed',
        exitCode: 0,
        durationMs: 1,
        outputTail: '',
        leases: [],
      };
    },
    async verify(input: DeployInput): Promise<VerifyReport> {
      return {
        environment: input.environment,
        sha: input.sha,
        passed: true,
        exitCode: 0,
        durationMs: 1,
        outputTail: '',
        leases: [],
      };
    },
    async revokeOutstanding() {
      return [];
    },
  };
  const base = await startGatewayStack({
    name,
    configYaml: (remote) =>
      threePeopleConfig(remote, {
        repository: options.repository ?? [],
        ...(options.production ? { production: options.production } : {}),
      }),
    users: PEOPLE,
    repoFiles: { 'README.md': 'shop\n' },
    gatewayEnv: (s) => ({ GITHUB_WEBHOOK_SECRET: secret, ...appEnv(s) }),
    orchestratorEnv: appEnv,
    deployActivities: deployDouble,
  });
  base.github.standin.setWebhook(`${base.gatewayUrl}/webhooks/github`, secret);
  const stack = base as InsiderStack;
  stack.deployed = deployed;
  stack.approveApi = async (login, number, body) => {
    const res = await fetch(`${stack.gatewayUrl}/api/changes/acme/shop/${number}/approvals`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${stack.tokens[login]}`,
        'content-type': 'application/json',
        'x-foureyes-client': 'cli',
      },
      body: JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  stack.statusOf = async (number) => {
    const res = await fetch(`${stack.gatewayUrl}/api/changes/acme/shop/${number}`, {
      headers: { authorization: `Bearer ${stack.tokens['jo-platform']}` },
    });
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw new Error(`status of #${number}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as ChangeStatus;
  };
  stack.until = async (number, what, ok, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    let last: ChangeStatus | undefined;
    while (Date.now() < deadline) {
      last = await stack.statusOf(number).catch(() => undefined);
      if (last && ok(last)) return last;
      await sleep(200);
    }
    throw new Error(
      `timed out waiting for ${what}; last status: ${JSON.stringify(last && { stage: last.stage, headSha: last.headSha, waitingFor: last.waitingFor, timeline: last.timeline.slice(-6) })}`,
    );
  };
  stack.mainSha = () => stack.github.standin.baseSha({ repo: 'acme/shop', baseRef: 'main' } as StandinPull);
  return stack;
}

/** Deploys of one commit, in order, as the deploy zone saw them. */
export function deploysOf(stack: InsiderStack, sha: string): string[] {
  return stack.deployed.filter((d) => d.sha === sha).map((d) => d.environment);
}

/** Waits a little and asserts that nothing was deployed for `sha` (the deploy zone would have been asked by now). */
export async function neverDeployed(stack: InsiderStack, sha: string, settleMs = 3000): Promise<void> {
  await sleep(settleMs);
  if (deploysOf(stack, sha).length > 0)
    throw new Error(`${sha.slice(0, 7)} was deployed to ${deploysOf(stack, sha).join(', ')}`);
}
