// Which evidence of a change's record answers which control, so an auditor does not have to interpret the
// timeline. Derived only from the record's summary and entries (never from the clock or the server), so
// `verify-audit --rederive` rebuilds exactly the same section from history.
import { isDeployZoneQueue } from '../shared/task-queues.ts';
import type { UnchainedEntry } from './seal.ts';
import type { AuditSummary } from './record.ts';
import type { EmergencyAudit } from './emergencies.ts';

export type ControlStatus = 'met' | 'not met' | 'not covered';

export interface ControlEvidence {
  /** Timeline entries (their `seq` in the sealed export) that show it. */
  entries: Array<{ seq: number; kind: string }>;
  /** Summary fields that show it. */
  summary: string[];
}

export interface ControlEntry {
  framework: 'ISO/IEC 27001:2022' | 'PCI DSS v4.0' | 'SOC 2';
  id: string;
  title: string;
  status: ControlStatus;
  evidence: ControlEvidence;
  reason: string;
}

interface Approval {
  seq: number;
  person: string;
  sha: string;
  environments: string[];
}

interface Deploy {
  seq: number;
  environment: string;
  sha: string;
  status: string;
  taskQueue: string;
  leases: Array<{ leaseId?: string; revokedAt?: string }>;
}

const short = (sha: string) => sha.slice(0, 7);
const ref = (entries: UnchainedEntry[], seqs: number[]) =>
  [...new Set(seqs)].sort((a, b) => a - b).map((seq) => ({ seq, kind: entries[seq]?.kind ?? '?' }));

type Verdict = [ControlStatus, string];

interface Check {
  seq: number;
  sha: string;
  passed: boolean;
  e: UnchainedEntry;
}

/** What the controls are judged on, read once from the record's summary and entries. */
interface Evidence {
  summary: AuditSummary;
  entries: UnchainedEntry[];
  head: string;
  initiators: Set<string>;
  approvals: Approval[];
  checks: Check[];
  deploys: Deploy[];
  /** The deploys that did not fail. */
  deployed: Deploy[];
  policySeqs: number[];
  /** Deployed without the approvals the policy requires, and not under a verified emergency. */
  unapproved: Deploy[];
  /** Deployed without those approvals under a verified emergency. */
  emergencyDeploys: Deploy[];
  /** What the ordinary approval controls say of the emergency deploys, when there are any. */
  underEmergency: string | undefined;
  deployedText: string;
  required: (d: Deploy) => number;
  approvalsFor: (d: Deploy) => Approval[];
}

const data = (e: UnchainedEntry) => (e.data ?? {}) as Record<string, unknown>;
const seqsOf = (entries: readonly UnchainedEntry[], kind: string) =>
  entries.flatMap((e, seq) => (e.kind === kind ? [seq] : []));

export function deriveControls(summary: AuditSummary, entries: UnchainedEntry[]): ControlEntry[] {
  const ev = readEvidence(summary, entries);
  const breakGlass = emergencyControl(summary);
  const sod = segregationVerdict(ev);
  const testing = testingVerdict(ev);
  const approval = approvalVerdict(ev);
  const changeMgmt = changeManagementVerdict(ev, approval, testing, breakGlass);
  return [
    ...isoControls(ev, sod, changeMgmt),
    ...pciControls(ev, approval, testing),
    ...soc2Controls(ev, implementedVerdict(ev, changeMgmt, sod), breakGlass),
  ];
}

