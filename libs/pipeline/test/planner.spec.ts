import { describe, expect, it } from '@jest/globals';
import {
  POLICY_INVENTORY_SUBJECT,
  TEST_CASE_SUBJECT,
  type Contract,
  type PolicyInventory,
  type TestCase,
} from '#lumen/contracts';
import { PlannerCore, silentLog, type ClusterView, type Publisher } from '#lumen/pipeline';
import type { Cluster } from '#lumen/policy';
import { loadScenarioFile } from '#lumen/scenario';
import { conformanceScenarioFiles } from '#lumen/testing';

const recipe07 = conformanceScenarioFiles().find((f) =>
  f.includes('/07-allow-traffic-from-some-pods'),
)!;

/** Records what the planner publishes, each message checked against its contract. */
class RecordingBus implements Publisher {
  readonly messages: { subject: string; value: unknown }[] = [];
  async publish<T>(subject: string, contract: Contract<T>, value: T): Promise<void> {
    expect(contract.schema.safeParse(value).success).toBe(true);
    this.messages.push({ subject, value });
  }
  cases(): TestCase[] {
    return this.messages
      .filter((m) => m.subject === TEST_CASE_SUBJECT)
      .map((m) => m.value as TestCase);
  }
  clear(): void {
    this.messages.length = 0;
  }
}

function view(cluster: Cluster, changes: ClusterView['changes'] = []): ClusterView {
  return {
    cluster,
    pods: cluster.pods.map((p, i) => ({
      ...p,
      uid: `uid-${i}`,
      node: 'node-1',
      running: true,
      ip: p.ip ?? `10.0.0.${i + 2}`,
    })),
    changes,
  };
}

const namespacesOf = (cases: readonly TestCase[]): string[] =>
  [...new Set(cases.flatMap((c) => [c.source.namespace, c.destination.namespace]))].sort();

describe('PlannerCore', () => {
  const scenario = loadScenarioFile(recipe07);
  const optedOut = (cluster: Cluster, namespace: string, value: string): Cluster => ({
    ...cluster,
    namespaces: cluster.namespaces.map((n) =>
      n.name === namespace ? { ...n, labels: { ...n.labels, 'lumen.dev/ignore': value } } : n,
    ),
  });

  it('leaves out the pods of a namespace labelled lumen.dev/ignore=true, and takes them back', async () => {
    const bus = new RecordingBus();
    const planner = new PlannerCore(
      bus,
      { sampleBudget: 0, maxCandidates: 5, optOutLabel: 'lumen.dev/ignore' },
      { now: () => new Date('2026-11-26T10:00:00Z') },
      silentLog,
    );
    await planner.update(view(scenario.cluster));
    expect(namespacesOf(bus.cases())).toContain('other');

    bus.clear();
    const out = optedOut(scenario.cluster, 'other', 'true');
    await planner.update(view(out, [{ kind: 'Namespace', type: 'upsert', key: 'other' }]));
    await planner.sweep();
    expect(bus.cases().length).toBeGreaterThan(0);
    expect(namespacesOf(bus.cases())).not.toContain('other');
    expect(
      planner.plan?.cases.every(
        (c) => c.source.namespace !== 'other' && c.destination.namespace !== 'other',
      ),
    ).toBe(true);

    bus.clear();
    await planner.update(
      view(optedOut(scenario.cluster, 'other', 'false'), [
        { kind: 'Namespace', type: 'upsert', key: 'other' },
      ]),
    );
    expect(namespacesOf(bus.cases())).toContain('other');
  });

  it('publishes the policy inventory with every policy’s effective rules, again only when it changed or on a sweep', async () => {
    const bus = new RecordingBus();
    const planner = new PlannerCore(
      bus,
      { sampleBudget: 0, maxCandidates: 5 },
      { now: () => new Date('2026-11-26T10:00:00Z') },
      silentLog,
    );
    const inventories = (): PolicyInventory[] =>
      bus.messages
        .filter((m) => m.subject === POLICY_INVENTORY_SUBJECT)
        .map((m) => m.value as PolicyInventory);
    await planner.update(view(scenario.cluster));
    expect(inventories()).toHaveLength(1);
    expect(inventories()[0]).toMatchObject({ part: 0, parts: 1 });
    expect(inventories()[0]!.policies.map((p) => p.policy)).toEqual(
      scenario.cluster.policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`).sort(),
    );
    await planner.update(
      view(scenario.cluster, [
        {
          kind: 'Pod',
          type: 'upsert',
          key: `${scenario.cluster.pods[0]!.namespace}/${scenario.cluster.pods[0]!.name}`,
        },
      ]),
    );
    expect(inventories()).toHaveLength(1); // nothing about policies changed
    await planner.sweep();
    expect(inventories()).toHaveLength(2);
  });
});
