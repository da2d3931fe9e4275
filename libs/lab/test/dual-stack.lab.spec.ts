/**
 * Dual-stack pods in the lab (issue 19): a scenario's `ips: [v4, v6]` gives a pod both
 * addresses (status.podIPs), the enforcer judges each family on its own view of the
 * cluster (ipBlocks per family), and the ignore-ipv6 fault enforces IPv4 only. Probed
 * with real nmap from the pods' network namespaces.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { repositoryRoot } from '#lumen/testing';
import { podOf, probeFrom, scenario, settle, upLab, type TestLab } from './support.js';

const file = join(repositoryRoot, 'examples', 'dual-stack', 'ipblock-per-family.yaml');
const dual = scenario(file);
let lab: TestLab | undefined;

beforeAll(async () => {
  lab = await upLab('dual-stack', file);
});
afterAll(async () => {
  await lab?.down();
});

/** Every row of every family, probed over its family: `from->to:port v<family> reachability`. */
async function probeEveryFamily(): Promise<string[]> {
  const status = await settle(lab!);
  const lines: string[] = [];
  for (const view of dual.families)
    for (const row of view.expectations) {
      const [result] = await probeFrom(status, dual.cluster, row.from, [
        { to: row.to, port: row.port, protocol: row.protocol, family: view.family },
      ]);
      lines.push(
        `${row.from.name}->${row.to.name}:${row.port} v${view.family} ${result?.reachability}`,
      );
    }
  return lines.sort();
}

describe('dual-stack pods in the lab', () => {
  it('gives a pod both of its addresses, primary first, in its status and its network namespace', async () => {
    const status = await settle(lab!);
    expect(podOf(status, { namespace: 'default', name: 'web' }).ips).toEqual([
      '10.10.1.2',
      'fd00:10::2',
    ]);
    const pod = await lab!.client.send<{ status: { podIP: string; podIPs: { ip: string }[] } }>(
      'GET',
      '/api/v1/namespaces/default/pods/web',
    );
    expect(pod.status.podIP).toBe('10.10.1.2');
    expect(pod.status.podIPs).toEqual([{ ip: '10.10.1.2' }, { ip: 'fd00:10::2' }]);
  });

  it('enforces each family on its own, ipBlocks per family, as the scenario says', async () => {
    expect(dual.families.map((f) => f.family)).toEqual([4, 6]);
    expect(await probeEveryFamily()).toEqual(
      [
        'client->web:80 v4 reachable',
        'client->web:80 v6 blocked',
        'client->api:8080 v4 reachable',
        'client->api:8080 v6 reachable',
        'web->api:8080 v4 blocked',
        'web->api:8080 v6 blocked',
      ].sort(),
    );
  });

  it('with ignore-ipv6, leaves every IPv6 connection open and IPv4 enforced', async () => {
    await lab!.client.send('POST', '/lab/v1/faults', { fault: 'ignore-ipv6' });
    try {
      expect(await probeEveryFamily()).toEqual(
        [
          'client->web:80 v4 reachable',
          'client->web:80 v6 reachable',
          'client->api:8080 v4 reachable',
          'client->api:8080 v6 reachable',
          'web->api:8080 v4 blocked',
          'web->api:8080 v6 reachable',
        ].sort(),
      );
    } finally {
      await lab!.client.send('DELETE', '/lab/v1/faults/ignore-ipv6');
    }
  });
});
