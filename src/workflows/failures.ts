// The message a person can act on from a failed activity: its cause, not Temporal's wrapper.
import { ActivityFailure } from '@temporalio/workflow';

export function failureMessage(error: unknown): string {
  const cause = error instanceof ActivityFailure && error.cause ? error.cause : error;
  return cause instanceof Error ? cause.message : String(cause);
}
