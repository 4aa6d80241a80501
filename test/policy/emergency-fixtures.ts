// A repository policy with break-glass, for the pure tests of the emergency rule and its insiders.
import type { ChangePolicy, EnvironmentPolicy } from '../../src/shared/types.ts';

export function environmentPolicy(name: string, eligible: string[], required = 1): EnvironmentPolicy {
  return { name, required, eligible, expiryMs: 3_600_000, confirm: false, deployTimeoutMs: 60_000, leaseTtlMs: 60_000 };
}

/** acme/shop, jo the policy owner, `allowed` may declare (a 1h window, review within 2h), `key` the gateway's. */
export function emergencyPolicy(input: {
  key: string;
  environments: EnvironmentPolicy[];
  people: string[];
  allowed: string[];
}): ChangePolicy {
  return {
    repo: 'acme/shop',
    environments: input.environments,
    people: input.people.map((github) => ({ github, emails: [] })),
    policyOwners: ['jo'],
    policyPaths: ['deploy/**'],
    checks: [],
    merge: false,
    approvalKeys: [input.key],
    claimMaxAgeMs: 15 * 60_000,
    temporalUiUrl: '',
    namespace: 'foureyes',
    defaultBranch: 'main',
    emergency: { allowed: input.allowed, windowMs: 3_600_000, reviewWithinMs: 7_200_000, overrideFailingChecks: false },
  };
}
