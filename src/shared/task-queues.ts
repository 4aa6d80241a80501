// One task queue per trust zone (DESIGN.md): a worker polls only its own queue and holds only its own credentials.
export const TASK_QUEUES = {
  orchestrator: 'foureyes',
  checks: 'foureyes-checks',
  deploy: 'foureyes-deploy',
} as const;
