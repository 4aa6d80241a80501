// docker-compose.yml, the Dockerfile and deploy/ checked without a Docker engine: the compose file parses,
// every service is healthchecked, the checks worker cannot reach OpenBao, every variable a foureyes
// service uses is in README's variable table, no secret value is inlined; OpenBao's server-mode config
// really starts (raft storage), initialises and unseals as docs/operations.md says.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/dev/paths.ts';
import { freePort } from '../../src/dev/process.ts';
import { ensureTool } from '../../src/dev/tools.ts';
import { commands } from '../../src/cli/commands.ts';
import { SEARCH_ATTRIBUTES } from '../../src/shared/search-attributes.ts';

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test?: unknown; disable?: boolean };
  networks?: string[];
  ports?: string[];
  secrets?: string[];
}
interface Compose {
  services: Record<string, Service>;
  networks: Record<string, { internal?: boolean } | null>;
  secrets: Record<string, Record<string, unknown>>;
}

const root = projectRoot();
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const composeText = read('docker-compose.yml');
const compose = parse(composeText, { merge: true }) as Compose;
const foureyesServices = Object.entries(compose.services).filter(([, s]) => s.build !== undefined);

/** Names in the first column of README's "Environment variables" table; `TEMPORAL_TLS_*` is a prefix. */
function documentedVariables(): { names: Set<string>; prefixes: string[] } {
  const readme = read('README.md');
  const section = readme.slice(readme.indexOf('## Environment variables'));
  const table = section.slice(0, section.indexOf('\n## ', 5));
  const names = new Set<string>();
  const prefixes: string[] = [];
  for (const row of table.split('\n').filter((l) => l.startsWith('| '))) {
    const first = row.split('|')[1] ?? '';
    for (const [, name] of first.matchAll(/`([A-Z0-9_*]+)`/g)) {
      if (name!.endsWith('*')) prefixes.push(name!.slice(0, -1));
      else names.add(name!);
    }
  }
  return { names, prefixes };
}

const SECRET_NAME = /SECRET|TOKEN|PASSWORD|PWD|PRIVATE_KEY|API_KEY|SIGNING_KEY/;

