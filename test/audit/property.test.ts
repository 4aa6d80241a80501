// The audit export agrees with the workflow it records — a property, driven by fast-check against the real
// workflow on the Temporal dev server, on the default path (the gateway forwards events without commits; the
// workflow looks the pull request up in the GitHub model). Random sequences of pushes (random pushers, commit
// authors, committers and co-authors in Co-authored-by trailers: configured people, by login or by e-mail only,
// and e-mails nobody is configured with), approvals (counted and refused: by an initiator, by nobody configured,
// of an old head, for an environment the person is not eligible for), rejections and a final close. Afterwards the
// export built from the change's real history names exactly the initiators the workflow's status names, counts
// exactly the approvers it counted, says duties were segregated unless a counted approver is an initiator (and
// no approval of someone who had initiated by then ever counts), and `foureyes verify-audit --rederive`, a child
// process re-deriving the record from Temporal, agrees with the written file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { verifyRederived } from '../helpers/verify-audit.ts';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { checkDocument } from '../../src/audit/document.ts';
import { exportChange } from '../../src/audit/export.ts';
import { generateSigningKey, signClaim } from '../../src/shared/approval-signature.ts';
import type { ChangeStatus, CommitInfo } from '../../src/shared/types.ts';
import { approvalSignal, approvalUpdate } from '../../src/workflows/definitions.ts';
import {
  claim,
  close,
  commit,
  newChange,
  openChange,
  opened,
  push,
  pushed,
  sha,
  startStack,
  status,
  type ChangeHandle,
  waitForStatus,
  type Stack,
} from '../workflows/harness.ts';

/** A repository of its own: staging for anyone configured, production for team platform, no merge (the run stays open). */
const REPO = 'acme/audit-prop';
const PEOPLE = ['sam-dev', 'alex-reviewer', 'jo-platform', 'kim-qa', 'pat-peer', 'lee-ops'];
const email = (login: string) => `${login.split('-')[0]}@example.com`;
const STRANGERS = ['drive-by@elsewhere.example', 'bot@ci.invalid'];

/** A commit identity: a configured person by login and e-mail or by e-mail only, or an e-mail nobody is configured with. */
type Who =
  { kind: 'login'; person: string } | { kind: 'email'; person: string } | { kind: 'stranger'; address: string };
/** Mostly the pull request's author, so that some configured people are left to approve. */
const someone = fc.oneof(
  { weight: 3, arbitrary: fc.constant('sam-dev') },
  { weight: 2, arbitrary: fc.constantFrom(...PEOPLE) },
);
const who: fc.Arbitrary<Who> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('login' as const), person: someone }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('email' as const), person: someone }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('stranger' as const), address: fc.constantFrom(...STRANGERS) }),
  },
);
const coAuthor: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...PEOPLE).map(email) },
  { weight: 1, arbitrary: fc.constantFrom(...STRANGERS) },
);

interface CommitSpec {
  author: Who;
  committer: Who;
  coAuthors: string[];
}
const commitSpec: fc.Arbitrary<CommitSpec> = fc.record({
  author: who,
  committer: who,
  coAuthors: fc.oneof(
    { weight: 2, arbitrary: fc.constant<string[]>([]) },
    { weight: 2, arbitrary: fc.array(coAuthor, { minLength: 1, maxLength: 2 }) },
  ),
});

type Action =
  | { t: 'push'; pusher: string; commit: CommitSpec }
  | {
      t: 'approve';
      /** A configured person, someone nobody configured, or one of the change's initiators (by index). */
      person: string | { initiator: number };
      decision: 'approve' | 'reject';
      which: 'head' | 'old';
      env?: 'staging' | 'production';
      via: 'update' | 'signal';
    };

const action: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant('push' as const), pusher: someone, commit: commitSpec }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('approve' as const),
      person: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(...PEOPLE) },
        { weight: 1, arbitrary: fc.constant('mallory-outsider') },
        { weight: 2, arbitrary: fc.record({ initiator: fc.nat(20) }) },
      ),
      decision: fc.constantFrom('approve' as const, 'approve' as const, 'approve' as const, 'reject' as const),
      which: fc.constantFrom('head' as const, 'head' as const, 'head' as const, 'old' as const),
      env: fc.option(fc.constantFrom('staging' as const, 'production' as const), { nil: undefined, freq: 3 }),
      via: fc.constantFrom('update' as const, 'update' as const, 'signal' as const),
    }),
  },
);

