/**
 * The tier faults as policy rewrites: each changes the verdicts its CNI failure would, on
 * the repository's tenant-isolation scenario, judged by the reference evaluator.
 */
import { describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { ReferenceEvaluator } from '#lumen/policy';
import { loadScenarioFile } from '#lumen/scenario';
import { repositoryRoot } from '#lumen/testing';
import { faultedCluster, faultedEvaluator, parseFault } from '../src/index.js';

const { cluster } = loadScenarioFile(
  join(repositoryRoot, 'examples', 'tiers', 'tenant-isolation-cnp.yaml'),
);

function allowed(evaluator: ReferenceEvaluator, from: string, to: string, port: number): boolean {
  const ref = (text: string) => {
    const [namespace = '', name = ''] = text.split('/');
    return { namespace, name };
  };
  return evaluator.verdict({ from: ref(from), to: ref(to), port, protocol: 'TCP' }).allowed;
}

describe('tier faults', () => {
  it.each([
    // Pass to the tenant's policies becomes Accept: tenant-b's Baseline deny is skipped.
    { mode: 'pass-as-accept', from: 'tenant-b/api', to: 'tenant-b/web', healthy: false },
    // The Admin tier is gone: tenant-a's NetworkPolicy admits every namespace on 80.
    { mode: 'ignore-admin-tier', from: 'tenant-b/web', to: 'tenant-a/web', healthy: false },
    // Reversed priorities: the tenant isolation (20) now comes before monitoring (10).
    { mode: 'priority-reversed', from: 'monitoring/prom', to: 'tenant-a/web', healthy: true },
    // The Baseline deny is asked before tenant-a's NetworkPolicies.
    { mode: 'baseline-over-networkpolicy', from: 'tenant-a/db', to: 'tenant-a/web', healthy: true },
  ])('$mode: $from → $to:80 flips from allowed=$healthy', ({ mode, from, to, healthy }) => {
    expect(allowed(new ReferenceEvaluator(cluster), from, to, 80)).toBe(healthy);
    expect(allowed(faultedEvaluator(cluster, [parseFault(mode)]), from, to, 80)).toBe(!healthy);
  });

  it('leaves clusters without cluster-scoped policies as they are', () => {
    const plain = { ...cluster, clusterPolicies: [] };
    for (const mode of ['pass-as-accept', 'ignore-admin-tier', 'priority-reversed'])
      expect(faultedCluster(plain, [parseFault(mode)]).clusterPolicies).toEqual([]);
  });
});