describe('docker-compose.yml', () => {
  it('parses, and every service has a health check', () => {
    expect(Object.keys(compose.services)).toEqual(
      expect.arrayContaining([
        'postgresql',
        'temporal',
        'temporal-ui',
        'openbao',
        'gateway',
        'orchestrator',
        'checks',
        'deploy-staging',
        'deploy-production',
      ]),
    );
    for (const [name, service] of Object.entries(compose.services)) {
      expect(service.healthcheck?.test, `${name} has no healthcheck`).toBeDefined();
      expect(service.healthcheck?.disable, name).not.toBe(true);
    }
  });

  it('runs every foureyes process from the one image through a real CLI command', () => {
    expect(foureyesServices.map(([n]) => n).sort()).toEqual([
      'checks',
      'deploy',
      'deploy-production',
      'deploy-staging',
      'gateway',
      'orchestrator',
    ]);
    for (const [name, service] of foureyesServices) {
      const [node, bin, command, zone] = service.command ?? [];
      expect([node, bin], name).toEqual(['node', 'bin/foureyes.js']);
      expect(commands[command ?? ''], name).toBeDefined();
      if (command === 'worker') expect(name === zone || name.startsWith(`${zone}-`), name).toBe(true);
    }
  });

  it('keeps the checks worker off every network OpenBao is on, and OpenBao unpublished', () => {
    const bao = new Set(compose.services.openbao?.networks ?? []);
    const checks = compose.services.checks?.networks ?? [];
    expect(checks.length).toBeGreaterThan(0);
    expect(checks.filter((n) => bao.has(n))).toEqual([]);
    expect(compose.services.openbao?.ports ?? []).toEqual([]);
    for (const n of bao) expect(compose.networks[n]?.internal, `network ${n}`).toBe(true);
    // Only the deploy workers share a network with OpenBao.
    const neighbours = Object.entries(compose.services).filter(
      ([name, s]) => name !== 'openbao' && (s.networks ?? []).some((n) => bao.has(n)),
    );
    expect(neighbours.map(([n]) => n).sort()).toEqual(['deploy', 'deploy-production', 'deploy-staging']);
  });

  it('runs one deploy worker per environment of the example configuration, each with that environment’s AppRole alone', () => {
    const example = parse(read('foureyes.example.yaml')) as { environments: Array<{ name: string }> };
    for (const { name: environment } of example.environments) {
      const service = compose.services[`deploy-${environment}`];
      expect(service, `deploy-${environment}`).toBeDefined();
      expect(service?.environment?.FOUREYES_DEPLOY_ENVIRONMENT).toBe(environment);
      expect(service?.secrets).toEqual([`deployer_approle_${environment}`]);
      expect(service?.environment?.FOUREYES_VAULT_APPROLE_FILE).toBe(`/run/secrets/deployer_approle_${environment}`);
    }
    // The shared deployer (every environment's leases) runs only when asked for, during an upgrade.
    expect((compose.services.deploy as { profiles?: string[] }).profiles).toEqual(['upgrade']);
  });

  it('gives each worker only its own credentials', () => {
    const env = (name: string) => Object.keys(compose.services[name]?.environment ?? {});
    expect(env('checks').filter((k) => /VAULT|GITHUB|SLACK|SIGNING|APPROVAL/.test(k))).toEqual([]);
    for (const name of ['deploy', 'deploy-staging', 'deploy-production'])
      expect(env(name).filter((k) => /GITHUB|SLACK|SIGNING|APPROVAL/.test(k))).toEqual([]);
    expect(env('orchestrator').filter((k) => /VAULT|SIGNING_KEY|WEBHOOK/.test(k))).toEqual([]);
    expect(env('gateway').filter((k) => /VAULT/.test(k))).toEqual([]);
    expect(compose.services.checks?.secrets ?? []).toEqual([]);
  });

  it('uses only variables documented in README for the foureyes services', () => {
    const { names, prefixes } = documentedVariables();
    const documented = (v: string) => names.has(v) || prefixes.some((p) => v.startsWith(p));
    const used = new Set<string>();
    for (const [, service] of foureyesServices) {
      for (const key of Object.keys(service.environment ?? {})) used.add(key);
      for (const [, v] of JSON.stringify(service).matchAll(/\$\{([A-Z0-9_]+)/g)) used.add(v!);
    }
    const compositionOnly = new Set(['FOUREYES_IMAGE', 'FOUREYES_GATEWAY_BIND']);
    const undocumented = [...used].filter(
      (v) =>
        !documented(v) &&
        !(compositionOnly.has(v) && composeText.includes(v) && read('docs/operations.md').includes(v)),
    );
    expect(undocumented).toEqual([]);
  });

  it('inlines no secret value: secrets are ${…} from .env (no default) or files under /run/secrets', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const [key, value] of Object.entries(service.environment ?? {})) {
        if (!SECRET_NAME.test(key) || /_(PATH|FILE)$/.test(key)) continue;
        expect(String(value), `${name}.${key}`).toMatch(/^\$\{[A-Z0-9_]+(:\?[^}]*|:-)?\}$/);
      }
      for (const [key, value] of Object.entries(service.environment ?? {})) {
        if (/_(PATH|FILE)$/.test(key) && SECRET_NAME.test(key))
          expect(String(value), `${name}.${key}`).toMatch(/^\/run\/secrets\//);
      }
    }
    for (const [name, secret] of Object.entries(compose.secrets)) expect(Object.keys(secret), name).toEqual(['file']);
    // Nothing that looks like key material anywhere in the file.
    expect(composeText).not.toMatch(/BEGIN [A-Z ]*PRIVATE KEY|[0-9a-f]{64}|ghp_|xox[bp]-|hvs\.|s\.[A-Za-z0-9]{24}/);
  });

  it('registers the same search attributes as the dev stack', () => {
    const script = read('deploy/temporal/setup-namespace.sh');
    const listed = Object.fromEntries([...script.matchAll(/(Foureyes\w+)=(\w+)/g)].map((m) => [m[1], m[2]]));
    expect(listed).toEqual(SEARCH_ATTRIBUTES);
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  it('is multi-stage, installs production dependencies only, bundles at build time and runs as non-root', () => {
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toMatch(/FOUREYES_WORKFLOW_BUNDLE=\/app\/workflow-bundle\.js node bin\/foureyes\.js bundle/);
    const users = [...dockerfile.matchAll(/^USER (\S+)/gm)].map((m) => m[1]);
    expect(users.at(-1)).toMatch(/^[1-9]\d*(:[1-9]\d*)?$/);
    expect(dockerfile).toMatch(/^CMD \["node", "bin\/foureyes\.js", "gateway"\]/m);
    // tsx runs the sources in the image: it must be a production dependency.
    expect(
      (JSON.parse(read('package.json')) as { dependencies: Record<string, string> }).dependencies.tsx,
    ).toBeDefined();
    const ignore = read('.dockerignore');
    expect(ignore).toMatch(/^\.foureyes$/m);
    expect(ignore).toMatch(/\.pem/);
    // Development code (the local stack, its commands, the stand-ins) is not shipped; the build checks it.
    expect(ignore).toMatch(/^src\/dev$/m);
    expect(dockerfile).toMatch(/RUN test ! -e src\/dev/);
  });
});

