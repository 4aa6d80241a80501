// The Temporal connection settings follow @temporalio/envconfig: mTLS files, an API key (Temporal Cloud),
// a profile from a config file, and TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE on top.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TemporalSettingsError, temporalSettings } from '../../src/shared/temporal-connection.ts';
import { workerDeploymentFromEnv } from '../../src/workers/deployment.ts';
import { changeFields, runtimeOptions } from '../../src/workers/telemetry.ts';

const dir = mkdtempSync(join(tmpdir(), 'foureyes-envconfig-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const text = (b: unknown) => Buffer.from(b as Uint8Array).toString('utf8');

describe('temporalSettings', () => {
  it('reads mTLS client certificate, key, CA and server name from TEMPORAL_TLS_* paths', () => {
    const { connectionOptions, namespace } = temporalSettings({
      TEMPORAL_ADDRESS: 'temporal.internal:7233',
      TEMPORAL_NAMESPACE: 'foureyes-prod',
      TEMPORAL_TLS_CLIENT_CERT_PATH: file('client.pem', 'CLIENT CERT'),
      TEMPORAL_TLS_CLIENT_KEY_PATH: file('client.key', 'CLIENT KEY'),
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: file('ca.pem', 'CA CERT'),
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
    });
    expect(namespace).toBe('foureyes-prod');
    expect(connectionOptions.address).toBe('temporal.internal:7233');
    const tls = connectionOptions.tls as {
      serverNameOverride?: string;
      serverRootCACertificate?: unknown;
      clientCertPair?: { crt: unknown; key: unknown };
    };
    expect(tls.serverNameOverride).toBe('temporal.internal');
    expect(text(tls.serverRootCACertificate)).toBe('CA CERT');
    expect(text(tls.clientCertPair?.crt)).toBe('CLIENT CERT');
    expect(text(tls.clientCertPair?.key)).toBe('CLIENT KEY');
  });

  it('a missing mTLS file, or a certificate without its key, is an error naming the variable', () => {
    const tls = {
      TEMPORAL_TLS_CLIENT_CERT_PATH: file('c.pem', 'CLIENT CERT'),
      TEMPORAL_TLS_CLIENT_KEY_PATH: file('c.key', 'CLIENT KEY'),
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: file('ca2.pem', 'CA CERT'),
    };
    for (const name of Object.keys(tls)) {
      const missing = join(dir, `absent-${name}.pem`);
      expect(() => temporalSettings({ ...tls, [name]: missing })).toThrow(
        new TemporalSettingsError(`${name}: cannot read ${missing} (missing, or not readable by this process)`),
      );
    }
    expect(() => temporalSettings({ TEMPORAL_TLS_CLIENT_CERT_PATH: tls.TEMPORAL_TLS_CLIENT_CERT_PATH })).toThrow(
      /^TEMPORAL_TLS_CLIENT_KEY_PATH is missing/,
    );
    expect(() => temporalSettings({ TEMPORAL_TLS_CLIENT_KEY_PATH: tls.TEMPORAL_TLS_CLIENT_KEY_PATH })).toThrow(
      /^TEMPORAL_TLS_CLIENT_CERT_PATH is missing/,
    );
  });

  it('takes TEMPORAL_API_KEY (Temporal Cloud) and turns TLS on with it', () => {
    const { connectionOptions } = temporalSettings({
      TEMPORAL_ADDRESS: 'foureyes.a1b2c.tmprl.cloud:7233',
      TEMPORAL_NAMESPACE: 'foureyes.a1b2c',
      TEMPORAL_API_KEY: 'test-api-key',
    });
    expect(connectionOptions.apiKey).toBe('test-api-key');
    expect(connectionOptions.tls).toBeTruthy();
  });

  it('reads a profile from TEMPORAL_CONFIG_FILE + TEMPORAL_PROFILE; variables override it', () => {
    const config = file(
      'temporal.toml',
      [
        '[profile.prod]',
        'address = "prod.example:7233"',
        'namespace = "from-profile"',
        'api_key = "profile-key"',
        '',
      ].join('\n'),
    );
    const fromProfile = temporalSettings({ TEMPORAL_CONFIG_FILE: config, TEMPORAL_PROFILE: 'prod' });
    expect(fromProfile.connectionOptions.address).toBe('prod.example:7233');
    expect(fromProfile.namespace).toBe('from-profile');
    expect(fromProfile.connectionOptions.apiKey).toBe('profile-key');
    const overridden = temporalSettings({
      TEMPORAL_CONFIG_FILE: config,
      TEMPORAL_PROFILE: 'prod',
      TEMPORAL_NAMESPACE: 'foureyes',
    });
    expect(overridden.namespace).toBe('foureyes');
  });

  it('defaults to the local dev server and the foureyes namespace', () => {
    const { connectionOptions, namespace } = temporalSettings({
      TEMPORAL_CONFIG_FILE: file('other.toml', '[profile.other]\naddress = "elsewhere:7233"\n'),
    });
    expect(connectionOptions.address).toBe('127.0.0.1:7233');
    expect(namespace).toBe('foureyes');
    expect(connectionOptions.tls).toBeFalsy();
  });
});

describe('workerDeploymentFromEnv', () => {
  it('is unversioned when neither variable is set (or both are empty)', () => {
    expect(workerDeploymentFromEnv({})).toBeUndefined();
    expect(workerDeploymentFromEnv({ FOUREYES_DEPLOYMENT_NAME: '', FOUREYES_BUILD_ID: '' })).toBeUndefined();
  });
  it('pins by default and allows auto-upgrade', () => {
    expect(
      workerDeploymentFromEnv({ FOUREYES_DEPLOYMENT_NAME: 'foureyes', FOUREYES_BUILD_ID: '2026.11.28-abc1234' }),
    ).toEqual({
      version: { deploymentName: 'foureyes', buildId: '2026.11.28-abc1234' },
      useWorkerVersioning: true,
      defaultVersioningBehavior: 'PINNED',
    });
    expect(
      workerDeploymentFromEnv({
        FOUREYES_DEPLOYMENT_NAME: 'foureyes',
        FOUREYES_BUILD_ID: 'b',
        FOUREYES_VERSIONING_BEHAVIOR: 'auto-upgrade',
      })?.defaultVersioningBehavior,
    ).toBe('AUTO_UPGRADE');
  });
  it('refuses half a configuration and unknown behaviours', () => {
    expect(() => workerDeploymentFromEnv({ FOUREYES_BUILD_ID: 'b' })).toThrow(
      /FOUREYES_DEPLOYMENT_NAME and FOUREYES_BUILD_ID/,
    );
    expect(() =>
      workerDeploymentFromEnv({
        FOUREYES_DEPLOYMENT_NAME: 'd',
        FOUREYES_BUILD_ID: 'b',
        FOUREYES_VERSIONING_BEHAVIOR: 'sometimes',
      }),
    ).toThrow(/pinned/);
  });
});

describe('worker telemetry options', () => {
  it('keeps the SDK defaults when nothing is asked for', () => {
    expect(runtimeOptions('worker:checks', {})).toBeUndefined();
  });
  it('maps the SDK log metadata to the change reference and run ID', () => {
    expect(changeFields({ workflowId: 'change:acme/app#7', runId: 'r1', taskQueue: 'foureyes' })).toEqual({
      change: 'acme/app#7',
      runId: 'r1',
      taskQueue: 'foureyes',
    });
    expect(changeFields({ workflowId: 'change:acme/app#7', workflowRunId: 'r2', activityType: 'deploy' })).toEqual({
      change: 'acme/app#7',
      runId: 'r2',
      activityType: 'deploy',
    });
  });
  it('writes SDK log entries as JSON lines', () => {
    const lines: string[] = [];
    const options = runtimeOptions('worker:orchestrator', { FOUREYES_LOG_FORMAT: 'json' }, (line) => lines.push(line));
    options?.logger?.info('Workflow started', { workflowId: 'change:acme/app#7', runId: 'r1' });
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({
      level: 'info',
      component: 'worker:orchestrator',
      msg: 'Workflow started',
      change: 'acme/app#7',
      runId: 'r1',
    });
  });
});
