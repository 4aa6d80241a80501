// `foureyes up` exactly as `npm start` runs it (its own Temporal and OpenBao, on free ports), checked from
// the outside: the gateway answers, the namespace and search attributes exist, each environment's deployer
// AppRole is confined to its environment, a restart keeps open workflows, and Ctrl-C leaves nothing behind.
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { projectRoot } from '../../src/dev/paths.ts';
import { startUp, upTree, type UpProcess } from '../helpers/foureyes-up.ts';
import { survivors } from '../helpers/processes.ts';
import { SEARCH_ATTRIBUTES } from '../../src/shared/search-attributes.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'foureyes-up-'));
const configFile = join(projectRoot(), 'foureyes.example.yaml');
// Offline mode would start the GitHub stand-in; a webhook secret keeps this test about the stack itself.
const env = { GITHUB_WEBHOOK_SECRET: 'up-test-webhook-secret' };

async function stopWithCtrlC(up: UpProcess): Promise<number[]> {
  const pids = upTree(up);
  const code = await up.stop();
  expect(code, `foureyes up exited ${code} on Ctrl-C; its last output:\n${up.output().slice(-4000)}`).toBe(0);
  expect(up.output()).toMatch(
    /foureyes: stopped gateway, worker:deploy-production, worker:deploy-staging, worker:checks, worker:orchestrator, openbao, temporal\./,
  );
  return pids;
}

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('foureyes up', () => {
  it('runs the whole stack, confines the deployer, survives a restart and stops cleanly on Ctrl-C', async () => {
    const up = await startUp({ dataDir, configFile, env });
    const text = up.output();
    // It tells the user where everything is.
    expect(text).toContain(`gateway          http://127.0.0.1:${up.ports.gateway}`);
    expect(text).toContain(`Temporal UI      http://localhost:${up.ports.ui}`);
    expect(text).toContain(`OpenBao          http://127.0.0.1:${up.ports.bao}`);
    expect(text).toContain(`data folder      ${dataDir}`);
    // On a port of its own, it says how `foureyes status` finds this Temporal; with that line, status reaches it.
    const hint = /export TEMPORAL_ADDRESS=(\S+) TEMPORAL_NAMESPACE=(\S+)/.exec(text);
    expect(hint?.slice(1)).toEqual([`127.0.0.1:${up.ports.temporal}`, 'foureyes']);
    const status = spawnSync(process.execPath, [join(projectRoot(), 'bin', 'foureyes.js'), 'status', 'acme/shop#999'], {
      encoding: 'utf8',
      env: { ...process.env, TEMPORAL_ADDRESS: hint?.[1], TEMPORAL_NAMESPACE: hint?.[2] },
    });
    expect(status.stderr).toContain('no change acme/shop#999 in namespace foureyes');
    // The dev server prints its root token; it must not reach the console or the logs.
    expect(text).not.toMatch(/Root Token: root-/);
    expect(readFileSync(join(dataDir, 'logs', 'openbao.log'), 'utf8')).not.toMatch(/Root Token: root-/);

    const health = await fetch(`http://127.0.0.1:${up.ports.gateway}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', temporal: 'ok', namespace: 'foureyes' });

    const connection = await Connection.connect({ address: `127.0.0.1:${up.ports.temporal}` });
    const sa = await connection.operatorService.listSearchAttributes({ namespace: 'foureyes' });
    for (const name of Object.keys(SEARCH_ATTRIBUTES)) expect(sa.customAttributes ?? {}).toHaveProperty(name);
    // Closed changes stay in history (the audit record's source) for 30 days, not the dev server's 24 hours.
    const ns = await connection.workflowService.describeNamespace({ namespace: 'foureyes' });
    expect(Number(ns.config?.workflowExecutionRetentionTtl?.seconds)).toBe(30 * 86_400);

    // Each environment's deployer has an AppRole of its own. Staging's can log in and mint a staging token, but
    // neither it nor the staging token can read production's paths, and it cannot mint a production token at all.
    const bao = `http://127.0.0.1:${up.ports.bao}`;
    const approle = (environment: string) =>
      JSON.parse(readFileSync(join(dataDir, `deployer-approle-${environment}.json`), 'utf8')) as {
        roleId: string;
        secretId: string;
      };
    const loginAs = async (environment: string) => {
      const creds = approle(environment);
      const login = await fetch(`${bao}/v1/auth/approle/login`, {
        method: 'POST',
        body: JSON.stringify({ role_id: creds.roleId, secret_id: creds.secretId }),
      });
      expect(login.status).toBe(200);
      return ((await login.json()) as { auth: { client_token: string; policies: string[] } }).auth;
    };
    const deployerToken = await loginAs('staging');
    expect(deployerToken.policies).toContain('foureyes-deployer-staging');
    expect(deployerToken.policies).not.toContain('foureyes-deployer');
    // No shared deployer in a fresh stack: nothing was recorded before the per-environment deployers.
    expect(() => readFileSync(join(dataDir, 'deployer-approle.json'))).toThrow();
    const read = (token: string, path: string) => fetch(`${bao}/v1/${path}`, { headers: { 'X-Vault-Token': token } });
    expect((await read(deployerToken.client_token, 'secret/data/foureyes/production/db')).status).toBe(403);
    const mint = (token: string, environment: string) =>
      fetch(`${bao}/v1/auth/token/create/foureyes-${environment}`, {
        method: 'POST',
        headers: { 'X-Vault-Token': token },
        body: JSON.stringify({ policies: [`foureyes-env-${environment}`], ttl: '60s' }),
      });
    const staging = await mint(deployerToken.client_token, 'staging');
    expect(staging.status).toBe(200);
    const stagingToken = ((await staging.json()) as { auth: { client_token: string } }).auth.client_token;
    expect((await read(stagingToken, 'secret/data/foureyes/production/db')).status).toBe(403);
    // 404 (nothing stored yet) rather than 403: the staging token may read its own environment's paths.
    expect((await read(stagingToken, 'secret/data/foureyes/staging/db')).status).toBe(404);
    // The staging deployer cannot mint a production lease token, through production's role or through staging's.
    expect((await mint(deployerToken.client_token, 'production')).status).toBe(403);
    const escalate = await fetch(`${bao}/v1/auth/token/create/foureyes-staging`, {
      method: 'POST',
      headers: { 'X-Vault-Token': deployerToken.client_token },
      body: JSON.stringify({ policies: ['foureyes-env-production'] }),
    });
    expect(escalate.status).toBe(400);
    // Production's deployer mints production's.
    expect((await mint((await loginAs('production')).client_token, 'production')).status).toBe(200);

    // An open workflow (any long-lived workflow will do) survives a restart on the same data folder.
    const client = new Client({ connection, namespace: 'foureyes' });
    const handle = await client.workflow.start('changeWorkflow', {
      taskQueue: 'up-test-parked',
      workflowId: `up-test-${Date.now()}`,
      args: [{ change: 'acme/shop#1' }],
    });
    await connection.close();

    const first = await stopWithCtrlC(up);
    expect(first.length).toBeGreaterThanOrEqual(5);
    expect(await survivors(first)).toEqual([]);

    const current = await startUp({ dataDir, configFile, env });
    const again = await Connection.connect({ address: `127.0.0.1:${current.ports.temporal}` });
    const described = await new Client({ connection: again, namespace: 'foureyes' }).workflow
      .getHandle(handle.workflowId)
      .describe();
    expect(described.status.name).toBe('RUNNING');
    await again.close();

    const second = await stopWithCtrlC(current);
    expect(await survivors(second)).toEqual([]);
  }, 400_000);
});
