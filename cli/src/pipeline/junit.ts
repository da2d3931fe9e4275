import type { CaseReport, Outcome, RunReport } from './report.js';
import { caseSentence } from './report.js';

/** Outcomes that fail the gate: `--fail-on`. */
export type FailOn = ReadonlySet<Outcome>;

export const DEFAULT_FAIL_ON: FailOn = new Set<Outcome>(['fail', 'flaky']);

const GATEABLE: readonly Outcome[] = ['fail', 'flaky', 'inconclusive'];

/** Parses `--fail-on fail,flaky,inconclusive` (any non-empty subset). */
export function parseFailOn(text: string): FailOn {
  const parts = text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const unknown = parts.filter((p) => !GATEABLE.includes(p as Outcome));
  if (parts.length === 0 || unknown.length > 0)
    throw new Error(
      `--fail-on takes a comma-separated list of ${GATEABLE.join(', ')}${unknown.length > 0 ? `, not "${unknown.join(',')}"` : ''}`,
    );
  return new Set(parts as Outcome[]);
}

export function gateFails(report: RunReport, failOn: FailOn): boolean {
  return report.cases.some((c) => failOn.has(c.outcome));
}

const NO_POLICY = '(no policy: default allow)';

/** Text made safe inside XML or HTML, in an element or a quoted attribute. */
export function escapeXml(text: string): string {
  return (
    text
      // Characters XML 1.0 cannot carry at all.
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '\uFFFD')
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
      .replace(/'/g, '&apos;')
  );
}

export function failureText(c: CaseReport): string {
  return [
    `expected ${c.expected}, observed ${c.observed} (${c.attempts} attempt${c.attempts === 1 ? '' : 's'})`,
    `verdict: ${c.verdict}`,
    `evidence: ${c.evidence}`,
    `probe: ${c.from.namespace}/${c.from.pod || '-'} → ${c.to.namespace}/${c.to.pod || '-'} ${c.protocol}/${c.port}`,
    `policies: ${c.policies.join(', ') || 'none'}`,
    `case: ${c.id}${c.traceId ? `, trace ${c.traceId}` : ''}`,
  ].join('\n');
}

function testcase(c: CaseReport, failOn: FailOn): string {
  const name = escapeXml(`${caseSentence(c).slice(0, -2)} [${c.id}]`);
  const open = `    <testcase classname="${escapeXml(c.policy ?? NO_POLICY)}" name="${name}" time="0">`;
  const message = escapeXml(`${c.outcome}: expected ${c.expected}, observed ${c.observed}`);
  const body = escapeXml(failureText(c));
  if (c.outcome === 'pass') return `${open}</testcase>`;
  if (c.outcome === 'inconclusive' && !failOn.has('inconclusive'))
    return `${open}\n      <skipped>${escapeXml(`inconclusive: ${c.verdict}`)}</skipped>\n    </testcase>`;
  const element = c.outcome === 'inconclusive' ? 'error' : 'failure';
  return `${open}\n      <${element} type="${c.outcome}" message="${message}">${body}</${element}>\n    </testcase>`;
}

/** The run's coverage as JUnit properties: every suite carries them, as CI tools show each. */
function coverageProperties(report: RunReport): string[] {
  const coverage = report.coverage;
  if (!coverage) return [];
  const entries: [string, string | number][] = [
    ['lumen.coverage.mode', coverage.mode],
    ['lumen.coverage.cells', coverage.cells],
    ['lumen.coverage.cells_verified', coverage.cellsVerified],
    ['lumen.coverage.obligations', coverage.obligations],
    ['lumen.coverage.rules', coverage.rules],
    ['lumen.coverage.rules_covered', coverage.rulesCovered],
    ['lumen.coverage.runs_per_rotation', coverage.runsPerRotation ?? 'never'],
    ['lumen.coverage.not_verified', coverage.notVerified.length],
  ];
  return [
    '    <properties>',
    ...entries.map(
      ([name, value]) => `      <property name="${name}" value="${escapeXml(String(value))}"/>`,
    ),
    '    </properties>',
  ];
}

/**
 * A JUnit XML report (the Jenkins/Ant schema most CI systems read): one testsuite per
 * policy, one testcase per case, the evidence in each failure. Outcomes outside the gate
 * are reported, not failed: inconclusive is skipped unless `--fail-on` includes it.
 */
export function junitReport(
  report: RunReport,
  failOn: FailOn,
  meta: { readonly timestamp: Date; readonly durationSeconds: number; readonly hostname: string },
): string {
  const suites = new Map<string, CaseReport[]>();
  for (const c of report.cases) {
    const key = c.policy ?? NO_POLICY;
    suites.set(key, [...(suites.get(key) ?? []), c]);
  }
  const counts = (
    cases: readonly CaseReport[],
  ): { failures: number; errors: number; skipped: number } => ({
    failures: cases.filter((c) => c.outcome === 'fail' || c.outcome === 'flaky').length,
    errors: cases.filter((c) => c.outcome === 'inconclusive' && failOn.has('inconclusive')).length,
    skipped: cases.filter((c) => c.outcome === 'inconclusive' && !failOn.has('inconclusive'))
      .length,
  });
  const all = counts(report.cases);
  const timestamp = meta.timestamp.toISOString().replace(/\.\d{3}Z$/, '');
  const properties = coverageProperties(report);
  const body = [...suites.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([policy, cases]) => {
      const c = counts(cases);
      return [
        `  <testsuite name="${escapeXml(policy)}" tests="${cases.length}" failures="${c.failures}" errors="${c.errors}" skipped="${c.skipped}" time="0" timestamp="${timestamp}" hostname="${escapeXml(meta.hostname)}">`,
        ...properties,
        ...cases.map((k) => testcase(k, failOn)),
        '  </testsuite>',
      ].join('\n');
    });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="lumen" tests="${report.cases.length}" failures="${all.failures}" errors="${all.errors}" time="${meta.durationSeconds.toFixed(3)}">`,
    ...body,
    '</testsuites>',
    '',
  ].join('\n');
}