function readEvidence(summary: AuditSummary, entries: UnchainedEntry[]): Evidence {
  const approvals = countedApprovals(entries);
  const deploys = deploysOf(entries);
  const deployed = deploys.filter((d) => d.status !== 'failed');
  const policySeqs = seqsOf(entries, 'policy');
  const required = requiredApprovals(entries, policySeqs);
  const approvalsFor = (d: Deploy) =>
    approvals.filter(
      (a) =>
        a.seq < d.seq && a.sha === d.sha && (a.environments.length === 0 || a.environments.includes(d.environment)),
    );
  // A deploy without its approvals under a verified emergency answers to SOC 2 CC8.1 (emergency changes) instead.
  const emergencyOf = (d: Deploy) => emergencyFor(summary.emergencies, entries, d);
  const withoutApprovals = deployed.filter((d) => approvalsFor(d).length < required(d));
  const emergencyDeploys = withoutApprovals.filter((d) => emergencyOf(d));
  return {
    summary,
    entries,
    head: summary.headSha,
    initiators: new Set(Object.keys(summary.initiators)),
    approvals,
    checks: entries.flatMap((e, seq) =>
      e.kind === 'checks' ? [{ seq, sha: String(data(e).sha ?? ''), passed: data(e).passed === true, e }] : [],
    ),
    deploys,
    deployed,
    policySeqs,
    unapproved: withoutApprovals.filter((d) => !emergencyOf(d)),
    emergencyDeploys,
    underEmergency: emergencyDeploys.length ? emergencyPointer(emergencyDeploys, emergencyOf) : undefined,
    deployedText: deployed.map((d) => `${d.environment} at ${short(d.sha)}`).join(', '),
    required,
    approvalsFor,
  };
}

/** The approvals the workflow counted (rejections and refused attempts are not approvals). */
function countedApprovals(entries: readonly UnchainedEntry[]): Approval[] {
  return entries.flatMap((e, seq) => {
    const d = data(e);
    if (e.kind !== 'approval-attempt' || d.counted !== true || (d.decision ?? 'approve') !== 'approve') return [];
    return [
      {
        seq,
        person: String(d.person ?? '?'),
        sha: String(d.sha ?? ''),
        environments: Array.isArray(d.environments) ? d.environments.map(String) : [],
      },
    ];
  });
}

function deploysOf(entries: readonly UnchainedEntry[]): Deploy[] {
  return entries.flatMap((e, seq) => {
    if (e.kind !== 'deploy') return [];
    const d = data(e);
    return [
      {
        seq,
        environment: String(d.environment ?? '?'),
        sha: String(d.sha ?? ''),
        status: String(d.status ?? '?'),
        taskQueue: String(d.taskQueue ?? ''),
        leases: Array.isArray(d.leases) ? (d.leases as Deploy['leases']) : [],
      },
    ];
  });
}

/** The number of approvals the policy in force before a deploy asked of its environment (1 if unknown). */
function requiredApprovals(entries: readonly UnchainedEntry[], policySeqs: number[]): (d: Deploy) => number {
  return (d) => {
    const policy = policySeqs.filter((s) => s < d.seq).at(-1);
    const envs = (policy !== undefined ? data(entries[policy] as UnchainedEntry).environments : undefined) as
      Array<{ name: string; required: number }> | undefined;
    return envs?.find((e) => e.name === d.environment)?.required ?? 1;
  };
}

/** The leases of deploys and verifies that were neither revoked with their step nor later, and how many there were. */
function leaseState(
  entries: readonly UnchainedEntry[],
  deploys: Deploy[],
): { unrevoked: string[]; leaseCount: number } {
  const revokedIds = new Set(
    entries.flatMap((e) =>
      e.kind === 'revoke' && Array.isArray(data(e).leases)
        ? (data(e).leases as Array<{ leaseId?: string }>).map((l) => String(l.leaseId))
        : [],
    ),
  );
  const leaseHolders = [...deploys, ...entries.flatMap((e, seq) => (e.kind === 'verify' ? [{ seq, e }] : []))];
  const unrevoked = leaseHolders.flatMap((h) => {
    const leases = 'leases' in h ? h.leases : ((data(h.e).leases ?? []) as Deploy['leases']);
    return leases.filter((l) => !l.revokedAt && !revokedIds.has(String(l.leaseId))).map((l) => String(l.leaseId));
  });
  const leaseCount = leaseHolders.reduce(
    (n, h) => n + ('leases' in h ? h.leases : ((data(h.e).leases ?? []) as unknown[])).length,
    0,
  );
  return { unrevoked, leaseCount };
}

