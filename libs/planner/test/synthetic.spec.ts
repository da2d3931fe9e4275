import { describe, expect, it } from '@jest/globals';
import { PolicyEngine, type NormalizedPeer } from '#lumen/policy';
import { loadScenarioFile } from '#lumen/scenario';
import { conformanceScenarioFiles } from '#lumen/testing';
import { planCases, syntheticSourceLabels } from '#lumen/planner';

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
