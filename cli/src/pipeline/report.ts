import {
  caseIndexColumns,
  evidenceText,
  type AttemptRecord,
  type CaseRecord,
  type Outcome,
  type OutcomeRecord,
  type RuleRef,
  type ServicePath,
} from '#lumen/contracts';
import {
  isFamilyCell,
  isMatrixCell,
  type CoverageMode,
  type MatrixCoverage,
  type NotGenerated,
  type NotJudged,
  unmodelledName,
  type PlannedCase,
} from '#lumen/planner';
import { formatLabels } from '#lumen/policy';
import type { FinalOutcome } from '#lumen/reporter';
import { renderTable } from '../io.js';

export type { Outcome };

/** One case in `lumen run --json`: a shape other tools rely on, so it changes only with care. */
export interface CaseReport {
  readonly id: string;
  readonly from: { namespace: string; pod: string; labels: Record<string, string> };
  readonly to: { namespace: string; pod: string; labels: Record<string, string> };
  readonly port: number;
  readonly protocol: string;
  readonly expected: 'allow' | 'deny';
  readonly observed: 'reachable' | 'blocked' | 'inconclusive';
  readonly outcome: Outcome;
  readonly attempts: number;
  readonly policies: string[];
  /** The policy the case checks (its rule's), or the first that isolates it; null: none. */
  readonly policy: string | null;
  /** Why the verdict is what it is. */
  readonly verdict: string;
  /** What the deciding probe saw. */
  readonly evidence: string;
  readonly traceId: string;
  /** Present for a case over a dual-stack pod's second IP family: that family. */
  readonly family?: 4 | 6;
  /** Present for a case probed through a Service (issue 19): which, at which address. */
  readonly service?: {
    readonly namespace: string;
    readonly name: string;
    readonly clusterIP: string;
    readonly port: number;
    /** A pod reaching itself through its own Service. */
    readonly hairpin: boolean;
  };
}

export interface RunReport {
  readonly summary: Record<Outcome, number>;
  readonly cases: CaseReport[];
  /** How much of what the policies decide this run verified. */
  readonly coverage?: RunCoverage;
}

/** `lumen run`'s coverage: a shape other tools rely on, so it changes only with care. */
export interface RunCoverage {
  readonly mode: CoverageMode;
  /** Cells of the class matrix: (source class, destination class, declared port, protocol). */
  readonly cells: number;
  /** Cells with a conclusive outcome (pass, fail or flaky) in this run. */
  readonly cellsVerified: number;
  /** A dual-stack cluster's cells per IP family, primary first (the numbers above). */
  readonly families?: readonly {
    readonly family: 4 | 6;
    readonly cells: number;
    readonly cellsVerified: number;
  }[];
  /** Cases the obligations need: each rule's must-allow and near misses, isolation. */
  readonly obligations: number;
  /** Rules of every valid policy that take effect. */
  readonly rules: number;
  /** Rules with a passing must-allow case and a passing deny case that checks them. */
  readonly rulesCovered: number;
  /** Runs it takes to verify every cell at this budget; null: never (obligations only). */
  readonly runsPerRotation: number | null;
  /** What was not verified, and why. */
  readonly notVerified: readonly {
    readonly what: string;
    readonly rule: string | null;
    readonly why: string;
  }[];
  /**
   * Policy objects of kinds Lumen does not model, found in the cluster, with the cases each
   * may affect: those cases are not judged (never failed).
   */
  readonly notJudged: readonly { readonly policy: string; readonly cases: number }[];
  /** Cases left unjudged by those objects; one that several may affect counts once. */
  readonly notJudgedCases: number;
}

const podName = (ref: string | null | undefined): string => ref?.split('/')[1] ?? '';

interface CaseFacts {
  readonly id: string;
  readonly source: {
    readonly namespace: string;
    readonly labels: Readonly<Record<string, string>>;
  };
  readonly destination: {
    readonly namespace: string;
    readonly labels: Readonly<Record<string, string>>;
  };
  readonly port: number;
  readonly protocol: string;
  readonly expected: 'allow' | 'deny';
  readonly rule?: RuleRef | null;
  readonly via?: ServicePath | null | undefined;
  readonly family?: 4 | 6 | null | undefined;
  readonly explanation: {
    readonly egress: { readonly policies: readonly string[] };
    readonly ingress: { readonly policies: readonly string[] };
  };
}

interface Judgement {
  readonly outcome: Outcome;
  readonly observed: 'reachable' | 'blocked' | null;
  readonly attempts: number;
  readonly traceId: string | null;
  readonly reason: string;
}

