// The stand-in's state: plain serialisable data (so it can be saved to a file between `npm start`s).
// Git objects live in the bare repositories on disk; this holds everything GitHub adds around them.

export interface StandinUser {
  id: number;
  login: string;
  name: string;
  email: string;
  type: 'User' | 'Bot';
}

export interface StandinToken {
  /** The token value (a secret of the stand-in's users; never logged). */
  token: string;
  kind: 'user' | 'installation';
  login: string;
  installationId?: number;
  expiresAt?: string;
}

export interface StandinApp {
  id: number;
  slug: string;
  publicKeyPem: string;
  /** Absent until the App is installed (an App created from a manifest starts uninstalled). */
  installationId?: number;
  /** Repositories the installation covers (lower-case full names); absent = every repository. */
  repositories?: string[];
  /** Account the App belongs to and is installed on. */
  owner?: string;
  /** The manifest it was created from (`POST /app-manifests/{code}/conversions`). */
  manifest?: AppManifest;
}

/** GitHub's App manifest (docs: "Registering a GitHub App from a manifest"), as far as the stand-in checks it. */
export interface AppManifest {
  name: string;
  url: string;
  hook_attributes?: { url: string; active?: boolean };
  redirect_url?: string;
  callback_urls?: string[];
  setup_url?: string;
  description?: string;
  public?: boolean;
  default_events?: string[];
  default_permissions?: Record<string, string>;
}

/** A manifest the user confirmed on the "create GitHub App" page, waiting for its code to be converted. */
export interface StandinManifestCode {
  code: string;
  manifest: AppManifest;
  owner: string;
  createdAt: string;
}

export interface StandinRepo {
  id: number;
  owner: string;
  name: string;
  defaultBranch: string;
  gitDir: string;
  nextNumber: number;
  /** A private repository is visible only to its owner, its collaborators and Apps installed on it (404 to others). */
  private?: boolean;
  /** Collaborators by lower-case login, with GitHub's role names. */
  collaborators?: Record<string, CollaboratorRole>;
}

export type CollaboratorRole = 'read' | 'triage' | 'write' | 'maintain' | 'admin';

export interface StandinPull {
  repo: string;
  id: number;
  number: number;
  title: string;
  body: string;
  author: string;
  headRef: string;
  baseRef: string;
  headSha: string;
  state: 'open' | 'closed';
  merged: boolean;
  mergedBy?: string;
  mergeCommitSha?: string;
  createdAt: string;
  updatedAt: string;
  closedAt?: string;
  mergedAt?: string;
}

export interface StandinReview {
  repo: string;
  pull: number;
  id: number;
  user: string;
  state: 'APPROVED' | 'CHANGES_REQUESTED' | 'COMMENTED' | 'DISMISSED';
  body: string;
  commitId: string;
  submittedAt: string;
}

export interface StandinCheckRun {
  repo: string;
  id: number;
  headSha: string;
  name: string;
  status: 'queued' | 'in_progress' | 'completed';
  conclusion: string | null;
  title?: string;
  summary?: string;
  text?: string;
  detailsUrl?: string;
  externalId?: string;
  startedAt: string;
  completedAt: string | null;
  appId?: number;
  updates: number;
}

export interface StandinStatus {
  repo: string;
  id: number;
  sha: string;
  context: string;
  state: 'error' | 'failure' | 'pending' | 'success';
  description: string | null;
  targetUrl: string | null;
  creator: string;
  createdAt: string;
}

export interface StandinDeployment {
  repo: string;
  id: number;
  sha: string;
  ref: string;
  task: string;
  environment: string;
  description: string | null;
  payload: unknown;
  creator: string;
  productionEnvironment: boolean;
  transientEnvironment: boolean;
  createdAt: string;
}

export interface StandinDeploymentStatus {
  repo: string;
  id: number;
  deploymentId: number;
  state: 'error' | 'failure' | 'inactive' | 'in_progress' | 'queued' | 'pending' | 'success';
  description: string;
  environmentUrl: string;
  logUrl: string;
  creator: string;
  createdAt: string;
}

export interface StandinComment {
  repo: string;
  id: number;
  issue: number;
  user: string;
  body: string;
  createdAt: string;
  updatedAt: string;
  updates: number;
}

export interface StandinDelivery {
  id: string;
  event: string;
  action?: string;
  /** The exact bytes sent (and signed). */
  body: string;
  createdAt: string;
  attempts: Array<{ at: string; status: number | null; response: string; durationMs: number }>;
}

export interface StandinFault {
  id: number;
  method?: string;
  /** Regular expression matched against the request path (without the query and without the /api/v3 prefix). */
  path: string;
  /** HTTP status to answer; 0 = answer normally (with `delayMs` only). */
  status: number;
  retryAfter?: number;
  delayMs?: number;
  /** How many requests it applies to; -1 = until removed. */
  remaining: number;
}

export interface StandinState {
  nextId: number;
  users: StandinUser[];
  tokens: StandinToken[];
  apps: StandinApp[];
  manifestCodes: StandinManifestCode[];
  repos: StandinRepo[];
  pulls: StandinPull[];
  reviews: StandinReview[];
  checkRuns: StandinCheckRun[];
  statuses: StandinStatus[];
  deployments: StandinDeployment[];
  deploymentStatuses: StandinDeploymentStatus[];
  comments: StandinComment[];
  deliveries: StandinDelivery[];
  faults: StandinFault[];
  webhook?: { url: string; secret: string };
}

export function emptyState(): StandinState {
  return {
    nextId: 1000,
    users: [],
    tokens: [],
    apps: [],
    manifestCodes: [],
    repos: [],
    pulls: [],
    reviews: [],
    checkRuns: [],
    statuses: [],
    deployments: [],
    deploymentStatuses: [],
    comments: [],
    deliveries: [],
    faults: [],
  };
}
