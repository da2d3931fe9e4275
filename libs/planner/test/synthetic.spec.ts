import { describe, expect, it } from '@jest/globals';
import { PolicyEngine, type NormalizedPeer } from '#lumen/policy';
import { loadScenarioFile } from '#lumen/scenario';
import { conformanceScenarioFiles } from '#lumen/testing';
import { silentLog } from '#lumen/contracts';
import {
  PlannerCore,
  planCases,
  syntheticSourceLabels,
  type SyntheticSources,
} from '#lumen/planner';
import { InMemoryBus, ManualClock, RecordingTracer, runningOnOneNode } from '#lumen/testing';

type SyntheticPod = Parameters<SyntheticSources['reconcile']>[1][number];

type PodPeer = NormalizedPeer & { kind: 'pods' };
const peer = (p: Partial<Omit<PodPeer, 'kind'>>): PodPeer => ({
  kind: 'pods',
  namespaceSelector: undefined,
  podSelector: undefined,
  ...p,
});

describe('syntheticSourceLabels', () => {
  it.each([
    [
      "near-miss-namespace: the peer's pod labels, from Lumen's namespace",
      'near-miss-namespace' as const,
      peer({
        namespaceSelector: { matchLabels: { team: 'ops' } },
        podSelector: { matchLabels: { app: 'mon' } },
      }),
      { app: 'mon', 'lumen.dev/synthetic': 'true' },
    ],
    [
      'near-miss-namespace with In and Exists',
      'near-miss-namespace' as const,
      peer({
        namespaceSelector: { matchLabels: { team: 'ops' } },
        podSelector: {
          matchExpressions: [
            { key: 'tier', operator: 'In', values: ['web', 'api'] },
            { key: 'owner', operator: 'Exists' },
          ],
        },
      }),
      { tier: 'web', owner: 'lumen', 'lumen.dev/synthetic': 'true' },
    ],
    [
      'near-miss-both: labels the peer does not select',
      'near-miss-both' as const,
      peer({ podSelector: { matchLabels: { app: 'mon' } } }),
      { 'lumen.dev/synthetic': 'true' },
    ],
    [
      'near-miss-both against NotIn: a listed value',
      'near-miss-both' as const,
      peer({
        podSelector: {
          matchExpressions: [{ key: 'role', operator: 'NotIn', values: ['frontend'] }],
        },
      }),
      { role: 'frontend', 'lumen.dev/synthetic': 'true' },
    ],
    [
      'near-miss-both when the peer selects every pod: impossible',
      'near-miss-both' as const,
      peer({ namespaceSelector: { matchLabels: { team: 'ops' } }, podSelector: {} }),
      undefined,
    ],
    [
      "near-miss-pods: never (it would live in a tenant's namespace)",
      'near-miss-pods' as const,
      peer({ podSelector: { matchLabels: { app: 'mon' } } }),
      undefined,
    ],
    [
      "a peer that selects Lumen's namespace too: impossible",
      'near-miss-namespace' as const,
      peer({ namespaceSelector: {}, podSelector: { matchLabels: { app: 'mon' } } }),
      undefined,
    ],
    [
      "a peer selecting Lumen's own pods: refused (app.kubernetes.io/ is reserved)",
      'near-miss-namespace' as const,
      peer({
        namespaceSelector: { matchLabels: { team: 'ops' } },
        podSelector: {
          matchLabels: { 'app.kubernetes.io/name': 'lumen', component: 'reporter' },
        },
      }),
      undefined,
    ],
    [
      'a peer asking for a lumen.dev/ label: refused',
      'near-miss-namespace' as const,
      peer({
        namespaceSelector: { matchLabels: { team: 'ops' } },
        podSelector: { matchExpressions: [{ key: 'lumen.dev/role', operator: 'Exists' }] },
      }),
      undefined,
    ],
    [
      'near-miss-both against DoesNotExist on a reserved key: refused',
      'near-miss-both' as const,
      peer({
        podSelector: {
          matchExpressions: [{ key: 'app.kubernetes.io/part-of', operator: 'DoesNotExist' }],
        },
      }),
      undefined,
    ],
  ])('%s', (_name, reason, p, expected) => {
    expect(syntheticSourceLabels(reason, p, 'default', 'lumen-synthetic')).toEqual(expected);
  });

  it('asks for synthetic sources only where no real pod covers a near miss, and only when enabled', () => {
    const file = conformanceScenarioFiles().find((f) => f.endsWith('00-seed-access-nginx.yaml'))!;
    const engine = new PolicyEngine(loadScenarioFile(file).cluster);
    const off = planCases(engine, { probeBudget: 0 });
    const on = planCases(engine, { probeBudget: 0, syntheticNamespace: 'lumen-synthetic' });
    expect(off.notGenerated.some((n) => n.synthetic)).toBe(false);
    const requested = on.notGenerated.filter((n) => n.synthetic);
    expect(requested.map((n) => n.reason).sort()).toEqual([
      'near-miss-both',
      'near-miss-namespace',
    ]);
    expect(requested.find((n) => n.reason === 'near-miss-namespace')?.synthetic).toEqual({
      namespace: 'lumen-synthetic',
      labels: { access: 'true', 'lumen.dev/synthetic': 'true' },
    });
  });
});

describe('the planner keeps synthetic sources', () => {
  const file = conformanceScenarioFiles().find((f) => f.endsWith('00-seed-access-nginx.yaml'))!;
  const { cluster } = loadScenarioFile(file);

  async function reconciled(maxSyntheticSources?: number): Promise<SyntheticPod[][]> {
    const calls: SyntheticPod[][] = [];
    const core = new PlannerCore(
      {
        bus: new InMemoryBus(),
        clock: new ManualClock(),
        log: silentLog,
        tracer: new RecordingTracer(),
        metrics: { planned: () => undefined, notJudged: () => undefined },
        synthetic: {
          reconcile: (_namespace, wanted) => {
            calls.push([...wanted]);
            return Promise.resolve({ created: wanted.map((_, i) => `p${i}`), deleted: [] });
          },
          removeAll: () => Promise.resolve(),
        },
      },
      {
        coverage: 'budget',
        probeBudget: 0,
        sweepIntervalMs: 300_000,
        maxCandidates: 5,
        syntheticNamespace: 'lumen-synthetic',
        ...(maxSyntheticSources === undefined ? {} : { maxSyntheticSources }),
      },
    );
    await core.update({
      cluster,
      pods: runningOnOneNode(cluster),
      changes: [],
    });
    return calls;
  }

  it('asks for every near miss no real pod covers, within the cap', async () => {
    expect((await reconciled()).at(-1)).toHaveLength(2);
  });

  it('never asks for more than the cap, however many near misses want one', async () => {
    const calls = await reconciled(1);
    expect(calls.at(-1)).toEqual([
      { namespace: 'lumen-synthetic', labels: expect.any(Object) as object },
    ]);
  });
});
