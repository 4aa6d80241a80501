// Orchestrator activity: the policy snapshot a change is decided with, resolved from the trusted
// configuration the orchestrator was started with. The workflow never reads policy from the change.
import { ApplicationFailure } from '@temporalio/activity';
import type { FoureyesConfig } from '../config/schema.ts';
import { createHash } from 'node:crypto';
import { canonicalJson } from '../shared/approval-signature.ts';
import type { ChangePolicy } from '../shared/types.ts';

export function resolvePrincipals(config: FoureyesConfig, principals: string[]): string[] {
  const out = new Set<string>();
  for (const who of principals) {
    if (who.startsWith('team:')) for (const member of config.teams[who.slice(5)] ?? []) out.add(member.toLowerCase());
    else out.add(who.toLowerCase());
  }
  return [...out].sort();
}

export function policyFor(config: FoureyesConfig, repo: string, approvalKeys: string[]): ChangePolicy {
  const repoConfig = config.repositories.find((r) => r.name.toLowerCase() === repo.toLowerCase());
  if (!repoConfig)
    throw ApplicationFailure.nonRetryable(`repository ${repo} is not configured in foureyes.yaml`, 'UnknownRepository');
  const envNames = repoConfig.environments ?? config.environments.map((e) => e.name);
  const environments = config.environments
    .filter((e) => envNames.includes(e.name))
    .sort((a, b) => envNames.indexOf(a.name) - envNames.indexOf(b.name))
    .map((e) => ({
      name: e.name,
      required: e.approval.required,
      eligible: resolvePrincipals(config, e.approval.eligible),
      expiryMs: e.approval.expiry,
      confirm: e.approval.confirm,
      deployTimeoutMs: e.deploy.timeout,
      verifyTimeoutMs: e.verify?.timeout,
      leaseTtlMs: e.lease.ttl,
      refuseUnknownIdentities: e.approval.refuseUnknownIdentities,
    }));
  const policy: ChangePolicy = {
    repo: repoConfig.name,
    environments,
    people: config.people.map((p) => ({
      github: p.github.toLowerCase(),
      emails: p.emails.map((m) => m.toLowerCase()),
      ...(p.slack ? { slack: p.slack } : {}),
    })),
    policyOwners: resolvePrincipals(config, repoConfig.policyOwners),
    policyPaths: repoConfig.policyPaths,
    checks: repoConfig.checks.map((c) => c.name),
    merge: repoConfig.merge,
    approvalKeys,
    claimMaxAgeMs: 15 * 60_000,
    temporalUiUrl: config.temporal.uiUrl,
    namespace: config.temporal.namespace,
    defaultBranch: repoConfig.defaultBranch,
  };
  const emergency = config.emergency;
  // Only when someone may declare: a policy without break-glass keeps the digest it had before the field existed.
  if (emergency.allowed.length > 0)
    policy.emergency = {
      allowed: resolvePrincipals(config, emergency.allowed),
      windowMs: emergency.window,
      reviewWithinMs: emergency.reviewWithin,
      overrideFailingChecks: emergency.overrideFailingChecks,
    };
  return { ...policy, digest: policyDigest(policy) };
}

/** A short, stable name for the policy in force: recorded with each decision, so an audit can tell which applied. */
export function policyDigest(policy: ChangePolicy): string {
  const { digest: _digest, ...rest } = policy;
  return createHash('sha256').update(canonicalJson(rest)).digest('hex').slice(0, 16);
}

export function createPolicyActivities(getConfig: () => FoureyesConfig, approvalKeys: string[]) {
  return {
    async loadPolicy(input: { repo: string }): Promise<ChangePolicy> {
      return policyFor(getConfig(), input.repo, approvalKeys);
    },
  };
}
