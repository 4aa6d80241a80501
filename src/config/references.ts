// Cross-references a schema cannot check alone: names that must exist, names that must be unique.
import type { FoureyesConfig } from './schema.ts';

export function checkReferences(config: FoureyesConfig): string[] {
  const problems: string[] = [];
  const envNames = config.environments.map((e) => e.name);
  const logins = new Map<string, number>();
  const slackIds = new Map<string, number>();
  const teamsIds = new Map<string, number>();
  const emails = new Map<string, number>();

  config.people.forEach((person, i) => {
    const login = person.github.toLowerCase();
    const seen = logins.get(login);
    if (seen !== undefined)
      problems.push(
        `people[${i}].github: duplicate person "${person.github}", already listed at people[${seen}]; one person is one entry`,
      );
    else logins.set(login, i);
    if (person.slack) {
      const s = slackIds.get(person.slack);
      if (s !== undefined)
        problems.push(
          `people[${i}].slack: Slack user "${person.slack}" is already people[${s}]; a Slack user maps to one person`,
        );
      else slackIds.set(person.slack, i);
    }
    if (person.teams) {
      const t = teamsIds.get(person.teams);
      if (t !== undefined)
        problems.push(
          `people[${i}].teams: Teams user "${person.teams}" is already people[${t}]; a Teams user maps to one person`,
        );
      else teamsIds.set(person.teams, i);
    }
    person.emails.forEach((email, j) => {
      const e = emails.get(email.toLowerCase());
      if (e !== undefined && e !== i)
        problems.push(`people[${i}].emails[${j}]: e-mail "${email}" already belongs to people[${e}]`);
      else emails.set(email.toLowerCase(), i);
    });
  });

  const dupEnv = new Set<string>();
  config.environments.forEach((env, i) => {
    if (dupEnv.has(env.name)) problems.push(`environments[${i}].name: duplicate environment "${env.name}"`);
    dupEnv.add(env.name);
    env.approval.eligible.forEach((who, j) => {
      const problem = checkPrincipal(config, who, logins);
      if (problem) problems.push(`environments[${i}].approval.eligible[${j}]: ${problem}`);
    });
  });

  for (const [team, members] of Object.entries(config.teams)) {
    members.forEach((member, j) => {
      if (!logins.has(member.toLowerCase()))
        problems.push(`teams.${team}[${j}]: unknown person "${member}"; add them under people`);
    });
  }

  const dupRepo = new Set<string>();
  config.repositories.forEach((repo, i) => {
    const key = repo.name.toLowerCase();
    if (dupRepo.has(key)) problems.push(`repositories[${i}].name: duplicate repository "${repo.name}"`);
    dupRepo.add(key);
    repo.environments?.forEach((env, j) => {
      if (!envNames.includes(env)) {
        problems.push(
          `repositories[${i}].environments[${j}]: unknown environment "${env}"; expected one of ${envNames.map((n) => `"${n}"`).join(', ')}`,
        );
      }
    });
    repo.policyOwners.forEach((who, j) => {
      const problem = checkPrincipal(config, who, logins);
      if (problem) problems.push(`repositories[${i}].policyOwners[${j}]: ${problem}`);
    });
  });
  config.emergency.allowed.forEach((who, j) => {
    const problem = checkPrincipal(config, who, logins);
    if (problem) problems.push(`emergency.allowed[${j}]: ${problem}`);
  });
  if (config.emergency.reviewWithin < config.emergency.window)
    problems.push(
      `emergency.reviewWithin: the review is due before the emergency's window ends (${config.emergency.reviewWithin / 1000}s < ${config.emergency.window / 1000}s); make reviewWithin at least the window`,
    );
  return problems;
}

function checkPrincipal(config: FoureyesConfig, who: string, logins: Map<string, number>): string | undefined {
  if (who.startsWith('team:')) {
    const team = who.slice(5);
    if (!(team in config.teams))
      return `unknown team "${team}"; expected one of ${
        Object.keys(config.teams)
          .map((t) => `"team:${t}"`)
          .join(', ') || '(no teams defined)'
      }`;
    return undefined;
  }
  if (!logins.has(who.toLowerCase())) return `unknown person "${who}"; add them under people or use "team:NAME"`;
  return undefined;
}
