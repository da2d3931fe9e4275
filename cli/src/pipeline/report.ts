import type { PlannedCase } from '#lumen/planning';
import type { FinalOutcome } from '#lumen/pipeline';
import { formatLabels } from '#lumen/policy';
import { renderTable } from '../io.js';

export type Outcome = 'pass' | 'fail' | 'flaky' | 'inconclusive';

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
  readonly traceId: string;
}

export interface RunReport {
  readonly summary: Record<Outcome, number>;
  readonly cases: CaseReport[];
}

const podName = (ref: string | undefined): string => ref?.split('/')[1] ?? '';

export function buildReport(
  cases: readonly PlannedCase[],
  outcomes: ReadonlyMap<string, FinalOutcome>,
): RunReport {
  const summary: Record<Outcome, number> = { pass: 0, fail: 0, flaky: 0, inconclusive: 0 };
  const reports = cases.map((c): CaseReport => {
    const final = outcomes.get(c.caseId);
    const outcome = (final?.outcome ?? 'inconclusive') as Outcome;
    summary[outcome] += 1;
    return {
      id: c.caseId,
      from: {
        namespace: c.source.namespace,
        pod: podName(final?.sourcePod),
        labels: { ...c.source.labels },
      },
      to: {
        namespace: c.destination.namespace,
        pod: podName(final?.destinationPod),
        labels: { ...c.destination.labels },
      },
      port: c.port,
      protocol: c.protocol,
      expected: c.expected,
      observed: (final?.observed ?? 'inconclusive') as CaseReport['observed'],
      outcome,
      attempts: final?.attempts ?? 0,
      policies: [
        ...new Set([...c.explanation.egress.policies, ...c.explanation.ingress.policies]),
      ].sort(),
      traceId: final?.traceId ?? '',
    };
  });
  return { summary, cases: reports };
}

const MARK: Record<Outcome, string> = { pass: '✓', fail: '✗', flaky: '~', inconclusive: '?' };

function describe(side: CaseReport['from']): string {
  const labels = formatLabels(side.labels);
  return `pods in namespace ${side.namespace} with labels ${labels || '(none)'}`;
}

/** The inovex-style sentence for a case: what the policies say, marked by what the network did. */
export function caseSentence(c: CaseReport): string {
  const verb = c.expected === 'allow' ? 'can reach' : 'cannot reach';
  const text = `${describe(c.from)} ${verb} ${describe(c.to)} on port ${c.port}${c.protocol === 'TCP' ? '' : `/${c.protocol}`}`;
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
