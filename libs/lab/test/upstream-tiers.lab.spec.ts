import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { basename, join } from 'node:path';
import { kernelSupportsSctp } from '#lumen/host';
import { scenarioFiles } from '#lumen/scenario';
import { repositoryRoot } from '#lumen/testing';
import { applyObjects, deleteObjects, scenarioObjects, type ManifestObject } from '../src/index.js';
import { probeExpectations, scenario, settle, upLab, type TestLab } from './support.js';

/**
 * The states the upstream ClusterNetworkPolicy conformance tests walk through
 * (`examples/tiers/upstream`, expectations transcribed from kubernetes-sigs/network-policy-api),
 * in one lab, one state after the other, as the upstream tests patch their policies: real
 * nftables programmed by the enforcer, real nmap from each source pod's network namespace.
 * SCTP rows are probed only where the kernel has SCTP; CI's kernel has none, so there they
 * are checked by both evaluators alone (libs/policy/test/conformance.spec.ts).
 */
const states = scenarioFiles(join(repositoryRoot, 'examples', 'tiers', 'upstream'));
const sctp = kernelSupportsSctp();
const isPolicy = (o: ManifestObject): boolean => o.kind !== 'Namespace' && o.kind !== 'Pod';
const objectKey = (o: ManifestObject): string =>
  `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

describe('the upstream ClusterNetworkPolicy conformance states, probed in the lab', () => {
  let lab: TestLab;
  let applied: ManifestObject[] = [];

  beforeAll(async () => {
    lab = await upLab('upstream-tiers', states[0]!);
    applied = scenarioObjects(scenario(states[0]!)).filter(isPolicy);
  });
  afterAll(async () => {
    await lab.down();
  });

  it('has the states to walk through', () => {
    expect(states.map((f) => basename(f, '.yaml'))).toEqual(
      expect.arrayContaining([
        'integration-4-baseline-after-pass',
        'priority-2-pass-at-40-to-baseline-accept',
        'gress-4-pass-at-ports-first',
        'cidr-3-accept-pod-ips-first',
      ]),
    );
  });

  it.each(states.map((f) => [basename(f, '.yaml'), f]))('%s', async (_name, file) => {
    const state = scenario(file);
    const objects = scenarioObjects(state);
    const policies = objects.filter(isPolicy);
    const wanted = new Set(policies.map(objectKey));
    await deleteObjects(
      lab.client,
      applied.filter((o) => !wanted.has(objectKey(o))),
    );
    await applyObjects(lab.client, [...objects.filter((o) => o.kind === 'Namespace'), ...policies]);
    applied = policies;
    const status = await settle(lab);

    const rows = state.expectations.filter((row) => sctp || row.protocol !== 'SCTP');
    expect(rows.length).toBeGreaterThan(0);
    const answers = await probeExpectations(status, state, rows);
    expect(
      rows.map((row) => ({
        from: `${row.from.namespace}/${row.from.name}`,
        to: `${row.to.namespace}/${row.to.name}`,
        port: `${row.port}/${row.protocol}`,
        observed: answers.get(row)?.reachability,
      })),
    ).toEqual(
      rows.map((row) => ({
        from: `${row.from.namespace}/${row.from.name}`,
        to: `${row.to.namespace}/${row.to.name}`,
        port: `${row.port}/${row.protocol}`,
        observed: row.allowed ? 'reachable' : 'blocked',
      })),
    );
  });
});
