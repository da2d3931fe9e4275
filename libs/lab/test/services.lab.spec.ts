/**
 * Services in the lab (issue 19): the API emulator allocates ClusterIPs and serves
 * EndpointSlices that follow the running pods, kubectl expose and get work, and a
 * kube-proxy stand-in translates ClusterIP connections with nftables in each pod's
 * namespace, before the enforcer judges them. Probed with real nmap (a connect scan, whose
 * socket the kernel translates) from inside the source pods; then the Service-path faults.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runChecked } from '#lumen/host';
import { nmapArguments, parseNmapXml } from '#lumen/prober';
import type { ServiceExpectation } from '#lumen/scenario';
import { TEST_LAB_ROOT, eventually, layerBinary, repositoryRoot } from '#lumen/testing';
import { LabNames } from '../src/index.js';
import { podOf, probeFrom, scenario, settle, upLab, type TestLab } from './support.js';

const SEED = join(repositoryRoot, 'examples', 'services', 'seed-access-nginx-service.yaml');
const HAIRPIN = join(repositoryRoot, 'examples', 'services', 'hairpin.yaml');
/** Connections per probed row: each picks a backend at random, so every backend is tried. */
const TRIES = 6;

const labs: TestLab[] = [];
afterAll(async () => {
  for (const lab of labs) await lab.down();
});

async function kubectl(lab: TestLab, ...args: string[]): Promise<string> {
  const binary = await layerBinary('kubectl', repositoryRoot);
  const kubeconfig = new LabNames(lab.name, TEST_LAB_ROOT).kubeconfig;
  return (await promisify(execFile)(binary, ['--kubeconfig', kubeconfig, ...args])).stdout;
}

interface Slice {
  metadata: { labels: Record<string, string> };
  endpoints: { addresses: string[]; targetRef: { name: string } }[];
  ports: { name: string; port: number }[];
}

async function slicesOf(lab: TestLab, service: string): Promise<Slice[]> {
  const list = JSON.parse(
    await kubectl(
      lab,
      'get',
      'endpointslices',
      '-l',
      `kubernetes.io/service-name=${service}`,
      '-o',
      'json',
    ),
  ) as { items: Slice[] };
  return list.items;
}

/** What a connect scan from the row's source to the ClusterIP saw, TRIES times. */
async function throughService(
  lab: TestLab,
  clusterIP: string,
  row: Pick<ServiceExpectation, 'from' | 'port'>,
): Promise<string[]> {
  const status = await lab.refresh();
  const source = podOf(status, row.from);
  const seen: string[] = [];
  for (let i = 0; i < TRIES; i++) {
    const { stdout } = await runChecked(
      'nsenter',
      [
        `--net=${source.netns}`,
        'nmap',
        ...nmapArguments({ targets: [clusterIP], ports: { TCP: [row.port] }, tcpScan: 'connect' }),
      ],
      { timeoutMs: 60_000 },
    );
    const found = parseNmapXml(stdout).ports.find((p) => p.port === row.port);
    seen.push(found?.state === 'open' ? 'reachable' : 'blocked');
  }
  return [...new Set(seen)];
}

