import { median } from '../stats.ts';

export interface ScenarioOptions {
  quick: boolean;
  /** --n: the scenario's size (changes, or deliveries per second for the webhook scenario). */
  n?: number;
  /** --seconds: how long the rate-driven scenario sends. */
  seconds?: number;
  /** --max-cached: the orchestrator worker's maxCachedWorkflows (default: the SDK's). */
  maxCached?: number;
  /** --skip-baseline: the scale scenario measures changeWorkflow only (its baseline doubles the run). */
  skipBaseline?: boolean;
  /** --rounds: how often a scenario repeats its measurement interleaved with its baseline (at least 3). */
  rounds: number;
}

export interface Scenario {
  name: string;
  title: string;
  run(options: ScenarioOptions): Promise<void>;
}

export function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** One figure of the "Goals at a glance" table, as this run measured it. */
export interface GoalFigure {
  goal: string;
  /** What was measured, e.g. "p50 512 / 480 ms" (medians of the rounds). */
  figure: string;
  /** Per-round ratios against the baseline measured in the same round. */
  ratios: number[];
  /** Whether the target holds for the median ratio (and absolute figure, where the goal has one). */
  met: boolean;
  /** The target holds in some rounds and not in others: the figure does not reproduce within its spread. */
  unsettled?: boolean;
}

/** Figures collected during the run, printed together at its end with the command and commit. */
export const goals: GoalFigure[] = [];

/** Records a goal's figure: met at the median ratio, unsettled when the rounds fall on both sides of the target. */
export function recordGoal(
  goal: string,
  figure: string,
  ratios: number[],
  holds: (ratio: number) => boolean,
  alsoHolds = true,
): void {
  const each = ratios.filter(Number.isFinite).map(holds);
  goals.push({
    goal,
    figure,
    ratios,
    met: holds(median(ratios)) && alsoHolds,
    unsettled: each.includes(true) && each.includes(false),
  });
}
