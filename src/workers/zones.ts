// What each trust zone's worker runs and which credentials it reads from its environment. A zone reads
// only its own variables; `foureyes up` gives each worker process only those (docs/architecture.md, trust zones).
import type { FoureyesConfig } from '../config/schema.ts';
import { createDeployActivities } from '../activities/deploy.ts';
import { createChecksActivities } from '../activities/checks.ts';
import { createPolicyActivities } from '../activities/policy.ts';
import { createSlackActivities } from '../activities/slack.ts';
import { createEmergencyAnnounceActivities } from '../activities/emergency-announce.ts';
import { createTeamsActivities } from '../activities/teams.ts';
import { createGitHubActivities } from '../activities/github.ts';
import { lazyGitHubClients } from '../activities/github-client.ts';
import { createChangeHistoryActivities } from '../activities/change-history.ts';
import { createLaneActivities } from '../activities/lanes.ts';
import { guardCallers } from '../activities/caller-guard.ts';
import { createRollbackActivities } from '../activities/rollbacks.ts';
import { assertSandboxWorks, UNSAFE_NO_SANDBOX_ENV } from '../activities/sandbox.ts';
import { deployQueue, TASK_QUEUES, zoneQueue } from '../shared/task-queues.ts';

export type Zone = 'orchestrator' | 'checks' | 'deploy';

/**
 * The deploy zone's heartbeat throttle. A terminated change's deploy stops only when a heartbeat tells its worker
 * the workflow is gone; with the SDK's default (0.8 × the 30 s heartbeat timeout = 24 s) it ran on next to the
 * lane's next grant. The lane also waits after a reclaim (src/workflows/lane.ts, reclaim grace) for slower workers.
 */
export const DEPLOY_HEARTBEAT_THROTTLE = {
  maxHeartbeatThrottleInterval: '2s',
  defaultHeartbeatThrottleInterval: '2s',
} as const;

export interface ZoneDefinition {
  taskQueue: string;
  runsWorkflows: boolean;
  /** Variables this zone may receive from `foureyes up`, beyond Temporal's and FOUREYES_CONFIG. */
  allowedEnv: string[];
  createActivities(config: () => FoureyesConfig, env: NodeJS.ProcessEnv): Promise<object>;
}

/** Names (never values) of the variables a worker holds, so a test or an operator can see its zone's reach. */
function zoneInfoActivity(zone: Zone) {
  return {
    [`zoneInfo_${zone}`]: async () => ({
      zone,
      pid: process.pid,
      env: Object.keys(process.env).sort(),
      hasVaultCredential: Boolean(
        process.env.VAULT_TOKEN || process.env.VAULT_SECRET_ID || process.env.FOUREYES_VAULT_APPROLE_FILE,
      ),
      hasGitHubCredential: Boolean(
        process.env.GITHUB_TOKEN || process.env.GITHUB_PRIVATE_KEY || process.env.GITHUB_PRIVATE_KEY_PATH,
      ),
    }),
  };
}

function approvalKeys(env: NodeJS.ProcessEnv): string[] {
  return (env.FOUREYES_APPROVAL_PUBLIC_KEYS ?? '')
    .split(',')
    .map((k) => k.trim().toLowerCase())
    .filter(Boolean);
}

/** The Teams bot's identity and credential, for proactive approval cards: the orchestrator's alone. */
export const TEAMS_BOT_ENV = [
  'TEAMS_CONVERSATION_ID',
  'TEAMS_APP_ID',
  'TEAMS_TENANT_ID',
  'TEAMS_APP_PASSWORD',
  'TEAMS_APP_CERTIFICATE_FILE',
  'TEAMS_APP_PRIVATE_KEY_FILE',
  'TEAMS_LOGIN_URL',
];

/** The AWS SDK's default credential chain in the deploy zone (instance/task role, web identity, or keys). */
export const DEPLOYER_AWS_ENV = [
  'AWS_REGION',
  'AWS_DEFAULT_REGION',
  'AWS_ROLE_ARN',
  'AWS_ROLE_SESSION_NAME',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
];

/**
 * The one environment a deploy worker serves (`staging`): it polls `<queue>-deploy-<env>`, holds only that
 * environment's AppRole and refuses inputs for any other. Unset: the shared `<queue>-deploy` queue, which only runs
 * recorded before the per-environment deployers still use (docs/operations.md, upgrade order).
 */
export const DEPLOY_ENVIRONMENT_ENV = 'FOUREYES_DEPLOY_ENVIRONMENT';

/** The environment a deploy worker serves, checked against the configuration (undefined: the shared queue). */
export function deployEnvironment(env: NodeJS.ProcessEnv, config?: FoureyesConfig): string | undefined {
  const name = env[DEPLOY_ENVIRONMENT_ENV]?.trim();
  if (!name) return undefined;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name))
    throw new Error(`${DEPLOY_ENVIRONMENT_ENV}: not an environment name: ${JSON.stringify(name)}`);
  if (config && !config.environments.some((e) => e.name === name))
    throw new Error(
      `${DEPLOY_ENVIRONMENT_ENV}=${name}: no such environment in the configuration (${config.environments.map((e) => e.name).join(', ')})`,
    );
  return name;
}