/** A.5.3: the duties were held apart and someone other than the initiators approved. */
function segregationVerdict(ev: Evidence): Verdict {
  const { summary, underEmergency } = ev;
  return !summary.dutiesSegregated
    ? ['not met', summary.segregationFindings.join('; ')]
    : underEmergency
      ? ['not covered', underEmergency]
      : summary.approvers.length === 0
        ? ['not met', 'no counted approval: nobody but the initiators has vouched for the change']
        : [
            'met',
            `initiated by ${[...ev.initiators].join(', ') || 'nobody recorded'}; approved by ${summary.approvers.join(', ')}, none of whom initiated; ${ev.deployed.length ? 'deployed only by the pipeline' : 'nothing deployed'}`,
          ];
}

/** PCI DSS 6.5.1 (testing): every deployed commit passed its checks first, and so did the head. */
function testingVerdict(ev: Evidence): Verdict {
  const { head, checks, deployed } = ev;
  const headChecks = checks.filter((c) => c.sha === head).at(-1);
  const untested = deployed.filter((d) => !checks.some((c) => c.seq < d.seq && c.sha === d.sha && c.passed));
  return untested.length > 0
    ? [
        'not met',
        `deployed without passing checks of the deployed commit: ${untested.map((d) => `${d.environment} at ${short(d.sha)}`).join(', ')}`,
      ]
    : !headChecks
      ? ['not met', `no checks ran on the head ${short(head) || '(unknown)'}`]
      : !headChecks.passed
        ? ['not met', `checks FAILED on the head ${short(head)}`]
        : (data(headChecks.e).results as unknown[] | undefined)?.length === 0
          ? ['not met', `no checks are configured: nothing tested the head ${short(head)}`]
          : [
              'met',
              `checks passed on the head ${short(head)}${deployed.length ? ' and on every deployed commit before it was deployed' : ''}`,
            ];
}

/** PCI DSS 6.5.1 (approval): each deploy carried its approvals, none by an initiator, and the head is approved. */
function approvalVerdict(ev: Evidence): Verdict {
  const { head, unapproved, approvalsFor, required, underEmergency } = ev;
  const headApprovals = ev.approvals.filter((a) => a.sha === head);
  const approverInitiators = ev.summary.approvers.filter((a) => ev.initiators.has(a));
  return unapproved.length > 0
    ? [
        'not met',
        `deployed without the approvals the policy requires: ${unapproved.map((d) => `${d.environment} at ${short(d.sha)} (${approvalsFor(d).length} of ${required(d)})`).join(', ')}`,
      ]
    : approverInitiators.length > 0
      ? ['not met', `approved by an initiator: ${approverInitiators.join(', ')}`]
      : underEmergency
        ? ['not covered', underEmergency]
        : headApprovals.length === 0
          ? ['not met', `no counted approval of the head ${short(head) || '(unknown)'}`]
          : [
              'met',
              `the head ${short(head)} was approved by ${[...new Set(headApprovals.map((a) => a.person))].join(', ')} (counted by the workflow under the policy in force)${ev.deployed.length ? '; every deployment carried the approvals its environment requires' : ''}`,
            ];
}

/** A.8.32: under a recorded policy, tested and approved (or an emergency change that met its own control). */
function changeManagementVerdict(ev: Evidence, approval: Verdict, testing: Verdict, breakGlass: Verdict): Verdict {
  const { entries, policySeqs, deployed } = ev;
  return policySeqs.length === 0
    ? ['not met', 'no policy was read: the change was not under a recorded procedure']
    : approval[0] === 'not met'
      ? ['not met', approval[1]]
      : testing[0] !== 'met'
        ? ['not met', testing[1]]
        : ev.underEmergency
          ? [breakGlass[0] === 'met' ? 'met' : 'not met', `emergency change: ${breakGlass[1]}`]
          : [
              'met',
              `under policy ${String(data(entries[policySeqs[0] as number] as UnchainedEntry).digest ?? '').slice(0, 12) || '(no digest)'}: tested, approved${deployed.length ? `, deployed by the pipeline (${ev.deployedText})` : ', nothing deployed'}; outcome ${ev.summary.outcome}`,
            ];
}