function caseReport(
  facts: CaseFacts,
  judged: Judgement | undefined,
  pods: { readonly sourcePod?: string | null; readonly destinationPod?: string | null },
  evidence: string,
): CaseReport {
  const policies = [
    ...new Set([...facts.explanation.egress.policies, ...facts.explanation.ingress.policies]),
  ].sort();
  return {
    id: facts.id,
    from: {
      namespace: facts.source.namespace,
      pod: podName(pods.sourcePod),
      labels: { ...facts.source.labels },
    },
    to: {
      namespace: facts.destination.namespace,
      pod: podName(pods.destinationPod),
      labels: { ...facts.destination.labels },
    },
    port: facts.port,
    protocol: facts.protocol,
    expected: facts.expected,
    observed: judged?.observed ?? 'inconclusive',
    outcome: judged?.outcome ?? 'inconclusive',
    attempts: judged?.attempts ?? 0,
    policies,
    policy: caseIndexColumns({ ...facts, rule: facts.rule ?? null }).policy,
    verdict: judged?.reason ?? 'no verdict before the run ended',
    evidence: judged ? evidence : 'not probed',
    traceId: judged?.traceId ?? '',
    ...(facts.family ? { family: facts.family } : {}),
    ...(facts.via
      ? {
          service: {
            namespace: facts.via.namespace,
            name: facts.via.name,
            clusterIP: facts.via.clusterIP,
            port: facts.via.port,
            hairpin: facts.via.hairpin,
          },
        }
      : {}),
  };
}

function summarize(cases: CaseReport[]): RunReport {
  const summary: Record<Outcome, number> = { pass: 0, fail: 0, flaky: 0, inconclusive: 0 };
  for (const c of cases) summary[c.outcome] += 1;
  return { summary, cases };
}

/** The report of an in-process run, from the plan and the reporter's final outcomes. */
export function buildReport(
  cases: readonly PlannedCase[],
  outcomes: ReadonlyMap<string, FinalOutcome>,
): RunReport {
  return summarize(
    cases.map((c) => {
      const final = outcomes.get(c.caseId);
      return caseReport({ ...c, id: c.caseId }, final, final ?? {}, final?.evidence ?? '');
    }),
  );
}

/** The same report, read back from the reporter's store (what the services wrote). */
export function reportFromStore(
  cases: readonly CaseRecord[],
  outcomes: readonly OutcomeRecord[],
  lastAttempts: ReadonlyMap<string, AttemptRecord | undefined>,
): RunReport {
  const byCase = new Map(outcomes.map((o) => [o.caseId, o]));
  return summarize(
    cases.map((c) => {
      const last = lastAttempts.get(c.caseId);
      return caseReport(
        { ...c, id: c.caseId },
        byCase.get(c.caseId),
        last ?? {},
        last ? evidenceText(last.reachability, last.basis, last.evidence) : '',
      );
    }),
  );
}

const MARK: Record<Outcome, string> = { pass: '✓', fail: '✗', flaky: '~', inconclusive: '?' };

function describe(side: CaseReport['from']): string {
  const labels = formatLabels(side.labels);
  return `pods in namespace ${side.namespace} with labels ${labels || '(none)'}`;
}

/** The inovex-style sentence for a case: what the policies say, marked by what the network did. */
export function caseSentence(c: CaseReport): string {
  const verb = c.expected === 'allow' ? 'can reach' : 'cannot reach';
  const through = c.service
    ? ` through Service ${c.service.namespace}/${c.service.name}${c.service.hairpin ? ' (hairpin)' : ''}`
    : '';
  const over = c.family ? ` over IPv${c.family}` : '';
  const text = `${describe(c.from)} ${verb} ${describe(c.to)} on port ${c.port}${c.protocol === 'TCP' ? '' : `/${c.protocol}`}${through}${over}`;
  return `${text.charAt(0).toUpperCase()}${text.slice(1)} ${MARK[c.outcome]}`;
}

export function reportTable(report: RunReport): string {
  const rows = report.cases.map((c) => [
    MARK[c.outcome],
    c.outcome,
    `${c.from.namespace}/${c.from.pod || '-'} → ${c.to.namespace}/${c.to.pod || '-'}`,
    `${c.port}/${c.protocol}`,
    c.expected,
    c.observed,
    String(c.attempts),
    caseSentence(c).slice(0, -2),
  ]);
  const { pass, fail, flaky, inconclusive } = report.summary;
  return (
    renderTable(
      ['', 'OUTCOME', 'PROBE', 'PORT', 'EXPECTED', 'OBSERVED', 'TRIES', 'MEANING'],
      rows,
    ) +
    `\n${report.cases.length} cases: ${pass} pass, ${fail} fail, ${flaky} flaky, ${inconclusive} inconclusive\n`
  );
}

const ruleName = (rule: { policy: string; direction: string; index: number }): string =>
  `${rule.policy} ${rule.direction}[${rule.index}]`;

/**
 * What a run verified of the class matrix and of the rules, and everything it did not
 * verify with the reason: cases not generated, and cases without a conclusive outcome.
 */
