import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.ts';

const example = readFileSync(new URL('../../foureyes.example.yaml', import.meta.url), 'utf8');

function problemsOf(text: string, file = 'conf/foureyes.yaml'): string {
  try {
    parseConfig(text, file);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
  throw new Error('expected the configuration to be refused');
}

describe('trusted configuration', () => {
  it('accepts the shipped example and fills defaults', () => {
    const config = parseConfig(example);
    expect(config.environments.map((e) => e.name)).toEqual(['staging', 'production']);
    expect(config.environments[1]?.approval).toMatchObject({ required: 1, eligible: ['team:platform'] });
    expect(config.environments[1]?.approval.expiry).toBe(24 * 3_600_000);
    expect(config.repositories[0]?.checks[0]?.timeout).toBe(600_000);
  });

  it('names the file, the field, what was found and what was expected for a wrong type', () => {
    const message = problemsOf(
      example.replace('required: 1                       # distinct', 'required: two                     # distinct'),
    );
    expect(message).toContain('conf/foureyes.yaml');
    expect(message).toContain('environments[0].approval.required: expected number, found string "two"');
  });

  it('reports a missing field by its path', () => {
    const message = problemsOf(example.replace('    remote: https://github.com/acme/shop.git\n', ''));
    expect(message).toContain('repositories[0].remote: missing; expected string');
  });

  it('refuses an unknown environment in a repository policy', () => {
    const message = problemsOf(example.replace('environments: [staging, production]', 'environments: [staging, prod]'));
    expect(message).toContain(
      'repositories[0].environments[1]: unknown environment "prod"; expected one of "staging", "production"',
    );
  });

  it('refuses an unknown team or person among the eligible approvers', () => {
    const message = problemsOf(example.replace('eligible: [team:platform]', 'eligible: [team:ops, nobody-here]'));
    expect(message).toContain('environments[1].approval.eligible[0]: unknown team "ops"');
    expect(message).toContain('environments[1].approval.eligible[1]: unknown person "nobody-here"');
  });

  it('refuses a duplicate person, however the login is cased', () => {
    const message = problemsOf(
      example.replace(
        '  - github: jo-platform',
        '  - github: Sam-Dev\n    emails: [sam2@example.com]\n  - github: jo-platform',
      ),
    );
    expect(message).toContain('people[2].github: duplicate person "Sam-Dev", already listed at people[0]');
  });

  it('names what an aws or aws-secret lease lacks', () => {
    const minimal = (lease: string) =>
      `environments:\n  - { name: staging, deploy: { run: "true" }, lease: ${lease} }\nrepositories:\n  - { name: acme/shop, remote: /tmp/r.git }\n`;
    expect(problemsOf(minimal('{ kind: aws }'))).toContain(
      'environments[0].lease.role: an aws lease needs the role of the AWS secrets engine',
    );
    const secret = problemsOf(minimal('{ kind: aws-secret, region: eu-west-1 }'));
    expect(secret).toContain('environments[0].lease.secret: an aws-secret lease needs the Secrets Manager secret');
    expect(problemsOf(minimal('{ kind: aws-secret, secret: prod/db, region: Europe }'))).toContain(
      'environments[0].lease.region',
    );
    expect(parseConfig(minimal('{ kind: aws, role: deployer, ttl: 15m }')).environments[0]?.lease).toMatchObject({
      kind: 'aws',
      mount: 'aws',
      role: 'deployer',
      ttl: 900_000,
    });
  });

  it('refuses misspelt fields and bad durations', () => {
    const message = problemsOf(
      example.replace('expiry: 24h', 'expiry: 24 hours').replace('    timeout: 15m', '    timout: 15m'),
    );
    expect(message).toContain(
      'environments[1].approval.expiry: expected a duration such as "90s", "10m", "72h" or a number of seconds, found string "24 hours"',
    );
    expect(message).toContain('environments[1].deploy: unknown field "timout"');
  });

  it('points at YAML syntax errors by line', () => {
    expect(problemsOf('people: [\n  - a')).toMatch(/YAML syntax error at line \d+/);
  });

  it('tells what to do when the file is missing', () => {
    expect(() => loadConfig('/nonexistent/foureyes.yaml')).toThrow(
      /not found; copy foureyes.example.yaml to foureyes.yaml or set FOUREYES_CONFIG/,
    );
  });
  it('validates break-glass: who may declare must be configured, the review due no earlier than the window ends', () => {
    expect(parseConfig(example).emergency.allowed).toEqual(['jo-platform']);
    const without = example.replace(/^emergency:\n(?: {2}.*\n)+/m, '');
    const config = parseConfig(without);
    expect(config.emergency).toEqual({
      allowed: [],
      window: 2 * 3_600_000,
      reviewWithin: 24 * 3_600_000,
      overrideFailingChecks: false,
    });
    const message = problemsOf(
      `${without}\nemergency: { allowed: [team:oncall, nobody-here], window: 3h, reviewWithin: 1h }\n`,
    );
    expect(message).toContain('emergency.allowed[0]: unknown team "oncall"');
    expect(message).toContain('emergency.allowed[1]: unknown person "nobody-here"');
    expect(message).toContain("emergency.reviewWithin: the review is due before the emergency's window ends");
    expect(problemsOf(`${without}\nemergency: { allowed: [], window: soon }\n`)).toContain('emergency.window');
  });
});