interface Scenario {
  first: CommitSpec;
  steps: Action[];
}
const scenario: fc.Arbitrary<Scenario> = fc.record({
  first: commitSpec,
  steps: fc.array(action, { minLength: 2, maxLength: 6 }),
});
type Approve = Extract<Action, { t: 'approve' }>;

const login = (person: string): Who => ({ kind: 'login', person });
const approval = (person: Approve['person'], extra: Partial<Approve> = {}): Action => ({
  t: 'approve',
  person,
  decision: 'approve',
  which: 'head',
  via: 'update',
  ...extra,
});
/**
 * Run first, whatever the seed: a co-author's approval refused and a reviewer's counted, kept to the end; and a
 * counted approval whose approver pushes later (the push voids it; the audit says the approver also initiated).
 */
const EXAMPLES: Scenario[] = [
  {
    first: { author: login('sam-dev'), committer: login('lee-ops'), coAuthors: ['pat@example.com'] },
    steps: [
      approval('pat-peer'),
      approval('alex-reviewer'),
      approval('jo-platform', { env: 'production', via: 'signal' }),
    ],
  },
  {
    first: { author: login('sam-dev'), committer: login('sam-dev'), coAuthors: [] },
    steps: [
      approval('kim-qa'),
      {
        t: 'push',
        pusher: 'sam-dev',
        commit: {
          author: { kind: 'email', person: 'kim-qa' },
          committer: login('sam-dev'),
          coAuthors: ['bot@ci.invalid'],
        },
      },
      approval('jo-platform'),
      {
        t: 'push',
        pusher: 'alex-reviewer',
        commit: { author: login('alex-reviewer'), committer: login('alex-reviewer'), coAuthors: [] },
      },
      approval({ initiator: 0 }),
    ],
  },
];

function identity(w: Who): CommitInfo['author'] {
  if (w.kind === 'login') return { login: w.person, email: email(w.person), name: w.person };
  if (w.kind === 'email') return { email: email(w.person), name: w.person };
  return { email: w.address, name: 'Someone' };
}

/** The principals a commit identity stands for, as the configuration resolves it (src/policy/sod.ts principalsOf). */
function principal(w: Who): string {
  return w.kind === 'stranger' ? `email:${w.address}` : w.person;
}
const byAddress = (address: string) => PEOPLE.find((p) => email(p) === address) ?? `email:${address}`;

function makeCommit(spec: CommitSpec): CommitInfo {
  const trailers = spec.coAuthors.map((a, i) => `Co-authored-by: Helper ${i} <${a}>`).join('\n');
  return commit(sha(), identity(spec.author), identity(spec.committer), trailers ? `step\n\n${trailers}` : 'step');
}

/** Everyone a commit shows taking part: author, committer, co-authors. */
function participants(spec: CommitSpec): string[] {
  return [principal(spec.author), principal(spec.committer), ...spec.coAuthors.map(byAddress)];
}

let stack: Stack;
const auditKey = generateSigningKey();
const work = mkdtempSync(join(tmpdir(), 'foureyes-audit-property-'));