/** The orchestrator's activities that act for a change (the rest read): each checks its caller (caller-guard.ts). */
export const ORCHESTRATOR_ACTING_ACTIVITIES = [
  'mergePullRequest',
  'syncGitHub',
  'notifySlack',
  'syncTeamsCard',
  'announceEmergency',
];

export const ZONES: Record<Zone, ZoneDefinition> = {
  orchestrator: {
    taskQueue: TASK_QUEUES.orchestrator,
    runsWorkflows: true,
    allowedEnv: [
      'FOUREYES_APPROVAL_PUBLIC_KEYS',
      'GITHUB_API_URL',
      'GITHUB_TOKEN',
      'GITHUB_APP_ID',
      'GITHUB_PRIVATE_KEY',
      'GITHUB_PRIVATE_KEY_PATH',
      'GITHUB_INSTALLATION_ID',
      'SLACK_BOT_TOKEN',
      'SLACK_API_URL',
      'SLACK_CHANNEL',
      'FOUREYES_WORKFLOW_BUNDLE',
      ...TEAMS_BOT_ENV,
    ],
    async createActivities(config, env) {
      const keys = approvalKeys(env);
      // One set of GitHub clients (and so one App installation token cache) for every GitHub activity.
      const github = lazyGitHubClients(env);
      const gitHub = createGitHubActivities(config, env, keys, github);
      const activities = {
        ...zoneInfoActivity('orchestrator'),
        ...createPolicyActivities(config, keys),
        ...createChangeHistoryActivities(config, keys),
        ...createSlackActivities(env),
        ...createEmergencyAnnounceActivities({ env, trustedKeys: keys, github }),
        ...createTeamsActivities(config, env, keys),
        ...gitHub,
        ...createLaneActivities(env, { compareCommits: gitHub.compareCommits }),
        ...createRollbackActivities(config, keys),
      };
      // What acts with foureyes' GitHub, Slack and Teams identities (merge, report, post) serves only a change's own workflow.
      return guardCallers(activities, { zone: 'orchestrator', only: ORCHESTRATOR_ACTING_ACTIVITIES });
    },
  },
  checks: {
    taskQueue: TASK_QUEUES.checks,
    runsWorkflows: false,
    // Nothing: the change's own code runs here, so this zone holds no token of any kind.
    allowedEnv: [UNSAFE_NO_SANDBOX_ENV],
    async createActivities(config, env) {
      // Refuse to start rather than run the change's code outside a sandbox by accident.
      assertSandboxWorks(env);
      return { ...zoneInfoActivity('checks'), ...createChecksActivities(config) };
    },
  },
  deploy: {
    taskQueue: TASK_QUEUES.deploy,
    runsWorkflows: false,
    // AWS_*: the deployer's own AWS identity, for `aws-secret` leases (never handed to the deploy command).
    allowedEnv: [
      'VAULT_ADDR',
      'VAULT_NAMESPACE',
      'VAULT_ROLE_ID',
      'VAULT_SECRET_ID',
      'FOUREYES_VAULT_APPROLE_FILE',
      DEPLOY_ENVIRONMENT_ENV,
      UNSAFE_NO_SANDBOX_ENV,
      ...DEPLOYER_AWS_ENV,
    ],
    async createActivities(config, env) {
      assertSandboxWorks(env);
      const environment = deployEnvironment(env, config());
      // Only a change's own workflow, or a rollback's for its own request, on a queue foureyes polls, may ask for a
      // deploy, a verify or a revoke; an environment's deployer only for its own environment.
      return {
        ...zoneInfoActivity('deploy'),
        ...guardCallers(createDeployActivities(config, env), {
          zone: 'deploy',
          ...(environment ? { environment } : {}),
        }),
      };
    },
  },
};

/**
 * FOUREYES_TASK_QUEUE renames the orchestrator's queue (default `foureyes`); the other zones follow it
 * (`<queue>-checks`, `<queue>-deploy-<env>` with FOUREYES_DEPLOY_ENVIRONMENT, else the shared `<queue>-deploy`),
 * as the workflow routes its activities the same way.
 */
export function zoneTaskQueue(zone: Zone, env: NodeJS.ProcessEnv = process.env): string {
  const base = env.FOUREYES_TASK_QUEUE || TASK_QUEUES.orchestrator;
  if (zone === 'orchestrator') return base;
  const environment = zone === 'deploy' ? deployEnvironment(env) : undefined;
  return environment ? deployQueue(base, environment) : zoneQueue(base, zone);
}
