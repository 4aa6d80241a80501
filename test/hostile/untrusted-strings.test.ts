// Untrusted strings (PR titles, branch names, commit messages, review comments, logins, reasons) in what
// foureyes writes: the PR summary comment and check runs (GitHub Markdown), the Slack messages (mrkdwn and
// Block Kit), and the shell. Property-based: arbitrary strings mixed with known injection payloads.
import fc from 'fast-check';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { md, renderSummary, stageReports, SUMMARY_MARKER } from '../../src/activities/github.ts';
import { checkoutExactly } from '../../src/activities/checks.ts';
import { renderMarkdown, sealRecord } from '../../src/audit/document.ts';
import { outcomeText } from '../../src/presentation/texts.ts';
import { approvalRequestBlocks, escapeSlackText, plainText } from '../../src/shared/slack-format.ts';
import type { ApprovalRecord, ChangeStatus } from '../../src/shared/types.ts';

const dir = mkdtempSync(join(tmpdir(), 'foureyes-hostile-strings-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PAYLOADS = [
  '@here',
  '@channel',
  '@everyone',
  '@octocat',
  '<!channel>',
  '<!here|here>',
  '<@U0ALEX>',
  '<https://evil.example|click me>',
  '[click](https://evil.example)',
  '![x](https://evil.example/p.png)',
  '<img src=x onerror=alert(1)>',
  '<details><summary>x</summary>',
  '<!-- foureyes:summary -->',
  '`',
  '```',
  '` | injected | cell |',
  '\n# heading\n',
  '\r\n> quote',
  '**bold** _it_ ~~s~~',
  '| a | b |',
  '&#64;here',
  '&lt;!channel&gt;',
  '\u2028@here',
  '\u202e',
  '\u0000',
  '$(touch /tmp/pwned)',
  '`touch /tmp/pwned`',
  "'; touch /tmp/pwned; '",
  '${IFS}',
  'https://evil.example',
];

/** Arbitrary text with injection payloads spliced in. */
const untrusted = fc.oneof(
  fc.string({ maxLength: 120 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc
    .array(fc.oneof(fc.constantFrom(...PAYLOADS), fc.string({ maxLength: 10 })), { minLength: 1, maxLength: 5 })
    .map((parts) => parts.join('')),
);

// ---------------------------------------------------------------------------------------------
// GitHub Markdown

/** The characters that make Markdown or HTML structure, mentions, links, code spans or table cells. */
const MARKUP = /[\\`*_{}[\]()#+!|<>~@\r\n\u2028\u2029]/;

describe('GitHub Markdown (md, the summary comment, check runs)', () => {
  it('md() leaves no markup character and only its own numeric entities, on one line', () => {
    fc.assert(
      fc.property(untrusted, fc.integer({ min: 1, max: 600 }), (text, max) => {
        const out = md(text, max);
        // Every & starts an entity md wrote; no raw markup remains.
        expect(out.replace(/&#\d+;/g, ''), JSON.stringify(out)).not.toMatch(/[&]/);
        expect(out.replace(/&#\d+;/g, ''), JSON.stringify(out)).not.toMatch(MARKUP);
        expect(out).not.toMatch(/[\u0000-\u001f\u007f]/);
      }),
      { numRuns: 1000 },
    );
  });

  function status(t: (i: number) => string, sha: string): ChangeStatus {
    const approval = (i: number, counted: boolean, voided: boolean): ApprovalRecord => ({
      claim: {
        v: 1,
        change: 'acme/shop#12',
        sha,
        person: t(i),
        channel: 'api',
        decision: 'approve',
        environment: t(i + 1),
        evidence: {},
        comment: t(i + 2),
        at: '2026-11-01T10:00:00Z',
        nonce: `n${i}`,
      },
      recordedAt: '2026-11-01T10:00:00Z',
      counted,
      reason: t(i + 3),
      environments: [],
      ...(voided ? { voidedAt: '2026-11-01T10:01:00Z', voidReason: t(i + 4) } : {}),
    });
    return {
      change: 'acme/shop#12',
      title: t(0),
      stage: 'awaiting-approval',
      waitingFor: t(1),
      headSha: sha,
      author: t(2),
      initiators: [t(3), t(4)],
      policyChange: true,
      approvals: [approval(10, true, false), approval(20, false, false), approval(30, true, true)],
      environments: [
        { name: 'staging', required: 1, approvedBy: [t(5)], state: 'pending' },
        {
          name: 'production',
          required: 2,
          approvedBy: [t(6), t(7)],
          state: 'failed',
          deploy: {
            environment: 'production',
            sha,
            status: 'failed',
            exitCode: 1,
            durationMs: 1,
            outputTail: t(8),
            leases: [],
          },
        },
      ],
      timeline: [],
      runIds: ['run-1'],
    } as ChangeStatus;
  }

  /** The structure of a rendering: its markup characters, line by line (text between them removed). */
  const skeleton = (text: string) => text.replace(/&#\d+;/g, '').replace(/[^`*[\]()<>@!|_~\n]/g, '');

  it('the summary comment with hostile titles, logins, reasons and SHAs has the structure of a benign one', () => {
    fc.assert(
      fc.property(
        fc.array(untrusted, { minLength: 40, maxLength: 40 }),
        fc.oneof(fc.constant('a'.repeat(40)), untrusted),
        (texts, sha) => {
          const link = 'https://temporal.example/namespaces/default/workflows/change%3Aacme%2Fshop%2312';
          const hostile = renderSummary(
            status((i) => texts[i % texts.length] as string, sha),
            link,
          );
          // The twin keeps empty strings empty: an empty field legitimately drops its line.
          const twin = (i: number) => ((texts[i % texts.length] as string) === '' ? '' : 'x');
          const benign = renderSummary(status(twin, 'a'.repeat(40)), link);
          expect(skeleton(hostile), hostile).toBe(skeleton(benign));
          expect(hostile.split('\n').length).toBe(benign.split('\n').length);
          // The hidden marker that finds the comment again appears once, where foureyes put it.
          expect(hostile.split(SUMMARY_MARKER).length).toBe(2);
          expect(hostile.startsWith(SUMMARY_MARKER)).toBe(true);
          for (const report of stageReports(status((i) => texts[i % texts.length] as string, sha))) {
            const benignReport = stageReports(status(twin, 'a'.repeat(40))).find((r) => r.name === report.name);
            expect(skeleton(report.summary), report.summary).toBe(skeleton(benignReport?.summary ?? ''));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('the audit record as Markdown (GET …/audit?format=md)', () => {
  /** The Markdown structure: markup characters that are not backslash-escaped, line by line. */
  const skeleton = (text: string) => text.replace(/\\./g, '').replace(/[^`*[\]<>|_~\n]/g, '');

  function doc(t: (i: number) => string) {
    return sealRecord(
      {
        summary: {
          change: 'acme/shop#12',
          outcome: t(0),
          headSha: 'a'.repeat(40),
          initiators: { [`init-${t(1)}`]: [t(2), t(3)], [`other-${t(4)}`]: [t(5)] },
          approvers: [t(6), t(7)],
          refusedAttempts: 1,
          executors: [t(8)],
          environmentsDeployed: [t(9)],
          dutiesSegregated: false,
          segregationFindings: [t(10), t(11)],
          runIds: ['run-1'],
          firstEventAt: '2026-11-01T10:00:00.000Z',
          lastEventAt: '2026-11-01T10:05:00.000Z',
        },
        entries: [0, 1, 2].map((i) => ({ at: '2026-11-01T10:00:00.000Z', kind: t(12 + i), summary: t(15 + i) })),
      },
      { workflowId: 'change:acme/shop#12', namespace: 'default', generatedAt: '2026-11-01T11:00:00.000Z' },
    );
  }

  it('hostile titles, names and reasons keep the structure of a benign record, with every @ defused', () => {
    fc.assert(
      fc.property(fc.array(untrusted, { minLength: 18, maxLength: 18 }), (texts) => {
        const hostile = renderMarkdown(doc((i) => texts[i] as string));
        const benign = renderMarkdown(doc((i) => ((texts[i] as string) === '' ? '' : 'x')));
        expect(skeleton(hostile), hostile).toBe(skeleton(benign));
        expect(hostile.split('\n').length).toBe(benign.split('\n').length);
        expect(hostile.replace(/@\u200b/g, ''), hostile).not.toMatch(/@/);
      }),
      { numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Slack

/** Slack text with no live markup: no <…> control sequences (mentions, links, !channel), every @ defused. */
function expectInertSlack(text: string): void {
  expect(text, JSON.stringify(text)).not.toMatch(/[<>]/);
  expect(text.replace(/@\u200b/g, ''), JSON.stringify(text)).not.toMatch(/@/);
  // An & is only the start of the three entities Slack defines.
  expect(text.replace(/&(amp|lt|gt);/g, ''), JSON.stringify(text)).not.toMatch(/&/);
}

describe('Slack messages', () => {
  it('escapeSlackText and plainText defuse every mention, link and control sequence', () => {
    fc.assert(
      fc.property(untrusted, fc.integer({ min: 1, max: 3000 }), (text, max) => {
        expectInertSlack(escapeSlackText(text));
        const p = plainText(text, max);
        expectInertSlack(p.text);
        expect(p.type).toBe('plain_text');
        expect(p.text.length).toBeLessThanOrEqual(Math.max(max, 1));
      }),
      { numRuns: 1000 },
    );
  });

  it('the approval request message: every visible string is inert; only the trusted Temporal link is mrkdwn', () => {
    fc.assert(
      // The SHA is not free text: the gateway accepts only 40 hex digits (payloads.ts) before a change exists.
      fc.property(untrusted, untrusted, fc.stringMatching(/^[0-9a-f]{40}$/), (title, author, sha) => {
        const { text, blocks } = approvalRequestBlocks({
          change: 'acme/shop#12',
          title,
          sha,
          author,
          environments: [
            { name: 'staging', required: 1, confirm: false },
            { name: 'production', required: 1, confirm: true },
          ],
          url: 'https://temporal.example/x',
        });
        expectInertSlack(text);
        const visible: string[] = [];
        const walk = (v: unknown, key = ''): void => {
          if (typeof v === 'string') {
            if (key === 'text' || key === '') visible.push(v);
          } else if (Array.isArray(v)) v.forEach((x) => walk(x, key));
          else if (v && typeof v === 'object') {
            const o = v as Record<string, unknown>;
            // The one mrkdwn element is the configured link, built by foureyes from trusted configuration.
            if (o.type === 'mrkdwn') {
              expect(o.text).toBe('<https://temporal.example/x|Workflow in Temporal>');
              return;
            }
            for (const [k, x] of Object.entries(o))
              if (k !== 'value' && k !== 'action_id' && k !== 'block_id' && k !== 'style' && k !== 'type') walk(x, k);
          }
        };
        walk(blocks);
        for (const t of visible) expectInertSlack(t);
      }),
      { numRuns: 300 },
    );
  });

  it('the answer to a Slack approval quotes untrusted reasons and names inertly', () => {
    fc.assert(
      fc.property(untrusted, untrusted, fc.boolean(), (person, reason, counted) => {
        const text = outcomeText({
          claim: {
            v: 1,
            change: 'acme/shop#12',
            sha: 'a'.repeat(40),
            person,
            channel: 'slack',
            decision: 'approve',
            evidence: {},
            at: '2026-11-01T10:00:00Z',
            nonce: 'n',
          },
          outcome: { counted, reason, environments: counted ? ['staging'] : [], stage: 'awaiting-approval' },
        } as unknown as Parameters<typeof outcomeText>[0]);
        expectInertSlack(text.replace(/^:[a-z_]+: /, ''));
      }),
      { numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The shell

describe('the shell', () => {
  it('checks and deploy never hand untrusted text to a shell: sh -c only runs configured commands or quoted git arguments', () => {
    const sources = [
      'src/activities/checks.ts',
      'src/activities/deploy.ts',
      ...readdirSync('src/activities')
        .filter((f) => f.startsWith('deploy') && f.endsWith('.ts'))
        .map((f) => `src/activities/${f}`),
    ];
    for (const file of new Set(sources)) {
      const text = readFileSync(file, 'utf8');
      expect(text, file).not.toMatch(/shell:\s*true/);
      expect(text, file).not.toMatch(/\bexec(Sync)?\(/);
      // Every sh -c gets a configured command (check.run / options.run / a fixed kill) or the quoted git line.
      for (const m of text.matchAll(/spawn\('sh', \['-c', ([^\]]+)\]/g)) {
        expect(m[1], `${file}: ${m[0]}`).toMatch(
          /^(command|options\.run|`read _ignored; kill -KILL -\$\{pgid\} 2>\/dev\/null`)$/,
        );
      }
      for (const m of text.matchAll(/(?<!function )runInGroup\(([^,]+),/g))
        expect(m[1], `${file}: ${m[0]}`).toMatch(/^(check\.run|`git \$\{args\.map\(shellQuote\)\.join\(' '\)\}`)$/);
    }
  });

  it('the quoted git command line: hostile remotes and revisions reach git as one argument, never as shell code', async () => {
    const marker = join(dir, 'pwned');
    const hostile = fc.oneof(
      fc.constantFrom(
        `$(touch ${marker})`,
        `\`touch ${marker}\``,
        `'; touch ${marker}; '`,
        `"; touch ${marker}; "`,
        `x' && touch ${marker} && echo '`,
        `x\ntouch ${marker}`,
        `--upload-pack=touch ${marker}`,
        `-c core.sshCommand=touch ${marker}`,
      ),
      fc.string({ maxLength: 30 }).map((s) => `${s.replace(/\u0000/g, '')}$(touch ${marker})`),
    );
    await fc.assert(
      fc.asyncProperty(hostile, fc.constantFrom('remote', 'sha'), async (text, where) => {
        const work = mkdtempSync(join(dir, 'wc-'));
        const home = mkdtempSync(join(dir, 'home-'));
        // A hostile remote or revision must make git fail (it names neither a repository nor a commit).
        await expect(
          checkoutExactly(
            where === 'remote' ? text : join(dir, 'no-such-repo'),
            where === 'sha' ? text : 'a'.repeat(40),
            work,
            home,
          ),
        ).rejects.toThrow();
        expect(existsSync(marker), `${where} = ${JSON.stringify(text)} ran as shell code`).toBe(false);
      }),
      { numRuns: 25 },
    );
  });
});