/** PCI DSS 6.5.4: deployed only by the pipeline in each environment's deploy zone, with short-lived credentials. */
function separationVerdict(ev: Evidence, approval: Verdict): Verdict {
  const { deploys, underEmergency } = ev;
  const outsideZone = deploys.filter((d) => !isDeployZoneQueue(d.taskQueue, d.environment));
  const { unrevoked, leaseCount } = leaseState(ev.entries, deploys);
  return deploys.length === 0
    ? ['not covered', 'nothing was deployed: no environment role was exercised by this change']
    : outsideZone.length > 0
      ? [
          'not met',
          `deployed outside the deploy zone: ${outsideZone.map((d) => `${d.environment} from ${d.taskQueue}`).join(', ')}`,
        ]
      : unrevoked.length > 0
        ? ['not met', `short-lived credentials not revoked: ${unrevoked.join(', ')}`]
        : ev.unapproved.length > 0
          ? ['not met', approval[1]]
          : [
              'met',
              `each environment was deployed by the pipeline in the deploy zone with its own approvals (${ev.deployedText || 'no successful deployment'}); ${underEmergency ? `${underEmergency}; ` : ''}${leaseCount ? `${leaseCount} short-lived lease(s), all revoked` : 'no credential was leased'}; no person held deploy credentials`,
            ];
}

/** SOC 2 CC8.1: authorised, tested, approved, segregated and actually implemented. */
function implementedVerdict(ev: Evidence, changeMgmt: Verdict, sod: Verdict): Verdict {
  return changeMgmt[0] !== 'met'
    ? ['not met', changeMgmt[1]]
    : sod[0] === 'not met'
      ? ['not met', sod[1]]
      : ev.deployed.length === 0
        ? ['not met', `not implemented: nothing was deployed (outcome ${ev.summary.outcome})`]
        : ev.underEmergency
          ? ['not covered', ev.underEmergency]
          : [
              'met',
              `authorised by policy, tested, approved by ${ev.summary.approvers.join(', ')}, implemented by the pipeline: ${ev.deployedText}`,
            ];
}

function control(
  entries: UnchainedEntry[],
  framework: ControlEntry['framework'],
  id: string,
  title: string,
  status: ControlStatus,
  reason: string,
  seqs: number[],
  fields: string[],
): ControlEntry {
  return { framework, id, title, status, evidence: { entries: ref(entries, seqs), summary: fields }, reason };
}

function isoControls(ev: Evidence, sod: Verdict, changeMgmt: Verdict): ControlEntry[] {
  const { entries, policySeqs, deploys } = ev;
  return [
    control(
      entries,
      'ISO/IEC 27001:2022',
      'A.5.3',
      'Segregation of duties',
      ...sod,
      [
        ...seqsOf(entries, 'pull-request'),
        ...seqsOf(entries, 'pull-request-read'),
        ...seqsOf(entries, 'approval-attempt'),
        ...deploys.map((d) => d.seq),
      ],
      ['initiators', 'approvers', 'executors', 'dutiesSegregated', 'segregationFindings'],
    ),
    control(
      entries,
      'ISO/IEC 27001:2022',
      'A.8.32',
      'Change management',
      ...changeMgmt,
      [
        ...policySeqs,
        ...ev.checks.map((c) => c.seq),
        ...ev.approvals.map((a) => a.seq),
        ...deploys.map((d) => d.seq),
        ...seqsOf(entries, 'completed'),
      ],
      ['outcome', 'headSha', 'approvers', 'environmentsDeployed'],
    ),
  ];
}

