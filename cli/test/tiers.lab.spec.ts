/**
 * The cluster-scoped tiers end to end in the lab: the planner watches ClusterNetworkPolicies
 * (and the v1alpha1 kinds) through the API emulator, the enforcer programs all tiers with
 * nftables, and real nmap from real network namespaces judges every case. Healthy, every
 * case passes; under each tier fault, exactly the cases the fault breaks fail.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run as runCommand } from '#lumen/host';
import { applyObjects, faultedEvaluator, parseFault } from '#lumen/lab';
import { startPrivateNatsServer, type PrivateNatsServer } from '#lumen/messaging';
import { expectationCoverage } from '#lumen/planner';
import { PolicyEngine } from '#lumen/policy';
import { loadScenarioFile } from '#lumen/scenario';
import { TEST_LAB_ROOT, repositoryRoot } from '#lumen/testing';
import { upLab } from '../../libs/lab/test/support.js';
import { startLabPipeline } from '../src/pipeline/lab-verify.js';
import { buildReport } from '../src/pipeline/report.js';

const tierScenario = (name: string): string => join(repositoryRoot, 'examples', 'tiers', name);
let nats: PrivateNatsServer;
let scratch: string;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'lumen-tiers-'));
  nats = await startPrivateNatsServer({ storeDir: join(scratch, 'nats') });
});
afterAll(async () => {
  await nats.stop();
});

/** One pass of the pipeline over a fresh lab; returns the report and the scenario. */
async function judge(file: string, labName: string, faults: readonly string[] = []) {
  const lab = await upLab(labName, file, faults);
  try {
    const pipeline = await startLabPipeline({
      labName,
      labRoot: TEST_LAB_ROOT,
      natsUrl: nats.url,
      scratch,
      coverage: 'full',
      probeBudget: Infinity,
    });
    try {
      await pipeline.untilJudged(180_000);
      const plan = pipeline.planner.plan!;
      return {
        plan,
        report: buildReport(plan.cases, pipeline.finalOutcomes),
        scenario: loadScenarioFile(file),
      };
    } finally {
      await pipeline.stop();
    }
  } finally {
    await lab.down();
  }
}

describe('the Admin and Baseline tiers in the lab', () => {
  it.each([
    ['tenant-isolation-cnp.yaml', 'tiers-cnp'],
    ['tenant-isolation-anp.yaml', 'tiers-anp'],
  ])(
    '%s: every case passes, every tier rule has a case, every expectation is probed as the scenario says',
    async (file, labName) => {
      const { plan, report, scenario } = await judge(tierScenario(file), labName);
      expect(report.cases.filter((c) => c.outcome !== 'pass')).toEqual([]);
      const engine = new PolicyEngine(scenario.cluster);
      const rules = engine.clusterPolicies.flatMap((p) =>
        p.rules.map((r) => `${p.key} ${r.direction}[${r.index}]`),
      );
      const checked = new Set(
        plan.cases
          .filter((c) => c.reason === 'tier-rule')
          .map((c) => `${c.rule?.policy} ${c.rule?.direction}[${c.rule?.index}]`),
      );
      expect([...checked].sort()).toEqual([...rules].sort());
      for (const covered of expectationCoverage(engine, plan.cases, scenario.expectations)) {
        const match = plan.cases.find((c) => c.caseId === covered.caseId);
        expect(match?.expected === 'allow').toBe(covered.row.allowed);
      }
    },
  );

  it.each([
    'pass-as-accept',
    'ignore-admin-tier',
    'priority-reversed',
    'baseline-over-networkpolicy',
  ])('with %s, fails exactly the cases the fault breaks, and nothing else', async (mode) => {
    const file = tierScenario('tenant-isolation-cnp.yaml');
    const { report, scenario } = await judge(file, `tiers-${mode.slice(0, 12)}`, [mode]);
    const broken = faultedEvaluator(scenario.cluster, [parseFault(mode)]);
    const expectedOutcome = report.cases.map((c) => {
      const allowedUnderFault = broken.verdict({
        from: { namespace: c.from.namespace, name: c.from.pod },
        to: { namespace: c.to.namespace, name: c.to.pod },
        port: c.port,
        protocol: c.protocol as 'TCP',
      }).allowed;
      return `${c.id} ${allowedUnderFault === (c.expected === 'allow') ? 'pass' : 'fail'}`;
    });
    expect(report.cases.map((c) => `${c.id} ${c.outcome}`)).toEqual(expectedOutcome);
    expect(report.cases.filter((c) => c.outcome === 'fail').length).toBeGreaterThan(0);
  });
});

describe('policies of kinds Lumen does not model, in the lab', () => {
  it('finds a CiliumNetworkPolicy through the API and reports what it may affect as not judged', async () => {
    const file = tierScenario('tenant-isolation-cnp.yaml');
    const lab = await upLab('tiers-cilium', file);
    try {
      await applyObjects(lab.client, [
        {
          apiVersion: 'cilium.io/v2',
          kind: 'CiliumNetworkPolicy',
          metadata: { name: 'l7-rules', namespace: 'tenant-b' },
          spec: { endpointSelector: {}, ingress: [{ fromEndpoints: [{}] }] },
        },
      ]);
      const pipeline = await startLabPipeline({
        labName: 'tiers-cilium',
        labRoot: TEST_LAB_ROOT,
        natsUrl: nats.url,
        scratch,
      });
      try {
        await pipeline.untilJudged(180_000);
        const plan = pipeline.planner.plan!;
        expect(
          plan.cases.filter(
            (c) => c.source.namespace === 'tenant-b' || c.destination.namespace === 'tenant-b',
          ),
        ).toEqual([]);
        expect(plan.cases.length).toBeGreaterThan(0);
        expect(plan.notGenerated.map((n) => n.why)).toContain(
          'not judged: CiliumNetworkPolicy tenant-b/l7-rules (cilium.io) may affect it, and Lumen does not model that kind',
        );
        const report = buildReport(plan.cases, pipeline.finalOutcomes);
        expect(report.cases.filter((c) => c.outcome !== 'pass')).toEqual([]);
      } finally {
        await pipeline.stop();
      }

      // The same through `lumen run --once`, as a user runs it: the output names the object.
      const json = join(scratch, 'cilium-run.json');
      const run = await runCommand(
        process.execPath,
        [
          join(repositoryRoot, 'bin', 'lumen.mjs'),
          'run',
          '--once',
          '--kubeconfig',
          lab.status.kubeconfig,
          '--probers',
          'local',
          '--pod-cidrs',
          '10.244.0.0/16',
          '--settle-window',
          '0',
          '--json',
          json,
        ],
        { env: { NATS_URL: '', DATABASE_URL: '' } },
      );
      expect(run.stderr).not.toContain('Error');
      expect(run.code).toBe(0);
      const written = JSON.parse(readFileSync(json, 'utf8')) as {
        coverage: { notJudged: { policy: string; cases: number }[]; notJudgedCases: number };
      };
      const { notJudged, notJudgedCases } = written.coverage;
      expect(notJudged).toEqual([
        { policy: 'CiliumNetworkPolicy tenant-b/l7-rules (cilium.io)', cases: notJudgedCases },
      ]);
      expect(notJudgedCases).toBeGreaterThan(0);
      expect(run.stdout).toContain(
        `Not judged: ${notJudgedCases} cases that policies Lumen does not model may affect`,
      );
      expect(run.stdout).toContain(
        `  CiliumNetworkPolicy tenant-b/l7-rules (cilium.io): ${notJudgedCases} cases\n`,
      );
    } finally {
      await lab.down();
    }
  });
});