describe('Services in the lab', () => {
  let seed: TestLab;
  let hairpin: TestLab;

  it('allocates and keeps ClusterIPs, and keeps EndpointSlices in step with the ready pods', async () => {
    seed = await upLab('svc-seed', SEED);
    labs.push(seed);
    const service = JSON.parse(await kubectl(seed, 'get', 'svc', 'nginx', '-o', 'json')) as {
      spec: { clusterIP: string; clusterIPs: string[] };
    };
    expect(service.spec).toMatchObject({ clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10'] });
    await eventually(async () => (await slicesOf(seed, 'nginx')).length === 1, 'the nginx slice');
    const [slice] = await slicesOf(seed, 'nginx');
    // The named target port resolved to each pod's containerPort "http".
    expect(slice?.ports).toEqual([{ name: 'http', port: 80, protocol: 'TCP' }]);
    const ips = Object.fromEntries(seed.status.pods.map((p) => [p.name, p.ip]));
    expect(slice?.endpoints.map((e) => [e.targetRef.name, e.addresses[0]]).sort()).toEqual([
      ['nginx-1', ips['nginx-1']],
      ['nginx-2', ips['nginx-2']],
    ]);
    // kubectl expose: a Service whose ClusterIP the API server allocates.
    await kubectl(
      seed,
      'expose',
      'pod',
      'nginx-2',
      '--name',
      'web',
      '--port',
      '8080',
      '--target-port',
      '80',
    );
    const exposed = JSON.parse(await kubectl(seed, 'get', 'svc', 'web', '-o', 'json')) as {
      spec: { clusterIP: string; selector: Record<string, string> };
    };
    expect(exposed.spec.selector).toEqual({ run: 'nginx' });
    expect(exposed.spec.clusterIP).toMatch(/^10\.96\.\d+\.\d+$/);
    expect(exposed.spec.clusterIP).not.toBe('10.96.0.10');
    await eventually(
      async () => (await slicesOf(seed, 'web'))[0]?.endpoints.length === 2,
      'the exposed Service’s slice with both nginx pods',
    );
    expect(await kubectl(seed, 'get', 'svc,endpointslices')).toContain('web');
    await kubectl(seed, 'delete', 'svc', 'web');
    await eventually(async () => (await slicesOf(seed, 'web')).length === 0, 'its slice gone');
  });

  it('reaches backends through the ClusterIP exactly as the policies say, judged after the translation', async () => {
    await settle(seed);
    const { serviceExpectations, expectations, cluster } = scenario(SEED);
    for (const row of serviceExpectations)
      expect([row, await throughService(seed, '10.96.0.10', row)]).toEqual([
        row,
        [row.allowed ? 'reachable' : 'blocked'],
      ]);
    // The pod-to-pod rows hold too.
    for (const row of expectations) {
      const [result] = await probeFrom(await seed.refresh(), cluster, row.from, [row]);
      expect([row, result?.reachability]).toEqual([row, row.allowed ? 'reachable' : 'blocked']);
    }
  });

  it('service-bypass: Service traffic escapes the policies while pod-to-pod is still enforced', async () => {
    await seed.client.send('POST', '/lab/v1/faults', { fault: 'service-bypass' });
    try {
      await settle(seed);
      const denied = { from: { namespace: 'default', name: 'busybox' }, port: 80 };
      expect(await throughService(seed, '10.96.0.10', denied)).toEqual(['reachable']);
      const { cluster } = scenario(SEED);
      const [direct] = await probeFrom(await seed.refresh(), cluster, denied.from, [
        { to: { namespace: 'default', name: 'nginx-1' }, port: 80, protocol: 'TCP' },
      ]);
      expect(direct?.reachability).toBe('blocked');
    } finally {
      await seed.client.send('DELETE', '/lab/v1/faults/service-bypass');
    }
    await settle(seed);
    expect(
      await throughService(seed, '10.96.0.10', {
        from: { namespace: 'default', name: 'busybox' },
        port: 80,
      }),
    ).toEqual(['blocked']);
  });

  it('hairpin-deny: a pod cannot reach itself through its Service, but still at its own IP', async () => {
    hairpin = await upLab('svc-hairpin', HAIRPIN);
    labs.push(hairpin);
    const clusterIP = (
      JSON.parse(await kubectl(hairpin, 'get', 'svc', 'echo', '-o', 'json')) as {
        spec: { clusterIP: string };
      }
    ).spec.clusterIP;
    await eventually(async () => (await slicesOf(hairpin, 'echo')).length === 1, 'the echo slice');
    await settle(hairpin);
    const self = { from: { namespace: 'default', name: 'echo' }, port: 80 };
    const client = { from: { namespace: 'default', name: 'client' }, port: 80 };
    expect(await throughService(hairpin, clusterIP, self)).toEqual(['reachable']);
    await hairpin.client.send('POST', '/lab/v1/faults', { fault: 'hairpin-deny' });
    await settle(hairpin);
    expect(await throughService(hairpin, clusterIP, self)).toEqual(['blocked']);
    expect(await throughService(hairpin, clusterIP, client)).toEqual(['reachable']);
    const { cluster } = scenario(HAIRPIN);
    const [own] = await probeFrom(await hairpin.refresh(), cluster, self.from, [
      { to: self.from, port: 8080, protocol: 'TCP' },
    ]);
    expect(own?.reachability).toBe('reachable');
  });
});