export function runCoverage(
  mode: CoverageMode,
  plan: {
    readonly cases: readonly PlannedCase[];
    readonly notGenerated: readonly NotGenerated[];
    readonly coverage: MatrixCoverage;
    readonly notJudged: readonly NotJudged[];
    readonly notJudgedCases: number;
  },
  report: RunReport,
  rules: readonly { policy: string; ingress: readonly number[]; egress: readonly number[] }[],
): RunCoverage {
  const byId = new Map(report.cases.map((c) => [c.id, c]));
  const conclusive = (id: string): boolean => {
    const outcome = byId.get(id)?.outcome;
    return outcome === 'pass' || outcome === 'fail' || outcome === 'flaky';
  };
  const verified = new Set<string>();
  for (const c of plan.cases)
    if (c.rule && byId.get(c.caseId)?.outcome === 'pass')
      verified.add(`${ruleName(c.rule)} ${c.expected}`);
  const allRules = rules.flatMap((p) => [
    ...p.ingress.map((index) => ruleName({ policy: p.policy, direction: 'ingress', index })),
    ...p.egress.map((index) => ruleName({ policy: p.policy, direction: 'egress', index })),
  ]);
  const unjudged = plan.cases
    .filter((c) => !conclusive(c.caseId))
    .map((c) => {
      const judged = byId.get(c.caseId);
      return {
        what: `${c.reason} ${c.source.namespace}/${formatLabels(c.source.labels) || '*'} → ${c.destination.namespace}/${formatLabels(c.destination.labels) || '*'} ${c.port}/${c.protocol}`,
        rule: c.rule ? ruleName(c.rule) : null,
        why: judged ? `${judged.outcome}: ${judged.verdict}` : 'not judged',
      };
    });
  const { sweepsPerRotation } = plan.coverage;
  return {
    mode,
    cells: plan.coverage.cells,
    cellsVerified: plan.cases.filter((c) => isMatrixCell(c) && conclusive(c.caseId)).length,
    ...(plan.coverage.families
      ? {
          families: plan.coverage.families.map(({ family, cells }, i) => ({
            family,
            cells,
            cellsVerified: plan.cases.filter(
              (c) =>
                (i === 0 ? c.family === undefined : c.family === family) &&
                isFamilyCell(c) &&
                conclusive(c.caseId),
            ).length,
          })),
        }
      : {}),
    obligations: plan.coverage.obligations,
    rules: allRules.length,
    rulesCovered: allRules.filter((r) => verified.has(`${r} allow`) && verified.has(`${r} deny`))
      .length,
    runsPerRotation: Number.isFinite(sweepsPerRotation) ? sweepsPerRotation : null,
    notVerified: [
      ...plan.notGenerated.map((n) => ({
        what: `${n.reason} (not generated)`,
        rule: n.rule ? ruleName(n.rule) : null,
        why: n.why,
      })),
      ...unjudged,
    ],
    notJudged: plan.notJudged.map((n) => ({ policy: unmodelledName(n.policy), cases: n.cases })),
    notJudgedCases: plan.notJudgedCases,
  };
}

/** The coverage in a few lines, for the terminal. */
export function coverageText(coverage: RunCoverage): string {
  const percent = (n: number, of: number): string =>
    of === 0 ? '100%' : `${Math.floor((1000 * n) / of) / 10}%`;
  const rotation =
    coverage.runsPerRotation === null
      ? 'the matrix is not rotated (--coverage obligations)'
      : coverage.runsPerRotation <= 1
        ? 'the whole matrix fits one run'
        : `a full rotation takes ${coverage.runsPerRotation} runs at this budget (--coverage full probes every cell)`;
  const lines = [
    `\nCoverage (${coverage.mode}): ${coverage.cellsVerified} of ${coverage.cells} matrix cells verified (${percent(coverage.cellsVerified, coverage.cells)}), ${coverage.rulesCovered} of ${coverage.rules} rules covered (a passing must-allow and deny check each); ${rotation}.`,
  ];
  if (coverage.families)
    lines.push(
      `Per IP family: ${coverage.families
        .map(
          (f) =>
            `IPv${f.family} ${f.cellsVerified} of ${f.cells} cells (${percent(f.cellsVerified, f.cells)})`,
        )
        .join(', ')}.`,
    );
  if (coverage.notJudged.length > 0) {
    lines.push(
      `Not judged: ${coverage.notJudgedCases} cases that policies Lumen does not model may affect (their CNI enforces more than the model says, so no verdict is given, and none fails):`,
    );
    for (const n of coverage.notJudged.slice(0, 20)) lines.push(`  ${n.policy}: ${n.cases} cases`);
    if (coverage.notJudged.length > 20)
      lines.push(`  … and ${coverage.notJudged.length - 20} more objects (--json lists them all)`);
  }
  if (coverage.notVerified.length > 0) {
    lines.push(`Not verified (${coverage.notVerified.length}):`);
    for (const n of coverage.notVerified.slice(0, 50))
      lines.push(`  ${n.what}${n.rule ? ` for ${n.rule}` : ''}: ${n.why}`);
    if (coverage.notVerified.length > 50)
      lines.push(`  … and ${coverage.notVerified.length - 50} more (--json lists them all)`);
  }
  return `${lines.join('\n')}\n`;
}
