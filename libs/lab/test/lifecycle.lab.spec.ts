import { afterEach, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  TEST_LAB_ROOT,
  conformanceScenarioFiles,
  labFootprint,
  layerBinary,
  repositoryRoot,
  eventually,
} from '#lumen/testing';
import { LabNames, labDown, labStatus, type LabStatus } from '../src/index.js';
import { podOf, probeFrom, scenario, upLab, type TestLab } from './support.js';

const recipe = (suffix: string): string =>
  conformanceScenarioFiles().find((f) => f.endsWith(suffix))!;
const labs: TestLab[] = [];
afterEach(async () => {
  for (const lab of labs.splice(0)) await lab.down();
});

describe('the lab acts as a kubelet', () => {
  it('starts a pod created with kubectl, reports it through the API, and tears it down on delete', async () => {
    const lab = await upLab('life-kubelet', recipe('01-deny-all-traffic-to-an-application.yaml'));
    labs.push(lab);
    const kubectl = await layerBinary('kubectl', repositoryRoot);
    const run = async (...args: string[]): Promise<string> =>
      (await promisify(execFile)(kubectl, ['--kubeconfig', lab.status.kubeconfig, ...args])).stdout;
    const manifest = join(mkdtempSync(join(tmpdir(), 'lumen-kubelet-')), 'pod.yaml');
    writeFileSync(
      manifest,
      'apiVersion: v1\nkind: Pod\nmetadata: {name: newcomer, labels: {app: web}}\nspec: {containers: [{name: c, image: x, ports: [{containerPort: 8080}]}]}\n',
    );
    expect(await run('apply', '-f', manifest)).toContain('pod/newcomer created');

    const pod = await eventually(async () => {
      const object = JSON.parse(await run('get', 'pod', 'newcomer', '-o', 'json')) as {
        status: { phase: string; podIP?: string; conditions?: { type: string; status: string }[] };
        spec: { nodeName?: string };
        metadata: { uid: string };
      };
      return object.status.phase === 'Running' ? object : undefined;
    }, 'the pod to run');
    expect(pod.status.podIP).toMatch(/^10\.244\.\d+\.\d+$/);
    expect(pod.spec.nodeName).toMatch(/^lab-node-[12]$/);
    expect(pod.status.conditions).toContainEqual(
      expect.objectContaining({ type: 'Ready', status: 'True' }),
    );
    expect(await run('get', 'pods', '-o', 'wide')).toMatch(
      /newcomer\s+1\/1\s+Running\s+0\s+\S+\s+10\.244\.\d+\.\d+\s+lab-node-/,
    );

    const status = await labStatus(lab.name, TEST_LAB_ROOT);
    const started = podOf(status, { namespace: 'default', name: 'newcomer' });
    // The pod UID is in the kubelet-shaped cgroup path of its process, as on containerd nodes.
    expect(readFileSync(`/proc/${started.pid}/cgroup`, 'utf8')).toMatch(
      new RegExp(`/kubepods/besteffort/pod${pod.metadata.uid}/[0-9a-f]{64}`),
    );
    expect(readFileSync(`/proc/${started.pid}/cmdline`, 'utf8')).toContain('sleep');
    // The new pod is selected by web-deny-all (app=web): the enforcer followed.
    const [probe] = await probeFrom(
      status,
      scenario(recipe('01-deny-all-traffic-to-an-application.yaml')).cluster,
      { namespace: 'default', name: 'client' },
      [{ to: { namespace: 'default', name: 'newcomer' }, port: 8080, protocol: 'TCP' }],
    );
    expect(probe?.state).toBe('filtered');

    expect(await run('delete', 'pod', 'newcomer')).toContain('pod "newcomer" deleted');
    await eventually(() => (existsSync(started.netns) ? undefined : true), 'the netns to go');
    await eventually(
      () => (existsSync(`/proc/${started.pid}`) ? undefined : true),
      'the sleeper to stop',
    );
  });

  it('follows a label change: relabelling a pod moves it into a policy and out again', async () => {
    const file = recipe('01-deny-all-traffic-to-an-application.yaml');
    const lab = await upLab('life-labels', file);
    labs.push(lab);
    const { cluster } = scenario(file);
    const probeClient = async (status: LabStatus): Promise<string | undefined> =>
      (
        await probeFrom(status, cluster, { namespace: 'default', name: 'web' }, [
          { to: { namespace: 'default', name: 'client' }, port: 80, protocol: 'TCP' },
        ])
      )[0]?.state;
    expect(await probeClient(lab.status)).toBe('open');
    const patch = async (labels: Record<string, string | null>): Promise<void> => {
      await lab.client.send(
        'PATCH',
        '/api/v1/namespaces/default/pods/client',
        { metadata: { labels } },
        'application/merge-patch+json',
      );
    };
    await patch({ app: 'web' });
    expect(
      await eventually(
        async () => ((await probeClient(await lab.refresh())) === 'filtered' ? true : undefined),
        'isolation after relabel',
      ),
    ).toBe(true);
    await patch({ app: null });
    expect(
      await eventually(
        async () => ((await probeClient(await lab.refresh())) === 'open' ? true : undefined),
        'the way back',
      ),
    ).toBe(true);
  });
});

