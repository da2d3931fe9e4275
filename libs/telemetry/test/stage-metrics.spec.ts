import { describe, expect, it } from '@jest/globals';
import { plannerPrometheus, registry } from '#lumen/telemetry';

describe('the planner’s Prometheus metrics', () => {
  it('count the unmodelled policies per kind and the cases they keep from judgment, replacing the last plan’s', async () => {
    const cilium = (name: string) => ({
      policy: { group: 'cilium.io', kind: 'CiliumNetworkPolicy', namespace: 'a', name },
      cases: 3,
    });
    plannerPrometheus.notJudged(
      [
        cilium('one'),
        cilium('two'),
        {
          policy: { group: 'crd.projectcalico.org', kind: 'GlobalNetworkPolicy', name: 'g' },
          cases: 5,
        },
      ],
      6,
    );
    let text = await registry.metrics();
    expect(text).toMatch(
      /^lumen_unmodelled_policies\{group="cilium.io",kind="CiliumNetworkPolicy"\} 2$/m,
    );
    expect(text).toMatch(
      /^lumen_unmodelled_policies\{group="crd.projectcalico.org",kind="GlobalNetworkPolicy"\} 1$/m,
    );
    expect(text).toMatch(/^lumen_cases_not_judged 6$/m);

    plannerPrometheus.notJudged([cilium('one')], 3);
    text = await registry.metrics();
    expect(text).toMatch(
      /^lumen_unmodelled_policies\{group="cilium.io",kind="CiliumNetworkPolicy"\} 1$/m,
    );
    expect(text).not.toContain('GlobalNetworkPolicy');
    expect(text).toMatch(/^lumen_cases_not_judged 3$/m);
  });
});
