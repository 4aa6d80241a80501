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
}

export interface Scenario {
  name: string;
  title: string;
  run(options: ScenarioOptions): Promise<void>;
}

export function say(line: string): void {
  process.stdout.write(`${line}\n`);
}