function pciControls(ev: Evidence, approval: Verdict, testing: Verdict): ControlEntry[] {
  const { entries, policySeqs } = ev;
  const [backOutSeqs, ...backOut] = backOutControl(entries, ev.deployed);
  const deployEvidence = ref(entries, [
    ...ev.deploys.map((d) => d.seq),
    ...seqsOf(entries, 'verify'),
    ...seqsOf(entries, 'revoke'),
  ]);
  const checkSeqs = ev.checks.map((c) => c.seq);
  return [
    control(
      entries,
      'PCI DSS v4.0',
      '6.5.1 (approval)',
      'Changes approved by authorised parties',
      ...approval,
      [...policySeqs, ...seqsOf(entries, 'approval-attempt')],
      ['approvers', 'refusedAttempts', 'initiators'],
    ),
    control(entries, 'PCI DSS v4.0', '6.5.1 (testing)', 'Changes tested before deployment', ...testing, checkSeqs, [
      'headSha',
    ]),
    control(entries, 'PCI DSS v4.0', '6.5.1 (back-out)', 'Back-out procedures', ...backOut, backOutSeqs, [
      'environmentsDeployed',
    ]),
    control(
      entries,
      'PCI DSS v4.0',
      '6.5.2',
      'Requirements confirmed and documentation updated after a significant change',
      'not covered',
      'covered: this sealed record documents the change (initiators, approvals, checks, deployments); not covered: foureyes does not classify changes as significant, confirm PCI DSS requirements on the changed systems or update their documentation',
      [],
      ['runIds', 'firstEventAt', 'lastEventAt'],
    ),
    control(
      entries,
      'PCI DSS v4.0',
      '6.5.4',
      'Separation of pre-production and production roles',
      ...separationVerdict(ev, approval),
      [...policySeqs, ...deployEvidence.map((e) => e.seq)],
      ['executors', 'environmentsDeployed'],
    ),
  ];
}

function soc2Controls(ev: Evidence, implemented: Verdict, breakGlass: Verdict): ControlEntry[] {
  const { entries, policySeqs, summary } = ev;
  const declared = summary.emergencies || summary.refusedEmergencies;
  return [
    control(
      entries,
      'SOC 2',
      'CC8.1',
      'Changes authorised, tested, approved and implemented',
      ...implemented,
      [
        ...policySeqs,
        ...ev.checks.map((c) => c.seq),
        ...ev.approvals.map((a) => a.seq),
        ...ev.deploys.map((d) => d.seq),
      ],
      ['approvers', 'environmentsDeployed', 'dutiesSegregated', 'outcome'],
    ),
    control(
      entries,
      'SOC 2',
      'CC8.1 (emergency changes)',
      'Emergency changes',
      ...breakGlass,
      [
        ...(declared ? policySeqs : []),
        ...seqsOf(entries, 'emergency-declaration'),
        ...ev.emergencyDeploys.map((d) => d.seq),
        ...reviewSeqs(summary.emergencies, entries),
      ],
      declared ? ['emergencies', 'refusedEmergencies'] : [],
    ),
  ];
}

const when = (iso: string | undefined) => Date.parse(iso ?? '');

/** The verified emergency a deploy without its approvals went out under, if any. */
function emergencyFor(
  emergencies: readonly EmergencyAudit[] | undefined,
  entries: readonly UnchainedEntry[],
  d: Deploy,
): EmergencyAudit | undefined {
  const at = when(entries[d.seq]?.at);
  return emergencies?.find(
    (e) => e.signature.verified && e.sha === d.sha && e.deployedTo.includes(d.environment) && at >= when(e.declaredAt),
  );
}

/** What the ordinary approval controls say of deploys under an emergency: where they went, and which control answers. */
function emergencyPointer(deploys: Deploy[], emergencyOf: (d: Deploy) => EmergencyAudit | undefined): string {
  const byDeclarer = [...new Set(deploys.map((d) => emergencyOf(d)?.declaredBy ?? '?'))].join(', ');
  return `${deploys.map((d) => `${d.environment} at ${short(d.sha)}`).join(', ')} went out under the emergency declared by ${byDeclarer}, without prior approval: see SOC 2 CC8.1 (emergency changes)`;
}

