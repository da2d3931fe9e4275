import { afterEach, describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { ReferenceEvaluator, type Cluster, type Connection } from '#lumen/policy';
import { TEST_LAB_ROOT, conformanceScenarioFiles, repositoryRoot } from '#lumen/testing';
import { runChecked } from '#lumen/host';
import { faultedEvaluator, parseFault, type LabStatus } from '../src/index.js';
import { podOf, probeFrom, scenario, settle, upLab, type TestLab } from './support.js';

/** The repository's own scenarios of the cluster-scoped tiers. */
const tierScenarios = ['tenant-isolation-cnp.yaml', 'tenant-isolation-anp.yaml'].map((f) =>
  join(repositoryRoot, 'examples', 'tiers', f),
);

const file = (suffix: string): string => {
  const found = [...conformanceScenarioFiles(), ...tierScenarios].find((f) => f.endsWith(suffix));
  if (!found) throw new Error(`no conformance scenario ${suffix}`);
  return found;
};

/** Every pod to every pod on every port the destination declares. */
function matrix(cluster: Cluster): Connection[] {
  return cluster.pods.flatMap((from) =>
    cluster.pods.flatMap((to) =>
      to.ports
        .filter((p) => p.protocol !== 'SCTP')
        .map((p) => ({ from, to, port: p.port, protocol: p.protocol })),
    ),
  );
}

const key = (c: Connection): string =>
  `${c.from.namespace}/${c.from.name} -> ${c.to.namespace}/${c.to.name} ${c.port}/${c.protocol}`;

/** What the lab lets through, probed for real, as "key: reachable|blocked". */
async function observedMatrix(status: LabStatus, cluster: Cluster): Promise<Map<string, string>> {
  const connections = matrix(cluster);
  const bySource = new Map<string, Connection[]>();
  for (const c of connections)
    bySource.set(`${c.from.namespace}/${c.from.name}`, [
      ...(bySource.get(`${c.from.namespace}/${c.from.name}`) ?? []),
      c,
    ]);
  const observed = new Map<string, string>();
  await Promise.all(
    [...bySource.values()].map(async (group) => {
      const results = await probeFrom(status, cluster, group[0]!.from, group);
      for (const r of results)
        observed.set(
          key({ from: r.from, to: r.to, port: r.port, protocol: r.protocol }),
          r.reachability,
        );
    }),
  );
  return observed;
}

function expectedMatrix(
  cluster: Cluster,
  evaluator: ReferenceEvaluator = new ReferenceEvaluator(cluster),
): Map<string, string> {
  return new Map(
    matrix(cluster).map((c) => [key(c), evaluator.verdict(c).allowed ? 'reachable' : 'blocked']),
  );
}

let lab: TestLab | undefined;
afterEach(async () => {
  await lab?.down();
  lab = undefined;
});

describe('semantic faults change exactly the connections their semantics say', () => {
  it.each([
    ['and-as-or', '07-allow-traffic-from-some-pods-in-another-namespace.yaml'],
    ['and-in-own-namespace', '07-allow-traffic-from-some-pods-in-another-namespace.yaml'],
    ['ignore-egress', '11-deny-egress-traffic-from-an-application.yaml'],
    ['ignore-named-ports', '09b-allow-traffic-to-a-named-port.yaml'],
    ['ignore-endport', 'endport-range.yaml'],
    ['ignore-ipblock-pods', 'ipblock-except.yaml'],
    ['pass-as-accept', 'tenant-isolation-cnp.yaml'],
    ['ignore-admin-tier', 'tenant-isolation-cnp.yaml'],
    ['priority-reversed', 'tenant-isolation-cnp.yaml'],
    ['baseline-over-networkpolicy', 'tenant-isolation-cnp.yaml'],
    ['baseline-over-networkpolicy', 'tenant-isolation-anp.yaml'],
  ])('%s (on %s)', async (mode, scenarioFile) => {
    const { cluster } = scenario(file(scenarioFile));
    const healthy = expectedMatrix(cluster);
    const broken = expectedMatrix(cluster, faultedEvaluator(cluster, [parseFault(mode)]));
    const shouldChange = [...broken].filter(([k, v]) => healthy.get(k) !== v).map(([k]) => k);
    expect(shouldChange.length).toBeGreaterThan(0);

    lab = await upLab(`fault-${mode.slice(0, 10)}`, file(scenarioFile));
    expect(Object.fromEntries(await observedMatrix(lab.status, cluster))).toEqual(
      Object.fromEntries(healthy),
    );
    await lab.client.send('POST', '/lab/v1/faults', { fault: mode });
    const status = await settle(lab);
    expect(status.faults).toEqual([mode]);
    const observed = await observedMatrix(status, cluster);
    expect(Object.fromEntries(observed)).toEqual(Object.fromEntries(broken));
    const changed = [...observed].filter(([k, v]) => healthy.get(k) !== v).map(([k]) => k);
    expect(changed.sort()).toEqual(shouldChange.sort());

    await lab.client.send('DELETE', `/lab/v1/faults/${mode}`);
    expect(Object.fromEntries(await observedMatrix(await settle(lab), cluster))).toEqual(
      Object.fromEntries(healthy),
    );
  });
});

describe('faults in time and chance', () => {
  const denyAll = file('01-deny-all-traffic-to-an-application.yaml');
  const denied = {
    from: { namespace: 'default', name: 'client' },
    to: { namespace: 'default', name: 'web' },
    port: 80,
    protocol: 'TCP' as const,
  };
  const allowed = {
    from: { namespace: 'default', name: 'web' },
    to: { namespace: 'default', name: 'client' },
    port: 80,
    protocol: 'TCP' as const,
  };

  async function reachable(
    status: LabStatus,
    connection: typeof denied,
    retries = 1,
  ): Promise<boolean> {
    const source = podOf(status, connection.from);
    const target = podOf(status, connection.to);
    const { stdout } = await runChecked('nsenter', [
      `--net=${source.netns}`,
      'nmap',
      '-sS',
      '-Pn',
      '-n',
      '--max-retries',
      String(retries),
      '--max-rtt-timeout',
      '200ms',
      '-p',
      String(connection.port),
      '-oG',
      '-',
      target.ip,
    ]);
    return /\/open\//.test(stdout);
  }

  it('delay=2: a new deny-all policy takes effect about two seconds late', async () => {
    lab = await upLab('fault-delay', file('00-seed-access-nginx.yaml'));
    const connection = {
      from: { namespace: 'default', name: 'busybox-access' },
      to: { namespace: 'default', name: 'busybox' },
      port: 8080,
      protocol: 'TCP' as const,
    };
    expect(await reachable(lab.status, connection)).toBe(true);
    await lab.client.send('POST', '/lab/v1/faults', { fault: 'delay=2' });
    const applied = Date.now();
    await lab.client.send('POST', '/apis/networking.k8s.io/v1/namespaces/default/networkpolicies', {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'deny-all' },
      spec: { podSelector: {}, ingress: [] },
    });
    expect(await reachable(lab.status, connection)).toBe(true);
    while (await reachable(lab.status, connection)) {
      if (Date.now() - applied > 15_000) throw new Error('the delayed policy never took effect');
    }
    expect(Date.now() - applied).toBeGreaterThanOrEqual(2000);
    const status = await settle(lab);
    expect(status.enforcer.propagation.lastMs).toBeGreaterThanOrEqual(2000);
  });

  it('flaky=0.5: a denied connection sometimes gets through, an allowed one always does', async () => {
    lab = await upLab('fault-flaky', denyAll, ['flaky=0.5']);
    const outcomes = [];
    for (let i = 0; i < 16; i++) outcomes.push(await reachable(lab.status, denied, 0));
    expect(outcomes).toContain(true);
    expect(outcomes).toContain(false);
    for (let i = 0; i < 4; i++) expect(await reachable(lab.status, allowed, 0)).toBe(true);
  });

  it('forget-on-restart=3: rules vanish for three seconds, then come back', async () => {
    lab = await upLab('fault-forget', denyAll);
    expect(await reachable(lab.status, denied)).toBe(false);
    await lab.client.send('POST', '/lab/v1/faults', { fault: 'forget-on-restart=3' });
    const forgotten = Date.now();
    const deadline = Date.now() + 2000;
    let sawGap = false;
    while (!sawGap && Date.now() < deadline) sawGap = await reachable(lab.status, denied);
    expect(sawGap).toBe(true);
    while (await reachable(lab.status, denied)) {
      if (Date.now() - forgotten > 15_000) throw new Error('the rules never came back');
    }
    expect(Date.now() - forgotten).toBeGreaterThanOrEqual(3000);
  });

  it('refuses an unknown fault with the list of valid ones', async () => {
    lab = await upLab('fault-bad', denyAll);
    await expect(
      lab.client.send('POST', '/lab/v1/faults', { fault: 'ignore-everything' }),
    ).rejects.toThrow(/400 unknown fault "ignore-everything"; expected one of: and-as-or/);
    expect(join(TEST_LAB_ROOT, 'fault-bad')).toBeTruthy();
  });
});
