import { describe, expect, it } from '@jest/globals';
import { planCases, policyInventory } from '#lumen/planner';
import { PolicyEngine } from '#lumen/policy';
import type { FinalOutcome } from '#lumen/reporter';
import { loadScenarioFile } from '#lumen/scenario';
import { conformanceScenarioFiles } from '#lumen/testing';
import { junitReport } from '../src/pipeline/junit.js';
import { buildReport, coverageText, runCoverage } from '../src/pipeline/report.js';

const recipe07 = loadScenarioFile(
  conformanceScenarioFiles().find((f) => f.includes('07-allow-traffic-from-some-pods'))!,
);
const engine = new PolicyEngine(recipe07.cluster);
const plan = planCases(engine, { probeBudget: Infinity });
const rules = policyInventory(engine, 0).flatMap((p) => p.policies);

/** Every case judged as the policies say, but `fail` for these and none for `skip`. */
function outcomes(fail: readonly string[] = [], skip: readonly string[] = []) {
  return new Map(
    plan.cases
      .filter((c) => !skip.includes(c.caseId))
      .map((c): [string, FinalOutcome] => [
        c.caseId,
        {
          caseId: c.caseId,
          outcome: fail.includes(c.caseId) ? 'fail' : 'pass',
          round: 1,
          decidedAt: new Date(),
          reason: 'r',
          attempts: 1,
          enforcementLatencyMs: null,
          traceId: null,
          observed: c.expected === 'allow' ? 'reachable' : 'blocked',
          previous: undefined,
          sourcePod: undefined,
          destinationPod: undefined,
          evidence: '',
        },
      ]),
  );
}

describe('the coverage of a run', () => {
  it('counts the matrix cells verified and the rules with a passing allow and deny check', () => {
    const report = buildReport(plan.cases, outcomes());
    const coverage = runCoverage('full', plan, report, rules);
    expect(coverage).toMatchObject({
      mode: 'full',
      cells: 4,
      cellsVerified: 4,
      rules: 1,
      rulesCovered: 1,
      runsPerRotation: 1,
    });
    expect(coverageText(coverage)).toContain(
      'Coverage (full): 4 of 4 matrix cells verified (100%), 1 of 1 rules covered',
    );
  });

  it('lists what it did not verify, and why; a failed check still verified its cell', () => {
    const [mustAllow] = plan.cases.filter((c) => c.reason === 'must-allow');
    const [nearMiss] = plan.cases.filter((c) => c.reason === 'near-miss-both');
    const report = buildReport(plan.cases, outcomes([mustAllow!.caseId], [nearMiss!.caseId]));
    const coverage = runCoverage('full', plan, report, rules);
    expect(coverage.cellsVerified).toBe(3);
    expect(coverage.rulesCovered).toBe(0);
    expect(coverage.notVerified).toEqual([
      expect.objectContaining({
        rule: 'default/web-allow-all-ns-monitoring ingress[0]',
        why: 'inconclusive: no verdict before the run ended',
      }),
    ]);
  });

  it('names the policies Lumen does not model, with the cases each keeps from judgment', () => {
    const unmodelled = [
      { group: 'cilium.io', kind: 'CiliumNetworkPolicy', namespace: 'default', name: 'l7' },
      { group: 'crd.projectcalico.org', kind: 'GlobalNetworkPolicy', name: 'deny' },
    ];
    const unjudged = planCases(engine, { probeBudget: Infinity, unmodelled });
    const report = buildReport(unjudged.cases, outcomes());
    const coverage = runCoverage('full', unjudged, report, rules);
    // Recipe 07's pods are all in default or reached by the global one: nothing is judged.
    expect(unjudged.cases).toEqual([]);
    expect(coverage.notJudgedCases).toBeGreaterThan(0);
    expect(coverage.notJudged).toEqual([
      { policy: 'CiliumNetworkPolicy default/l7 (cilium.io)', cases: coverage.notJudgedCases },
      {
        policy: 'GlobalNetworkPolicy deny (crd.projectcalico.org)',
        cases: coverage.notJudgedCases,
      },
    ]);
    expect(coverageText(coverage)).toContain(
      `Not judged: ${coverage.notJudgedCases} cases that policies Lumen does not model may affect`,
    );
    expect(coverageText(coverage)).toContain(
      `  GlobalNetworkPolicy deny (crd.projectcalico.org): ${coverage.notJudgedCases} cases\n`,
    );
    expect(
      coverageText(runCoverage('full', plan, buildReport(plan.cases, outcomes()), rules)),
    ).not.toContain('Not judged');
  });

  it('says how many runs a rotation takes, and never where nothing rotates', () => {
    // Recipe 07's obligations are its whole matrix already.
    const obligations = planCases(engine, { probeBudget: 0 });
    const report = buildReport(obligations.cases, outcomes());
    expect(runCoverage('obligations', obligations, report, rules).runsPerRotation).toBe(1);
    const larger = { ...obligations, coverage: { ...obligations.coverage, sweepsPerRotation: 7 } };
    expect(coverageText(runCoverage('budget', larger, report, rules))).toContain(
      'a full rotation takes 7 runs at this budget',
    );
    const never = {
      ...obligations,
      coverage: { ...obligations.coverage, sweepsPerRotation: Infinity },
    };
    const coverage = runCoverage('obligations', never, report, rules);
    expect(coverage.runsPerRotation).toBeNull();
    expect(JSON.parse(JSON.stringify(coverage))).toMatchObject({ runsPerRotation: null });
  });

  it('puts the coverage into every JUnit testsuite as properties', () => {
    const report = buildReport(plan.cases, outcomes());
    const xml = junitReport(
      { ...report, coverage: runCoverage('full', plan, report, rules) },
      new Set(['fail']),
      { timestamp: new Date('2026-12-01T10:00:00Z'), durationSeconds: 1, hostname: 'ci' },
    );
    const suites = xml.split('<testsuite ').length - 1;
    expect(suites).toBeGreaterThan(0);
    expect(xml.split('<property name="lumen.coverage.cells" value="4"/>').length - 1).toBe(suites);
    expect(xml).toContain('<property name="lumen.coverage.rules_covered" value="1"/>');
    // Properties come first in a testsuite, as the schema wants.
    expect(xml).toMatch(/<testsuite [^>]*>\n {4}<properties>/);
  });
});