/** 2h, 90m, 6s: how the configuration writes a duration. */
function duration(ms: number | undefined): string {
  if (ms === undefined) return 'the review period';
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${Math.round(ms / 1000)}s`;
}

/** The timeline entries of the counted approvals that reviewed the emergencies. */
function reviewSeqs(emergencies: readonly EmergencyAudit[] | undefined, entries: readonly UnchainedEntry[]): number[] {
  return (emergencies ?? []).flatMap((e) =>
    entries.flatMap((x, seq) =>
      x.kind === 'approval-attempt' &&
      x.at === e.reviewedAt &&
      String((x.data as { person?: unknown } | undefined)?.person ?? '').toLowerCase() === e.reviewedBy
        ? [seq]
        : [],
    ),
  );
}

/** One emergency in a sentence, for the control's reason. */
function emergencyText(e: EmergencyAudit): string {
  const declared = `declared by ${e.declaredBy} (${e.channel}) at ${e.declaredAt} for ${short(e.sha)}`;
  if (e.state === 'lapsed') return `the emergency ${declared} lapsed: nothing was deployed under it`;
  if (e.state === 'open') return `the emergency ${declared} is open: nothing was deployed under it yet`;
  return `the emergency ${declared}, deployed to ${e.deployedTo.join(', ')} at ${e.deployedAt ?? '?'} without prior approval, was reviewed by ${e.reviewedBy ?? '?'} at ${e.reviewedAt ?? '?'}, within ${duration(e.reviewWithinMs)} (due ${e.reviewDueAt}); ${e.reviewedBy ?? '?'} is neither an initiator nor the declarer`;
}

/**
 * SOC 2 CC8.1 (emergency changes): met when every emergency deployed under was reviewed in time by an eligible
 * person who is neither an initiator nor the declarer, and no emergency has a finding (signature, memo, review).
 */
export function emergencyControl(summary: AuditSummary): [ControlStatus, string] {
  const emergencies = summary.emergencies ?? [];
  const refused = summary.refusedEmergencies ?? [];
  const refusedText = refused.length
    ? `; ${refused.length} emergency declaration(s) refused: ${refused.map((r) => `${r.person} (${r.reason})`).join('; ')}`
    : '';
  if (emergencies.length === 0)
    return ['not covered', `no emergency was declared for ${summary.change}: it took the standard path${refusedText}`];
  const findings = emergencies.flatMap((e) => e.findings);
  if (findings.length > 0) return ['not met', findings.join('; ')];
  const pending = emergencies.filter((e) => e.state === 'review-due');
  if (pending.length > 0)
    return [
      'not met',
      pending
        .map(
          (e) =>
            `the emergency change ${summary.change} declared by ${e.declaredBy} for ${short(e.sha)} was deployed (${e.deployedTo.join(', ')}) and its retroactive review, due ${e.reviewDueAt}, has not happened yet`,
        )
        .join('; '),
    ];
  return ['met', `${emergencies.map(emergencyText).join('; ')}${refusedText}`];
}

/** PCI DSS 6.5.1 (back-out): the evidence and the status. */
function backOutControl(entries: readonly UnchainedEntry[], deployed: Deploy[]): [number[], ControlStatus, string] {
  const dataOf = (e: UnchainedEntry) => (e.data ?? {}) as Record<string, unknown>;
  // A release the environment's lane let through is in that environment's history: `foureyes rollback` can take
  // the environment back from it (or back to it) there. One deployed without its lane (runs from before lanes) is not.
  const laneSeqs = entries.flatMap((e, seq) =>
    e.kind === 'lane-acquired' && dataOf(e).granted === true
      ? [{ seq, environment: String(dataOf(e).environment) }]
      : [],
  );
  const withoutLane = deployed.filter((d) => !laneSeqs.some((l) => l.seq < d.seq && l.environment === d.environment));
  const backOutSeqs = [...laneSeqs.map((l) => l.seq), ...deployed.map((d) => d.seq)];
  const backOut: [ControlStatus, string] =
    deployed.length === 0
      ? ['not covered', 'nothing of this change was deployed, so there is nothing to back out']
      : withoutLane.length > 0
        ? [
            'not covered',
            `${withoutLane.map((d) => `${d.environment} (${short(d.sha)})`).join(', ')} deployed without the environment's lane (a run from before lanes): that release is not in the environment's history, so \`foureyes rollback\` cannot go back to it`,
          ]
        : [
            'met',
            `every release of this change (${[...new Set(deployed.map((d) => d.environment))].join(', ')}) went through its environment's lane and is in that environment's release history: \`foureyes rollback <repo> <env> [--to <sha>]\` by an eligible approver takes the environment back to an earlier approved release through the same lane, deploy zone and revoke, recorded in the lane's history and the rollback's own workflow history`,
          ];
  return [backOutSeqs, ...backOut];
}
