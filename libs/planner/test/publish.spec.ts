import { describe, expect, it } from '@jest/globals';
import { TestCaseContract, decode, encode } from '#lumen/contracts';
import { PolicyEngine, podKey, type Cluster, type PodClass } from '#lumen/policy';
import { loadScenarioFile } from '#lumen/scenario';
import { conformanceScenarioFiles } from '#lumen/testing';
import type { PodEndpoint } from '#lumen/contracts';
import { diffPlans, planCases, testCaseMessage } from '#lumen/planner';

const cluster: Cluster = loadScenarioFile(
  conformanceScenarioFiles().find((f) =>
    f.endsWith('07-allow-traffic-from-some-pods-in-another-namespace.yaml'),
  )!,
).cluster;
const endpoints = (c: PodClass): PodEndpoint[] =>
  c.pods.map((p, i) => ({
    namespace: p.namespace,
    name: p.name,
    uid: `uid-${podKey(p)}`,
    ip: `10.244.1.${10 + i}`,
    node: 'lab-node-1',
  }));
const t0 = new Date('2026-11-26T05:00:00Z');
const t1 = new Date('2026-11-26T05:10:00Z');

describe('diffPlans', () => {
  it('publishes everything the first time, and nothing when nothing changed', () => {
    const plan = planCases(new PolicyEngine(cluster), { probeBudget: 0 }).cases;
    const first = diffPlans(new Map(), plan, endpoints, t0);
    expect(first.changed).toHaveLength(plan.length);
    const again = diffPlans(first.state, plan, endpoints, t1);
    expect(again.changed).toEqual([]);
    expect([...again.state.values()].every((c) => c.changedAt === t0.toISOString())).toBe(true);
  });

  it('republishes only the cases a policy change affects, opening their settle window', () => {
    const before = planCases(new PolicyEngine(cluster), { probeBudget: 0 }).cases;
    const first = diffPlans(new Map(), before, endpoints, t0);
    const opened = {
      ...cluster,
      policies: cluster.policies.map((p) => ({ ...p, spec: { ...p.spec, ingress: [{}] } })),
    };
    const after = planCases(new PolicyEngine(opened), { probeBudget: 0 }).cases;
    const diff = diffPlans(first.state, after, endpoints, t1);
    expect(diff.changed.length).toBeGreaterThan(0);
    expect(diff.changed.length).toBeLessThan(after.length + 1);
    for (const c of diff.changed)
      expect(diff.state.get(c.caseId)?.changedAt).toBe(t1.toISOString());
    const untouched = after.filter((c) => !diff.changed.includes(c));
    for (const c of untouched) expect(diff.state.get(c.caseId)?.changedAt).toBe(t0.toISOString());
    expect(diff.removed).toEqual(
      before.map((c) => c.caseId).filter((id) => !after.some((a) => a.caseId === id)),
    );
  });
});

describe('testCaseMessage', () => {
  it('builds a valid lumen.v1.cases message with candidate pods', () => {
    const [planned] = planCases(new PolicyEngine(cluster), { probeBudget: 0 }).cases;
    const message = testCaseMessage(planned!, endpoints, {
      generation: 4,
      changedAt: t0.toISOString(),
      maxCandidates: 5,
    });
    expect(decode(TestCaseContract, encode(TestCaseContract, message))).toEqual({
      ok: true,
      value: message,
    });
    expect(message.sources[0]).toMatchObject({
      uid: expect.stringMatching(/^uid-/),
      node: 'lab-node-1',
    });
    expect(message.syntheticSource).toBe(false);
  });
});