beforeAll(async () => {
  stack = await startStack({
    repositories: [`{ name: ${REPO}, remote: /nonexistent, environments: [staging, production] }`],
  });
});
afterAll(async () => {
  await stack?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** Until the workflow has taken in what it was sent: its status stops changing. */
async function settle(handle: ChangeHandle): Promise<ChangeStatus> {
  let last = '';
  let current: ChangeStatus | undefined;
  for (let i = 0; i < 30; i++) {
    current = await status(handle);
    const now = JSON.stringify(current);
    if (now === last) return current;
    last = now;
    await new Promise((r) => setTimeout(r, 120));
  }
  return current as ChangeStatus;
}

const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort();
/** The people whose approval the workflow counted (rejections and voided approvals included: they counted once). */
const countedApprovers = (s: ChangeStatus) =>
  sorted(s.approvals.filter((a) => a.counted && a.claim.decision === 'approve').map((a) => a.claim.person));

let runs = 0;
let verified = 0;
let refusedInitiators = 0;
let counted = 0;

async function check(input: Scenario, verify: boolean): Promise<void> {
  runs++;
  const change = newChange(REPO);
  const firstCommit = makeCommit(input.first);
  const heads = [{ sha: firstCommit.sha, commits: [firstCommit] }];
  // Who took part so far, as the test knows it: the pull request's author, pushers, every commit's people.
  const initiators = new Set(['sam-dev', ...participants(input.first)]);
  const handle = await openChange(stack, change, opened(firstCommit.sha, 'sam-dev', [firstCommit]));
  try {
    let live = await settle(handle);
    for (const step of input.steps) {
      const head = heads.at(-1) as (typeof heads)[number];
      if (step.t === 'push') {
        const c = makeCommit(step.commit);
        const commits = [...head.commits, c];
        heads.push({ sha: c.sha, commits });
        for (const p of [step.pusher, ...participants(step.commit)]) initiators.add(p);
        await push(stack, handle, pushed(head.sha, c.sha, step.pusher, commits));
      } else {
        const names = sorted(initiators);
        const person =
          typeof step.person === 'string' ? step.person : (names[step.person.initiator % names.length] as string);
        const target = step.which === 'head' ? head.sha : (heads.at(-2)?.sha ?? head.sha);
        const signed = signClaim(
          claim(change, target, person, {
            decision: step.decision,
            ...(step.env ? { environment: step.env } : {}),
          }),
          stack.key,
        );
        const before = live.approvals.length;
        if (step.via === 'update') await handle.executeUpdate(approvalUpdate, { args: [signed] });
        else await handle.signal(approvalSignal, signed);
        await waitForStatus(handle, (s) => s.approvals.length > before);
        const after = await settle(handle);
        const decided = after.approvals[before];
        expect(decided?.claim.nonce, 'the attempt is recorded').toBe(signed.claim.nonce);
        if (initiators.has(person) && step.decision === 'approve') {
          // Whoever took part in the change by then never has an approval counted.
          expect(decided?.counted, `${person} initiated (${decided?.reason})`).toBe(false);
          refusedInitiators++;
        }
        if (decided?.counted && step.decision === 'approve') counted++;
      }
      live = await settle(handle);
      // The workflow's own view of who took part is the test's.
      expect(live.initiators).toEqual(sorted(initiators));
    }
    await close(stack, handle);
    const ended = (await handle.result()) as { outcome: string };
    live = await status(handle);

    const doc = await exportChange(stack.client, change, { signingKey: auditKey.privateKey });
    expect(checkDocument(doc, [auditKey.publicKey]).ok).toBe(true);
    expect(sorted(Object.keys(doc.summary.initiators))).toEqual(live.initiators);
    expect(live.initiators).toEqual(sorted(initiators));
    expect(doc.summary.approvers).toEqual(countedApprovers(live));
    expect(doc.summary.heads?.map((h) => h.sha)).toEqual(heads.map((h) => h.sha));
    expect(doc.summary.outcome).toBe(ended.outcome);
    // Duties are segregated unless someone who initiated also had an approval counted (before they initiated:
    // the push voided it, and the audit still says so).
    const both = doc.summary.approvers.filter((a) => live.initiators.includes(a));
    expect({ segregated: doc.summary.dutiesSegregated, findings: doc.summary.segregationFindings }).toEqual({
      segregated: both.length === 0,
      findings: both.map((a) => expect.stringContaining(`${a} both initiated`) as unknown as string),
    });

    if (verify) {
      const file = join(work, `${encodeURIComponent(change)}.json`);
      writeFileSync(file, JSON.stringify(doc));
      const answer = await verifyRederived(file, auditKey.publicKey, work);
      expect(answer.stdout + answer.stderr).toContain('identical to the record re-derived from Temporal history');
      expect(answer.code).toBe(0);
      verified++;
    }
  } finally {
    await handle.terminate('property run over').catch(() => undefined);
  }
}

it(
  'the export of random pushes, approvals and a close names the initiators and approvers the workflow did, and re-derives',
  { timeout: 240_000 },
  async () => {
    const numRuns = Number(process.env.FOUREYES_PROPERTY_RUNS ?? 12);
    let n = 0;
    const started = Date.now();
    const seed = Number(process.env.FOUREYES_PROPERTY_SEED ?? Date.now() % 2_147_483_647);
    const details = await fc.check(
      fc.asyncProperty(scenario, async (input) => {
        n++;
        // verify-audit is a process of its own (a few seconds): every third run and the last one.
        await check(input, n % 3 === 0 || n === numRuns);
      }),
      { numRuns, seed, endOnFailure: true, examples: EXAMPLES.map((e) => [e]) },
    );
    if (details.failed)
      throw new Error(
        `${fc.defaultReportMessage(details)}\n(seed ${seed}: FOUREYES_PROPERTY_SEED=${seed} reproduces it)`,
        { cause: details.errorInstance },
      );
    expect(runs).toBeGreaterThanOrEqual(numRuns);
    expect(verified).toBeGreaterThanOrEqual(1);
    console.log(
      `audit property: ${runs} runs, ${verified} re-derived, ${counted} counted approvals, ${refusedInitiators} initiator approvals refused, ${Date.now() - started} ms (seed ${seed})`,
    );
  },
);