describe('deploy/openbao/config.hcl', () => {
  it('starts OpenBao in server mode on raft storage; init and unseal as documented', async () => {
    const bao = ensureTool('bao');
    const dir = mkdtempSync(join(tmpdir(), 'foureyes-bao-server-'));
    const port = await freePort();
    const cluster = await freePort();
    mkdirSync(join(dir, 'data'));
    const config = read('deploy/openbao/config.hcl')
      .replace('/openbao/data', join(dir, 'data'))
      .replace('0.0.0.0:8200', `127.0.0.1:${port}`)
      .replace('http://openbao:8200', `http://127.0.0.1:${port}`)
      .replace('http://openbao:8201', `http://127.0.0.1:${cluster}`);
    writeFileSync(join(dir, 'config.hcl'), config);
    const server = spawn(bao, ['server', `-config=${join(dir, 'config.hcl')}`], {
      stdio: 'ignore',
      env: { PATH: process.env.PATH, HOME: dir },
    });
    const env = { PATH: process.env.PATH, HOME: dir, BAO_ADDR: `http://127.0.0.1:${port}` };
    try {
      const health = async () =>
        (await fetch(`http://127.0.0.1:${port}/v1/sys/health?sealedcode=200&uninitcode=200`)).json() as Promise<{
          initialized: boolean;
          sealed: boolean;
        }>;
      const deadline = Date.now() + 15_000;
      let first: { initialized: boolean; sealed: boolean } | undefined;
      while (!first) {
        first = await health().catch(() => undefined);
        if (!first && Date.now() > deadline) throw new Error('OpenBao did not answer');
        if (!first) await new Promise((r) => setTimeout(r, 200));
      }
      expect(first).toMatchObject({ initialized: false, sealed: true });
      const init = JSON.parse(
        execFileSync(bao, ['operator', 'init', '-key-shares=1', '-key-threshold=1', '-format=json'], {
          env,
          encoding: 'utf8',
        }),
      ) as { unseal_keys_b64: string[] };
      execFileSync(bao, ['operator', 'unseal', init.unseal_keys_b64[0]!], { env, stdio: 'ignore' });
      const status = JSON.parse(execFileSync(bao, ['status', '-format=json'], { env, encoding: 'utf8' })) as {
        sealed: boolean;
        storage_type: string;
      };
      expect(status).toMatchObject({ sealed: false, storage_type: 'raft' });
    } finally {
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
