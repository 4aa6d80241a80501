// A deploy or verify command that ran and failed, in words a person can act on. The workflow, the pull request
// comment and the audit say it the same way, whether the report came back as a result or (histories recorded
// before failed commands were results) as the details of a DeployFailed/VerifyFailed failure.
import type { DeployReport, EnvironmentStatus, VerifyReport } from './types.ts';

export type StepName = 'deploy' | 'verify';

const FAILURE_TYPES: Record<string, { step: StepName; timedOut: boolean }> = {
  DeployFailed: { step: 'deploy', timedOut: false },
  DeployTimedOut: { step: 'deploy', timedOut: true },
  VerifyFailed: { step: 'verify', timedOut: false },
  VerifyTimedOut: { step: 'verify', timedOut: true },
};

/** The last few lines of a step's output (redacted by the deploy zone), on one line. */
export function lastOutput(tail: string, lines = 3, max = 300): string {
  const text = tail
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-lines)
    .join(' ⏎ ');
  return text.length > max ? `…${text.slice(-max)}` : text;
}

/** Why the command failed: the report's own words, or what its exit code and time-out say. */
export function failureOf(report: Pick<DeployReport, 'exitCode' | 'failure' | 'timedOut'>): string {
  if (report.failure) return report.failure;
  if (report.timedOut) return 'timed out and was killed';
  return report.exitCode === null ? 'was killed by a signal' : `exited with code ${report.exitCode}`;
}

export function stepFailureText(
  step: StepName,
  report: (DeployReport | VerifyReport) & { environment: string; sha: string },
): string {
  const what =
    step === 'deploy' ? `deploy of ${report.sha.slice(0, 7)} to` : `verification of ${report.sha.slice(0, 7)} in`;
  const tail = lastOutput(report.outputTail ?? '');
  const seconds = (report.durationMs / 1000).toFixed(1);
  return `${what} ${report.environment} failed: the command ${failureOf(report)} after ${seconds} s${tail ? `; last output: ${tail}` : ''}`;
}

/** The report a DeployFailed/VerifyFailed failure carried in its details, with what its type says. */
export function reportOfFailure(
  type: string | undefined | null,
  details: unknown,
): { step: 'deploy'; report: DeployReport } | { step: 'verify'; report: VerifyReport } | undefined {
  const kind = type ? FAILURE_TYPES[type] : undefined;
  if (!kind || typeof details !== 'object' || details === null) return undefined;
  const body = details as Partial<DeployReport & VerifyReport>;
  if (typeof body.environment !== 'string' || typeof body.sha !== 'string') return undefined;
  const common = {
    environment: body.environment,
    sha: body.sha,
    exitCode: typeof body.exitCode === 'number' ? body.exitCode : null,
    durationMs: typeof body.durationMs === 'number' ? body.durationMs : 0,
    outputTail: typeof body.outputTail === 'string' ? body.outputTail : '',
    leases: Array.isArray(body.leases) ? body.leases : [],
    ...(kind.timedOut ? { timedOut: true } : {}),
  };
  return kind.step === 'deploy'
    ? { step: 'deploy', report: { ...common, status: 'failed' } }
    : { step: 'verify', report: { ...common, passed: false } };
}

/** The step of an environment whose command ran and failed, if one did. */
export function failedStep(
  env: EnvironmentStatus,
): { step: 'deploy'; report: DeployReport } | { step: 'verify'; report: VerifyReport } | undefined {
  if (env.deploy?.status === 'failed') return { step: 'deploy', report: env.deploy };
  if (env.verify && !env.verify.passed) return { step: 'verify', report: env.verify };
  return undefined;
}
