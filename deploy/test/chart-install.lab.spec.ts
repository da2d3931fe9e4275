/**
 * `helm install` of the chart into a lab with the real helm and kubectl, through the lab's
 * API emulator (the sanctioned stand-in for an API server), with Helm 4's defaults
 * (server-side apply, waiting for hooks): every object is made, the pre-install hook Job
 * runs Lumen's issuer-key to completion and leaves the auth callout's Secret, the lab's
 * controllers make the workloads' pods and claims, the kubelet gives Lumen's containers
 * their volumes (the prober its projected, pod-bound token), and `helm uninstall` removes
 * all but the results claim, which the chart keeps. In between, NATS (the bundled
 * nats-server 2.10 with the chart's configuration) and the four services run as the lab
 * runs these images, on the host, reaching each other through the Services' pods, and the
 * first verdicts arrive.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { run } from '#lumen/host';
import { HOST_PORTS_ANNOTATION, LabNames } from '#lumen/lab';
import { TEST_LAB_ROOT, eventually, layerBinary, repositoryRoot } from '#lumen/testing';
import { upLab, type TestLab } from '../../libs/lab/test/support.js';

const LAB = 'chart-install';
const CHART = join(repositoryRoot, 'deploy', 'helm', 'lumen');
const recipe = join(
  repositoryRoot,
  'examples',
  'recipes',
  'recipe-07-allow-traffic-from-some-pods-in-another-namespace.yaml',
);
let lab: TestLab;
let helm: string;
let kubectl: string;
let kubeconfig: string;

const helmRun = (args: readonly string[]) =>
  run(helm, [...args, '--kubeconfig', kubeconfig], { timeoutMs: 180_000 });

async function kubectlJson<T>(args: readonly string[]): Promise<T> {
  const result = await run(kubectl, ['--kubeconfig', kubeconfig, ...args, '-o', 'json']);
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

/** `kind/name` of every object of these kinds in Lumen's namespace. */
async function objects(kinds: string): Promise<string[]> {
  const list = await kubectlJson<{ items: { kind: string; metadata: { name: string } }[] }>([
    '-n',
    'lumen',
    'get',
    kinds,
  ]);
  return list.items.map((o) => `${o.kind}/${o.metadata.name}`).sort();
}

const TOKEN = 'chart-install-token-0123456789';

/** The reporter's summary through its API, on the host port the lab gave its pod. */
async function reporterSummary(): Promise<
  { cases: number; undecided: number; byOutcome: Record<string, number> } | undefined
> {
  const pods = await kubectlJson<{
    items: { metadata: { name: string; annotations?: Record<string, string> } }[];
  }>(['-n', 'lumen', 'get', 'pods', '-l', 'app.kubernetes.io/component=reporter']);
  const ports = pods.items[0]?.metadata.annotations?.[HOST_PORTS_ANNOTATION];
  const port = ports ? (JSON.parse(ports) as Record<string, number>)['8084'] : undefined;
  if (!port) return undefined;
  const response = await fetch(`http://127.0.0.1:${port}/api/v1/summary`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  }).catch(() => undefined);
  if (!response?.ok) return undefined;
  return (await response.json()) as {
    cases: number;
    undecided: number;
    byOutcome: Record<string, number>;
  };
}

beforeAll(async () => {
  helm = await layerBinary('helm', repositoryRoot);
  kubectl = await layerBinary('kubectl', repositoryRoot);
  lab = await upLab(LAB, recipe);
  kubeconfig = new LabNames(LAB, TEST_LAB_ROOT).kubeconfig;
  const config = new KubeConfig();
  config.loadFromFile(kubeconfig);
  // Lumen's namespace is not probed (the chart's optOutLabel), and admits the prober.
  await config.makeApiClient(CoreV1Api).createNamespace({
    body: {
      metadata: {
        name: 'lumen',
        labels: {
          'lumen.dev/ignore': 'true',
          'pod-security.kubernetes.io/enforce': 'privileged',
        },
      },
    },
  });
}, 120_000);

afterAll(async () => {
  await lab.down();
});

