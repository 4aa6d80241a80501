// One mechanism under every approval channel: build the claim from what the channel authenticated, sign it
// with the gateway key, and hand it to the change's workflow as an update, so the person learns at once
// whether it counted and why. The workflow verifies the signature itself before counting anything, and
// records refusals in its history (docs/architecture.md, invariants 1 and 3).
import {
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
} from '@temporalio/client';
import { randomUUID } from 'node:crypto';
import { signClaim } from '../../shared/approval-signature.ts';
import { formatChangeRef, workflowIdFor, type ChangeRef } from '../../shared/change-ref.ts';
import type { ApprovalChannel, ApprovalClaim, ApprovalDecision, ApprovalOutcome } from '../../shared/types.ts';
import { approvalUpdate, statusQuery } from '../../workflows/definitions.ts';
import type { GatewayContext } from '../app.ts';
import { loadSigningKey } from './signing.ts';

export interface ApprovalRequest {
  ref: ChangeRef;
  /** Canonical identity as the channel authenticated it (never from a request body). */
  person: string;
  channel: ApprovalChannel;
  decision: ApprovalDecision;
  environment?: string;
  /** The commit the person saw and approved: every channel names it (a button, a review, the CLI, the API). */
  sha: string;
  evidence: Record<string, string>;
  comment?: string;
}

export type ApprovalErrorKind = 'unknown-change' | 'closed' | 'unavailable';

/** The approval could not be delivered to the change at all (nothing was recorded). */
export class ApprovalDeliveryError extends Error {
  override name = 'ApprovalDeliveryError';
  constructor(
    readonly kind: ApprovalErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export interface RecordedApproval {
  outcome: ApprovalOutcome;
  claim: ApprovalClaim;
  /** Milliseconds from the call to the workflow's answer. */
  elapsedMs: number;
}

const MAX_COMMENT = 2000;
/** How long the gateway waits for the workflow's answer before telling the person to look at `status`. */
export const ANSWER_DEADLINE_MS = 10_000;

export async function recordApproval(ctx: GatewayContext, request: ApprovalRequest): Promise<RecordedApproval> {
  const started = performance.now();
  const key = loadSigningKey(ctx.env);
  const change = formatChangeRef(request.ref);
  const handle = ctx.client.workflow.getHandle(workflowIdFor(request.ref));
  const deadline = Date.now() + ANSWER_DEADLINE_MS;
  try {
    const sha = request.sha;
    const comment = request.comment?.trim().slice(0, MAX_COMMENT);
    const claim: ApprovalClaim = {
      v: 1,
      change,
      sha,
      person: request.person,
      channel: request.channel,
      decision: request.decision,
      ...(request.environment ? { environment: request.environment } : {}),
      evidence: request.evidence,
      ...(comment ? { comment } : {}),
      at: new Date().toISOString(),
      nonce: randomUUID(),
    };
    const signed = signClaim(claim, key);
    let outcome: ApprovalOutcome;
    try {
      // executeUpdate waits for the COMPLETED stage: the answer is the workflow's decision, not an ack.
      outcome = await ctx.client.withDeadline(deadline, () =>
        handle.executeUpdate(approvalUpdate, { args: [signed], updateId: `approval:${claim.nonce}` }),
      );
    } catch (error) {
      // The workflow refused the update outright (a validator or a failed handler): report it as a refusal.
      if (error instanceof WorkflowUpdateFailedError) {
        const cause = (error.cause as Error | undefined)?.message ?? error.message;
        outcome = { counted: false, reason: cause, environments: [], stage: 'awaiting-approval' };
        const status = await handle.query(statusQuery).catch(() => undefined);
        if (status) outcome.stage = status.stage;
      } else throw error;
    }
    return { outcome, claim, elapsedMs: Math.round(performance.now() - started) };
  } catch (error) {
    throw deliveryError(error, change);
  }
}

/**
 * What a failed update (or query) of a change's workflow means for the caller: unknown change, closed change,
 * or no answer in time. `nothing` says what a closed change has nothing left of (the emergency route shares it).
 */
export function deliveryError(error: unknown, change: string, nothing = 'nothing left to approve'): unknown {
  if (error instanceof ApprovalDeliveryError) return error;
  if (error instanceof WorkflowNotFoundError) {
    return new ApprovalDeliveryError(
      'unknown-change',
      `no open change ${change}: foureyes has not received its pull request, or the change is closed`,
    );
  }
  const message = (error as Error)?.message ?? '';
  if (/already completed|already closed/i.test(message))
    return new ApprovalDeliveryError('closed', `change ${change} is closed; ${nothing}`);
  if (
    error instanceof WorkflowUpdateRPCTimeoutOrCancelledError ||
    /deadline|timed? ?out|UNAVAILABLE|DEADLINE_EXCEEDED/i.test(message)
  ) {
    return new ApprovalDeliveryError(
      'unavailable',
      `no answer from ${change} within ${ANSWER_DEADLINE_MS / 1000}s (is the orchestrator worker running?); check \`foureyes status ${change}\` before trying again`,
    );
  }
  return error;
}
