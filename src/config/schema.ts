// The trusted configuration (foureyes.yaml). Policy lives here or on the base branch, never in the change
// itself (docs/architecture.md, invariant 5). Every field a later module reads is declared here, with its default.
import { z } from 'zod';
import { parseDuration } from '../shared/duration.ts';

const duration = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const ms = typeof value === 'number' ? value * 1000 : parseDuration(value);
  if (ms === undefined || !Number.isFinite(ms) || ms <= 0) {
    ctx.addIssue({
      code: 'custom',
      message: 'expected a duration such as "90s", "10m", "72h" or a number of seconds',
      input: value,
    });
    return z.NEVER;
  }
  return ms;
});

const name = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected lower-case letters, digits, "-" or "_" (at most 63 characters)');
const githubLogin = z.string().regex(/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/, 'expected a GitHub login');
const repoName = z.string().regex(/^[A-Za-z0-9-]{1,39}\/[A-Za-z0-9._-]{1,100}$/, 'expected owner/repo');
// Environment variable names that a deploy command receives leased values in.
const envVarName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'expected an environment variable name in upper case');

export const personSchema = z.strictObject({
  github: githubLogin,
  name: z.string().optional(),
  slack: z
    .string()
    .regex(/^[UW][A-Z0-9]{2,}$/, 'expected a Slack user ID such as U024BE7LH')
    .optional(),
  // Microsoft Teams: the person's Entra ID (AAD) object id, which Teams sends as from.aadObjectId.
  teams: z
    .string()
    .regex(
      /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/,
      'expected an Entra ID (AAD) object id such as 8b1c6f2e-1d0a-4c55-9a0e-3f2b7c9d1e42',
    )
    .transform((id) => id.toLowerCase())
    .optional(),
  emails: z.array(z.email()).default([]),
});

export const commandSchema = z.strictObject({
  run: z.string().min(1),
  timeout: duration.default(600_000),
  // Cap on captured output; the tail is kept for the record.
  outputLimit: z.number().int().positive().default(1_048_576),
  // Outbound network from the sandbox. Checks: off unless set (weaker: the check can reach any host the
  // worker can, Temporal and OpenBao included unless the network keeps them apart). Deploy and verify: on
  // unless set to false (they usually talk to the platform they deploy to).
  network: z.boolean().optional(),
});

// Deploy and verify commands only: host folders the step may write to besides its working copy (an
// artifact store mount, a local registry). Checks never get one.
export const stepCommandSchema = commandSchema.extend({
  writable: z.array(z.string().regex(/^\/[^\0]*$/, 'expected an absolute path')).default([]),
});

export const leaseSchema = z
  .strictObject({
    // "token": a child token carrying only this environment's policy (default).
    // "dynamic": any dynamic secrets path, e.g. database/creds/ROLE or aws/creds/ROLE.
    // "aws": STS credentials (assumed role or federation token) from OpenBao's AWS secrets engine role `role`.
    // "aws-secret": a Secrets Manager secret read with the deployer's own AWS identity (read, not leased).
    kind: z.enum(['token', 'dynamic', 'aws', 'aws-secret']).default('token'),
    path: z
      .string()
      .regex(/^[a-z0-9_-]+(\/[A-Za-z0-9_.-]+)+$/, 'expected a secrets path such as database/creds/deployer')
      .optional(),
    // kind "aws": the AWS secrets engine's mount and role (`<mount>/sts/<role>`).
    mount: z
      .string()
      .regex(/^[a-z0-9_-]+$/, 'expected a mount name such as aws')
      .default('aws'),
    role: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/, 'expected an AWS secrets engine role name')
      .optional(),
    // kind "aws-secret": the secret's name or ARN.
    secret: z.string().min(1).max(2048).optional(),
    // AWS region handed to the deploy command (AWS_REGION) and used to read an aws-secret.
    region: z
      .string()
      .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'expected an AWS region such as eu-west-1')
      .optional(),
    // kind "aws-secret": a Secrets Manager endpoint other than AWS's (a VPC endpoint, an emulator).
    endpoint: z.url().optional(),
    ttl: duration.default(300_000),
    // Environment variable name -> field of the secret (e.g. PGUSER: username). For kind "token",
    // the field "token" is the child token itself and "addr" the Vault address.
    env: z.record(envVarName, z.string().min(1)).default({}),
    // Extra paths (besides `path`) this environment's policy may read, e.g. secret/data/foureyes/staging/*.
    paths: z.array(z.string().min(1)).default([]),
  })
  .superRefine((lease, ctx) => {
    if (lease.kind === 'dynamic' && !lease.path)
      ctx.addIssue({
        code: 'custom',
        path: ['path'],
        message: 'a dynamic lease needs a path such as database/creds/deployer',
      });
    if (lease.kind === 'aws' && !lease.role)
      ctx.addIssue({
        code: 'custom',
        path: ['role'],
        message:
          'an aws lease needs the role of the AWS secrets engine, e.g. role: deployer (read at aws/sts/deployer)',
      });
    if (lease.kind === 'aws-secret' && !lease.secret)
      ctx.addIssue({
        code: 'custom',
        path: ['secret'],
        message: 'an aws-secret lease needs the Secrets Manager secret, e.g. secret: prod/shop/db',
      });
    if (lease.kind === 'aws-secret' && !lease.region)
      ctx.addIssue({
        code: 'custom',
        path: ['region'],
        message: 'an aws-secret lease needs the region of the secret, e.g. region: eu-west-1',
      });
  });

