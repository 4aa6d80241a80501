// The orchestrator's activities for workflow tests: the real loadPolicy over a test configuration, and
// answers at once for what would reach GitHub or Slack. No vitest imports: a child process (fixtures/) uses it.
import { createPolicyActivities } from '../../src/activities/policy.ts';
import type { FoureyesConfig } from '../../src/config/schema.ts';

export function orchestratorDoubles(config: FoureyesConfig, approvalPublicKey: string) {
  return {
    ...createPolicyActivities(() => config, [approvalPublicKey]),
    async syncGitHub() {},
    async confirmReviews() {
      return { ok: true, reason: 'reviews stand' };
    },
    async notifySlack() {
      return { posted: true };
    },
    // Teams is not configured here: the card tracker asks once per head and stops.
    async syncTeamsCard() {
      return { configured: false };
    },
    async mergePullRequest(input: { sha: string }) {
      return { merged: true, reason: `merged ${input.sha.slice(0, 7)}` };
    },
  };
}
