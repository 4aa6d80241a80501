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