export const approvalSchema = z.strictObject({
  // Number of distinct eligible people who took no part in the change. 0 = no human gate.
  required: z.number().int().min(0).max(10).default(1),
  // GitHub logins or "team:NAME". Empty = anyone listed under people.
  eligible: z.array(z.string().min(1)).default([]),
  expiry: duration.default(72 * 3_600_000),
  // Ask for a confirmation in chat before recording the approval.
  confirm: z.boolean().default(false),
  // A head with a commit identity (author, committer, co-author) that maps to nobody in people cannot be
  // approved: it could be anyone, an approver included. Add the e-mail to the person it belongs to.
  refuseUnknownIdentities: z.boolean().default(true),
});

export const environmentSchema = z.strictObject({
  name,
  deploy: stepCommandSchema,
  verify: stepCommandSchema.optional(),
  lease: leaseSchema.default({ kind: 'token', mount: 'aws', ttl: 300_000, env: {}, paths: [] }),
  approval: approvalSchema.default({
    required: 1,
    eligible: [],
    expiry: 72 * 3_600_000,
    confirm: false,
    refuseUnknownIdentities: true,
  }),
  // Pass leased credentials to the verify command too.
  verifyWithLease: z.boolean().default(false),
});

export const checkSchema = commandSchema.extend({ name });

export const repositorySchema = z.strictObject({
  name: repoName,
  // git remote the checks and deploy steps fetch the exact SHA from (a URL or a local path).
  remote: z.string().min(1),
  defaultBranch: z.string().default('main'),
  // Environments this repository delivers to, in order; default: all, in the order declared.
  environments: z.array(name).optional(),
  checks: z.array(checkSchema).default([]),
  // A change touching one of these paths changes policy or delivery and needs a policy owner's approval.
  policyPaths: z
    .array(z.string().min(1))
    .default(['foureyes.yaml', '.foureyes/**', '.github/workflows/**', 'deploy/**']),
  policyOwners: z.array(z.string().min(1)).default([]),
  // Merge the pull request after production (guarded by the head SHA).
  merge: z.boolean().default(false),
});

export const configSchema = z.strictObject({
  people: z.array(personSchema).default([]),
  teams: z.record(name, z.array(githubLogin)).default({}),
  environments: z.array(environmentSchema).min(1, 'expected at least one environment (e.g. staging, production)'),
  repositories: z.array(repositorySchema).min(1, 'expected at least one repository'),
  temporal: z
    .strictObject({
      namespace: z.string().default('foureyes'),
      uiUrl: z.string().default('http://localhost:8233'),
    })
    .default({ namespace: 'foureyes', uiUrl: 'http://localhost:8233' }),
  // The sandbox every check and deploy command runs in (src/activities/sandbox.ts).
  sandbox: z
    .strictObject({
      // Extra read-only paths for a toolchain outside /usr and /opt (e.g. /root/.nvm).
      readOnly: z.array(z.string().regex(/^\/[^\0]*$/, 'expected an absolute path')).default([]),
      // Processes the sandbox's own uid may have at once: a fork bomb stops there.
      maxProcesses: z.number().int().min(16).max(65_536).default(1024),
    })
    .default({ readOnly: [], maxProcesses: 1024 }),
  // Break-glass: who may declare an emergency (logins or "team:NAME"; empty = disabled), how long the declared
  // head's gates stay open, by when an eligible non-initiator who is not the declarer must approve that head.
  emergency: z
    .strictObject({
      allowed: z.array(z.string().min(1)).default([]),
      window: duration.default(2 * 3_600_000),
      reviewWithin: duration.default(24 * 3_600_000),
      // Deploy a head whose checks failed under an emergency (default no: the checks must pass).
      overrideFailingChecks: z.boolean().default(false),
    })
    .default({ allowed: [], window: 2 * 3_600_000, reviewWithin: 24 * 3_600_000, overrideFailingChecks: false }),
  vault: z
    .strictObject({
      // Policies, token roles and bookkeeping paths foureyes creates live under this prefix.
      prefix: name.default('foureyes'),
      namespace: z.string().optional(),
    })
    .default({ prefix: 'foureyes' }),
});

export type FoureyesConfig = z.output<typeof configSchema>;
export type PersonConfig = z.output<typeof personSchema>;
export type EnvironmentConfig = z.output<typeof environmentSchema>;
export type RepositoryConfig = z.output<typeof repositorySchema>;
export type CommandConfig = z.output<typeof commandSchema>;
export type StepCommandConfig = z.output<typeof stepCommandSchema>;
export type LeaseConfig = z.output<typeof leaseSchema>;
export type ApprovalConfig = z.output<typeof approvalSchema>;
export type EmergencyConfig = FoureyesConfig['emergency'];
