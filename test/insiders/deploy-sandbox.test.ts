// A staging deploy command that attacks its deployer: it looks for the deployer's AppRole secret (the
// secrets file and VAULT_SECRET_ID in the worker's environ) and tries to mint a production token, with
// its own staging lease and with whatever AppRole it found. Real deployer process, real OpenBao.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { bootstrapOpenBao, tokenRoleName, VaultAdmin, type DeployerCredentials } from '../../src/dev/openbao.ts';

const root = mkdtempSync(join(tmpdir(), 'foureyes-deploy-sbx-test-'));
const remote = join(root, 'remote');
const configFile = join(root, 'foureyes.yaml');
const approleFile = join(root, 'secrets', 'deployer_approle');
const prefix = `t19${randomBytes(3).toString('hex')}`;
let creds: DeployerCredentials;
let admin: VaultAdmin;
let sha: string;

function git(...args: string[]): string {
  return execFileSync('git', args, {
    cwd: remote,
    env: {
      PATH: process.env.PATH,
      HOME: remote,
      GIT_AUTHOR_NAME: 'Mallory',
      GIT_AUTHOR_EMAIL: 'm@example.com',
      GIT_COMMITTER_NAME: 'Mallory',
      GIT_COMMITTER_EMAIL: 'm@example.com',
    },
  })
    .toString()
    .trim();
}

/** A node one-liner the deploy command runs: POSTs to OpenBao and prints `label: <status>`. */
function mint(label: string, tokenExpr: string): string {
  const js = `const a=process.env.VAULT_ADDR;const t=${tokenExpr};if(!t){console.log('${label}: no token');process.exit(0)}fetch(a+'/v1/auth/token/create/${tokenRoleName(prefix, 'production')}',{method:'POST',headers:{'X-Vault-Token':t},body:'{}'}).then(r=>console.log('${label}: '+r.status),e=>console.log('${label}: '+e.message))`;
  return `node -e "${js}"`;
}

beforeAll(async () => {
  mkdirSync(remote);
  git('init', '-q', '-b', 'main');
  writeFileSync(
    join(remote, 'deploy.sh'),
    [
      // The AppRole secret, as docker-compose mounts it and as the worker's environ carries it.
      `echo "approle-file: $(cat ${approleFile} 2>&1 | head -c 200)"`,
      'sid=$(for f in /proc/[0-9]*/environ; do { tr "\\0" "\\n" < "$f"; } 2>/dev/null; done | grep -m1 "^VAULT_SECRET_ID=" | cut -d= -f2-)',
      'rid=$(for f in /proc/[0-9]*/environ; do { tr "\\0" "\\n" < "$f"; } 2>/dev/null; done | grep -m1 "^VAULT_ROLE_ID=" | cut -d= -f2-)',
      'echo "secret-id-found=${sid:+yes}"',
      // Production credentials with the staging lease…
      mint('mint-with-lease', 'process.env.VAULT_TOKEN'),
      // …and with the deployer's AppRole, if it got hold of it.
      `[ -n "$sid" ] && node -e "fetch(process.env.VAULT_ADDR+'/v1/auth/approle/login',{method:'POST',body:JSON.stringify({role_id:'$rid',secret_id:'$sid'})}).then(r=>r.json()).then(j=>console.log('approle-token='+j.auth.client_token))" > /tmp/login`,
      `[ -s /tmp/login ] && export APPROLE_TOKEN=$(cut -d= -f2 /tmp/login) && ${mint('mint-with-approle', 'process.env.APPROLE_TOKEN')}`,
      'echo "deploy probe done"',
    ].join('\n'),
  );
  git('add', '.');
  git('commit', '-q', '-m', 'staging deploy');
  sha = git('rev-parse', 'HEAD');
  const yaml = `
environments:
  - name: staging
    deploy: { run: "sh deploy.sh", timeout: 60s }
    lease: { kind: token, ttl: 5m, env: { VAULT_TOKEN: token, VAULT_ADDR: addr } }
  - name: production
    deploy: { run: "echo production", timeout: 60s }
    lease: { kind: token, ttl: 5m, env: { VAULT_TOKEN: token, VAULT_ADDR: addr } }
repositories:
  - name: acme/shop
    remote: ${JSON.stringify(remote)}
vault: { prefix: ${prefix} }
`;
  writeFileSync(configFile, yaml);
  admin = new VaultAdmin(inject('baoAddress'), inject('baoRootToken'));
  creds = await bootstrapOpenBao(admin, parseConfig(yaml, configFile));
  mkdirSync(join(root, 'secrets'));
  writeFileSync(approleFile, JSON.stringify(creds));
}, 60_000);

afterAll(() => rmSync(root, { recursive: true, force: true }));

async function deployInWorker(
  environment: string,
): Promise<{ report?: { outputTail: string; status: string }; failure?: string }> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(import.meta.dirname, 'fixtures', 'deploy-worker.ts'),
      'acme/shop#9',
      environment,
      sha,
      `key-${randomBytes(4).toString('hex')}`,
    ],
    {
      env: {
        PATH: process.env.PATH,
        HOME: root,
        FOUREYES_CONFIG: configFile,
        VAULT_ADDR: creds.address,
        VAULT_ROLE_ID: creds.roleId,
        VAULT_SECRET_ID: creds.secretId,
        FOUREYES_VAULT_APPROLE_FILE: approleFile,
        ...(process.env.FOUREYES_UNSAFE_NO_SANDBOX
          ? { FOUREYES_UNSAFE_NO_SANDBOX: process.env.FOUREYES_UNSAFE_NO_SANDBOX }
          : {}),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`deployer exited ${code}: ${err.slice(-2000)}`);
  return JSON.parse(out.trim().split('\n').pop() as string) as {
    report?: { outputTail: string; status: string };
    failure?: string;
  };
}

describe('a staging deploy command that attacks its deployer', () => {
  it('cannot read the AppRole secret nor mint a production token; the attempt is in its (redacted) output', async () => {
    const result = await deployInWorker('staging');
    const out = result.report?.outputTail ?? result.failure ?? '';
    console.log(`deploy output:\n${out}`);
    expect(out).toContain('deploy probe done');
    expect.soft(out).toMatch(/^approle-file: cat: .*No such file or directory/m);
    expect.soft(out).not.toContain(creds.secretId);
    expect.soft(out).toMatch(/^secret-id-found=$/m);
    // The staging lease's token may not create production tokens.
    expect.soft(out).toMatch(/^mint-with-lease: 403$/m);
    expect.soft(out).not.toMatch(/^mint-with-approle: 200$/m);
    // Nothing minted a production token: the production role has issued none.
    const accessors = await admin
      .request<{ data?: { keys?: string[] } }>('LIST', 'auth/token/accessors')
      .then((r) => r.data?.keys ?? []);
    const production: string[] = [];
    for (const accessor of accessors) {
      const info = await admin
        .request<{ data: { role?: string } }>('POST', 'auth/token/lookup-accessor', { accessor })
        .catch(() => undefined);
      if (info?.data.role === tokenRoleName(prefix, 'production')) production.push(accessor);
    }
    expect.soft(production).toEqual([]);
  });
});