describe('helm install of the chart into a lab', () => {
  it('makes every object, runs the hook Job, and helm uninstall keeps the results claim', async () => {
    const install = await helmRun([
      'install',
      'lumen',
      CHART,
      '--namespace',
      'lumen',
      '--set',
      'image.repository=lumen',
      '--set',
      'image.tag=lab',
      '--set',
      'reporter.api.tokens[0].name=lab',
      '--set',
      `reporter.api.tokens[0].token=${TOKEN}`,
      // A lab node is a few pods: a short sweep, so a second round follows the first.
      '--set',
      'planner.sweepIntervalMs=20000',
      '--timeout',
      '120s',
    ]);
    expect(`${install.code} ${install.stderr}`).toBe('0 ');
    expect(install.stdout).toContain('STATUS: deployed');

    expect(await objects('deployments,statefulsets,daemonsets,services')).toEqual([
      'DaemonSet/lumen-prober',
      'Deployment/lumen-planner',
      'Deployment/lumen-reporter',
      'Deployment/lumen-scheduler',
      'Service/lumen-nats',
      'Service/lumen-nats-headless',
      'Service/lumen-planner-metrics',
      'Service/lumen-prober-metrics',
      'Service/lumen-reporter',
      'Service/lumen-scheduler-metrics',
      'StatefulSet/lumen-nats',
    ]);
    // The hook Job ran the scheduler's issuer-key to completion, and Helm deleted it
    // (hook-succeeded); the Secret it made stays, as the chart says.
    expect(await objects('jobs')).toEqual([]);
    const callout = await kubectlJson<{ data: Record<string, string> }>([
      '-n',
      'lumen',
      'get',
      'secret',
      'lumen-nats-callout',
    ]);
    expect(Object.keys(callout.data).sort()).toEqual(['issuer', 'seed']);
    expect(Buffer.from(callout.data['issuer'] ?? '', 'base64').toString()).toMatch(
      /^A[A-Z2-7]{55}$/,
    );
    // The controllers' pods: a prober per lab node, the NATS server, the three services.
    const pods = await objects('pods');
    expect(pods.filter((p) => p.startsWith('Pod/lumen-prober-')).sort()).toEqual(
      lab.status.nodes.map((n) => `Pod/lumen-prober-${n.name}`).sort(),
    );
    expect(pods).toContain('Pod/lumen-nats-0');
    for (const service of ['planner', 'scheduler', 'reporter'])
      expect(pods.some((p) => p.startsWith(`Pod/lumen-${service}-`))).toBe(true);
    expect(await objects('persistentvolumeclaims')).toEqual([
      'PersistentVolumeClaim/data-lumen-nats-0',
      'PersistentVolumeClaim/lumen-store',
    ]);
    // Each prober got its projected token: bound to its pod, for NATS alone.
    const volumes = join(new LabNames(LAB, TEST_LAB_ROOT).stateDir, 'volumes');
    await eventually(
      () =>
        existsSync(volumes) &&
        readdirSync(volumes).filter((uid) => existsSync(join(volumes, uid, 'nats-token', 'token')))
          .length === lab.status.nodes.length,
      'a projected token for every prober',
      30_000,
      200,
    );
    const token = readdirSync(volumes)
      .map((uid) => join(volumes, uid, 'nats-token', 'token'))
      .find((file) => existsSync(file));
    const claims = JSON.parse(
      Buffer.from(readFileSync(token ?? '', 'utf8').split('.')[1] ?? '', 'base64url').toString(),
    ) as { aud: string[]; 'kubernetes.io': { pod?: { name: string } } };
    expect(claims.aud).toEqual(['lumen-nats']);
    expect(claims['kubernetes.io'].pod?.name).toMatch(/^lumen-prober-/);

    // First verdicts: NATS (Debian's nats-server 2.10, with the chart's configuration and
    // users) up, the probers admitted by the auth callout, recipe 07's cases judged.
    const summary = await eventually(
      async () => {
        const body = await reporterSummary();
        return body && body.undecided === 0 && (body.byOutcome['pass'] ?? 0) > 0 ? body : undefined;
      },
      'the first verdicts of the chart’s install',
      120_000,
      500,
    );
    expect(summary.byOutcome['fail'] ?? 0).toBe(0);
    expect(summary.cases).toBeGreaterThanOrEqual(4);

    expect((await helmRun(['status', 'lumen', '--namespace', 'lumen'])).stdout).toContain(
      'STATUS: deployed',
    );
    const uninstall = await helmRun(['uninstall', 'lumen', '--namespace', 'lumen']);
    expect(`${uninstall.code} ${uninstall.stderr}`).toBe('0 ');
    expect(uninstall.stdout).toContain('lumen-store');
    await eventually(
      async () => (await objects('pods')).length === 0,
      'every pod of the release gone',
      30_000,
      200,
    );
    expect(await objects('deployments,statefulsets,daemonsets,services')).toEqual([]);
    // The results claim outlives the release; so do the StatefulSet's, as in a cluster.
    expect(await objects('persistentvolumeclaims')).toEqual([
      'PersistentVolumeClaim/data-lumen-nats-0',
      'PersistentVolumeClaim/lumen-store',
    ]);
  }, 300_000);
});
