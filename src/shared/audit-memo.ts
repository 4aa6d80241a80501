// The workflow records the fate of every approval attempt in its history as a memo update, so that the
// audit reads each decision from an event (a signal has no reply of its own in history; an update does).
export const APPROVAL_MEMO_KEY = 'foureyesApprovalDecision';

export interface ApprovalDecisionMemo {
  /** Index of the attempt among all attempts of the change (across continue-as-new). */
  n: number;
  counted: boolean;
  reason: string;
  environments: string[];
}

/** The workflow's own view at each decision, which the audit export cross-checks against what it derives. */
export const AUDIT_VIEW_KEY = 'foureyesAuditView';

export interface AuditViewMemo {
  /** What was decided: an approval attempt (`n` as in ApprovalDecisionMemo) or an environment's open gate. */
  at: 'approval' | 'gate';
  n?: number;
  environment?: string;
  head: string;
  /** Everyone the workflow held to be an initiator then, with why. */
  initiators: Record<string, string[]>;
  /** Whose approvals counted toward the environment (gate) or toward any environment (approval) then. */
  counted: string[];
  /** At a gate opened under an emergency: who declared it. */
  emergency?: string;
  policyDigest?: string;
}
