import { afterAll, describe, expect, it } from '@jest/globals';
import { basename, join } from 'node:path';
import { conformanceScenarioFiles, repositoryRoot } from '#lumen/testing';
import { ReferenceEvaluator } from '#lumen/policy';
import {
  probeExpectations,
  scenario,
  settle,
  upLab,
  type ProbeResult,
  type TestLab,
} from './support.js';

/**
 * Probe truth: in the lab, real nmap in the source pod's network namespace sees exactly
 * what the policies say, for every expectation of every conformance scenario. With the
 * enforcer rejecting instead of dropping, what nmap reports (state and reason) is
 * recorded here, so the prober can tell a reject from a closed port.
 */
const tierScenarios = ['tenant-isolation-cnp.yaml', 'tenant-isolation-anp.yaml'].map((f) =>
  join(repositoryRoot, 'examples', 'tiers', f),
);

describe.each(
  [...conformanceScenarioFiles(), ...tierScenarios].map((file) => [basename(file, '.yaml'), file]),
)('probe truth: %s', (name, file) => {
  const cluster = scenario(file);
  let lab: TestLab | undefined;

  afterAll(async () => {
    await lab?.down();
  });

  it('observes every expectation as the policies say, with no fault', async () => {
    lab = await upLab(`truth-${name.slice(0, 2)}${name.length}`, file);
    const answers = await probeExpectations(lab.status, cluster);
    const observed = cluster.expectations.map((row) => ({
      ...row,
      observed: answers.get(row)?.reachability,
      nmap: `${answers.get(row)?.state} (${answers.get(row)?.reason})`,
    }));
    expect(observed.map((r) => ({ ...r, observed: r.observed }))).toEqual(
      cluster.expectations.map((row) =>
        expect.objectContaining({ ...row, observed: row.allowed ? 'reachable' : 'blocked' }),
      ),
    );
  });

  it('with reject-instead-of-drop, records what nmap reports for each kind of denial', async () => {
    await lab!.client.send('POST', '/lab/v1/faults', { fault: 'reject-instead-of-drop' });
    await settle(lab!);
    const answers = await probeExpectations(lab!.status, cluster);
    const reference = new ReferenceEvaluator(cluster.cluster);
    for (const row of cluster.expectations) {
      const answer = answers.get(row)!;
      const { egress } = reference.verdict(row).explanation;
      // What nmap reports, by where the connection is denied:
      // - allowed: open (syn-ack / udp-response), or closed where nothing listens;
      // - denied at the destination (ingress): the reject reaches the prober on the wire,
      //   TCP closed (reset) and UDP closed (port-unreach), which looks like a closed port;
      // - denied at the source (egress): the kernel delivers its own reject over lo, which a
      //   SYN/UDP scan listening on eth0 never sees: TCP filtered, UDP open|filtered (no-response).
      const destination = cluster.cluster.pods.find(
        (p) => p.namespace === row.to.namespace && p.name === row.to.name,
      );
      const listener =
        destination?.ports.some((p) => p.port === row.port && p.protocol === row.protocol) ?? false;
      const expected = row.allowed
        ? { state: listener ? 'open' : 'closed' }
        : !egress.allowed
          ? {
              state: row.protocol === 'TCP' ? 'filtered' : 'open|filtered',
              reason: 'no-response',
            }
          : { state: 'closed', reason: row.protocol === 'TCP' ? 'reset' : 'port-unreach' };
      expect({ row, ...pick(answer, Object.keys(expected)) }).toEqual({ row, ...expected });
      // Either way the verdict model, knowing the listener, calls it blocked.
      expect(answer.reachability).toBe(row.allowed ? 'reachable' : 'blocked');
    }
  });
});

function pick(answer: ProbeResult, keys: string[]): Record<string, string> {
  return Object.fromEntries(
    keys.map((k) => [k, (answer as unknown as Record<string, string>)[k] ?? '']),
  );
}
