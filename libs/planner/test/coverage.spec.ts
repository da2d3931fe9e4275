import { describe, expect, it } from '@jest/globals';
import { PolicyEngine } from '#lumen/policy';
import { loadScenarioFile } from '#lumen/scenario';
import { conformanceScenarioFiles } from '#lumen/testing';
import { expectationCoverage, planCases } from '#lumen/planner';

const scenario = (suffix: string) =>
  loadScenarioFile(conformanceScenarioFiles().find((f) => f.endsWith(suffix))!);

describe('expectationCoverage', () => {
  it('finds the case that probes each expect row, with the same expectation', () => {
    const s = scenario('07-allow-traffic-from-some-pods-in-another-namespace.yaml');
    const engine = new PolicyEngine(s.cluster);
    const { cases } = planCases(engine, { probeBudget: 0 });
    const coverage = expectationCoverage(engine, cases, s.expectations);
    expect(coverage.every((c) => c.caseId !== undefined)).toBe(true);
    for (const c of coverage)
      expect(cases.find((p) => p.caseId === c.caseId)?.expected).toBe(
        c.row.allowed ? 'allow' : 'deny',
      );
  });

  it.each([
    ['a pod the cluster lacks', { namespace: 'default', name: 'nobody' }, 'is not in the cluster'],
    ['a pair the plan does not probe', undefined, '--coverage full'],
  ])('reports %s as not generated, saying why', (_name, from, why) => {
    const s = scenario('02-limit-traffic-to-an-application.yaml');
    const engine = new PolicyEngine(s.cluster);
    const row = s.expectations[0]!;
    const coverage = expectationCoverage(engine, [], [{ ...row, ...(from ? { from } : {}) }]);
    expect(coverage[0]?.caseId).toBeUndefined();
    expect(coverage[0]?.notGenerated).toContain(why);
  });
});
