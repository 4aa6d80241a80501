// The GitHub stand-in: GitHub's REST API, signed webhooks and local git remotes, for tests and offline mode.
export {
  GitHubStandin,
  StandinError,
  type CommitSpec,
  type PersonSpec,
  type StandinOptions,
  type ActionResult,
} from './standin.ts';
export { StandinServer, startGitHubStandin, type RunningStandin } from './server.ts';
export type * from './model.ts';