describe('lab life cycle', () => {
  it('runs two labs with different names side by side, with the same pod IPs, without collision', async () => {
    const file = recipe('ipblock-except.yaml');
    const first = await upLab('life-one', file);
    labs.push(first);
    const second = await upLab('life-two', file);
    labs.push(second);
    expect(new LabNames('life-one', TEST_LAB_ROOT).netnsPrefix).not.toBe(
      new LabNames('life-two', TEST_LAB_ROOT).netnsPrefix,
    );
    expect(first.status.pods.map((p) => p.ip)).toEqual(second.status.pods.map((p) => p.ip));
    await first.down();
    labs.splice(labs.indexOf(first), 1);
    const { cluster, expectations } = scenario(file);
    const results = await probeFrom(
      await second.refresh(),
      cluster,
      expectations[0]!.from,
      expectations,
    );
    expect(results.map((r) => r.reachability)).toEqual(
      expectations.map((e) => (e.allowed ? 'reachable' : 'blocked')),
    );
  });

  it('status --json has the documented shape', async () => {
    const lab = await upLab('life-status', recipe('endport-range.yaml'), ['ignore-endport']);
    labs.push(lab);
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        join(repositoryRoot, 'bin', 'lumen.mjs'),
        'lab',
        'status',
        '--name',
        'life-status',
        '--json',
      ],
      {
        env: { ...process.env, LUMEN_LAB_ROOT: TEST_LAB_ROOT },
      },
    );
    const status = JSON.parse(stdout) as LabStatus;
    expect(status.kubeconfig).toBe(join(TEST_LAB_ROOT, 'life-status', 'kubeconfig'));
    expect(status.faults).toEqual(['ignore-endport']);
    expect(status.pods).toHaveLength(2);
    for (const pod of status.pods) {
      expect(pod).toEqual(
        expect.objectContaining({
          namespace: 'default',
          ip: expect.stringMatching(/^10\.244\./),
          node: expect.stringMatching(/^lab-node-/),
          pid: expect.any(Number),
          netns: expect.stringMatching(/^\/run\/netns\/lmn-/),
        }),
      );
      expect(existsSync(pod.netns)).toBe(true);
    }
    expect(status.enforcer.propagation.count).toBeGreaterThan(0);
  });

  it('comes down completely after the daemon is killed with SIGKILL, and down is idempotent', async () => {
    const names = new LabNames('life-crash', TEST_LAB_ROOT);
    const before = labFootprint(names);
    const lab = await upLab(
      'life-crash',
      recipe('07-allow-traffic-from-some-pods-in-another-namespace.yaml'),
    );
    const state = JSON.parse(
      readFileSync(new LabNames('life-crash', TEST_LAB_ROOT).stateFile, 'utf8'),
    ) as { daemonPid: number };
    process.kill(state.daemonPid, 'SIGKILL');
    await eventually(
      () => (existsSync(`/proc/${state.daemonPid}`) ? undefined : true),
      'the daemon to die',
    );
    const during = labFootprint(names);
    expect(during.netns.length).toBeGreaterThan(before.netns.length);
    const report = await labDown('life-crash', TEST_LAB_ROOT);
    expect(report.processes).toBeGreaterThanOrEqual(lab.status.pods.length);
    expect(labFootprint(names)).toEqual(before);
    expect(existsSync(join(TEST_LAB_ROOT, 'life-crash'))).toBe(false);
    expect(await labDown('life-crash', TEST_LAB_ROOT)).toEqual({
      processes: 0,
      netns: 0,
      cgroups: false,
      stateDir: false,
    });
  });
});
