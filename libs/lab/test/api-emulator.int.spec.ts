import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { execFile, spawn } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ApiServer, ObjectStore } from '../src/api/index.js';
import { selfSignedCertificate } from '../src/api/certificate.js';
import { renderKubeconfig } from '../src/kubeconfig.js';
import { layerBinary, repositoryRoot, eventually } from '#lumen/testing';

const store = new ObjectStore({ historyLimit: 50 });
const dir = mkdtempSync(join(tmpdir(), 'lumen-api-'));
let server: ApiServer;
let certificate = '';
const kubeconfigPath = join(dir, 'kubeconfig');
let url = '';
let kc: k8s.KubeConfig;
let core: k8s.CoreV1Api;
let networking: k8s.NetworkingV1Api;

function pod(name: string, labels: Record<string, string> = {}): k8s.V1Pod {
  return { metadata: { name, labels }, spec: { containers: [{ name: 'main', image: 'lab' }] } };
}

async function statusOf(
  promise: Promise<unknown>,
): Promise<{ code: number; body: Record<string, unknown> }> {
  try {
    await promise;
  } catch (error) {
    const e = error as { code: number; body: string };
    return { code: e.code, body: JSON.parse(e.body) as Record<string, unknown> };
  }
  throw new Error('expected the call to fail');
}

/**
 * One raw HTTPS request to the emulator, trusting its certificate. Resolves with the
 * status and the first `lines` lines of the body (a watch streams forever).
 */
function request(
  path: string,
  options: { token?: string; lines?: number } = {},
): Promise<{ status: number; lines: string[] }> {
  return new Promise((resolve, reject) => {
    const headers = options.token ? { authorization: `Bearer ${options.token}` } : {};
    const req = httpsRequest(`${url}${path}`, { ca: certificate, headers }, (response) => {
      let text = '';
      const finish = (): void => {
        req.destroy();
        resolve({ status: response.statusCode ?? 0, lines: text.split('\n').filter(Boolean) });
      };
      response.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (options.lines !== undefined && text.split('\n').filter(Boolean).length >= options.lines)
          finish();
      });
      response.on('end', finish);
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  const tls = await selfSignedCertificate(dir);
  certificate = tls.cert;
  server = new ApiServer({ store, tls, token: 'secret-token', bookmarkIntervalMs: 200 });
  url = await server.listen();
  writeFileSync(kubeconfigPath, renderKubeconfig('test', url, 'secret-token', tls.cert));
  kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  core = kc.makeApiClient(k8s.CoreV1Api);
  networking = kc.makeApiClient(k8s.NetworkingV1Api);
  await core.createNamespace({ body: { metadata: { name: 'default' } } });
});

afterAll(async () => {
  await server.close();
});

describe('the API emulator with @kubernetes/client-node', () => {
  it('creates, reads, updates and deletes with real status codes', async () => {
    const created = await core.createNamespacedPod({
      namespace: 'default',
      body: pod('web', { app: 'web' }),
    });
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.status?.phase).toBe('Pending');
    const conflict = await statusOf(
      core.createNamespacedPod({ namespace: 'default', body: pod('web') }),
    );
    expect(conflict.code).toBe(409);
    expect(conflict.body).toMatchObject({ kind: 'Status', reason: 'AlreadyExists', code: 409 });
    const missing = await statusOf(core.readNamespacedPod({ namespace: 'default', name: 'nope' }));
    expect(missing).toMatchObject({
      code: 404,
      body: { reason: 'NotFound', message: 'pods "nope" not found' },
    });
    const stale = await statusOf(
      core.replaceNamespacedPod({
        namespace: 'default',
        name: 'web',
        body: {
          metadata: { name: 'web', resourceVersion: '1' },
          spec: { containers: [{ name: 'main' }] },
        },
      }),
    );
    expect(stale).toMatchObject({ code: 409, body: { reason: 'Conflict' } });
    const noNamespace = await statusOf(
      core.createNamespacedPod({ namespace: 'ghost', body: pod('a') }),
    );
    expect(noNamespace.code).toBe(404);
    const patched = await core.patchNamespacedPod(
      { namespace: 'default', name: 'web', body: { metadata: { labels: { tier: 'fe' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    expect(patched.metadata?.labels).toEqual({ app: 'web', tier: 'fe' });
    await core.deleteNamespacedPod({ namespace: 'default', name: 'web' });
    expect(
      (await statusOf(core.readNamespacedPod({ namespace: 'default', name: 'web' }))).code,
    ).toBe(404);
  });

  it('stores a Secret’s stringData as base64 data, and deletes what an object owns with it', async () => {
    const secret = await core.createNamespacedSecret({
      namespace: 'default',
      body: { metadata: { name: 'run-nats' }, stringData: { password: 'pa$$' } },
    });
    expect(secret.data).toEqual({ password: Buffer.from('pa$$').toString('base64') });
    expect(secret.stringData).toBeUndefined();
    const apps = kc.makeApiClient(k8s.AppsV1Api);
    await apps.createNamespacedDaemonSet({
      namespace: 'default',
      body: {
        metadata: {
          name: 'run-prober',
          ownerReferences: [
            { apiVersion: 'v1', kind: 'Secret', name: 'run-nats', uid: secret.metadata?.uid ?? '' },
          ],
        },
        spec: {
          selector: { matchLabels: { run: 'x' } },
          template: {
            metadata: { labels: { run: 'x' } },
            spec: { containers: [{ name: 'p', image: 'lab' }] },
          },
        },
      },
    });
    await core.deleteNamespacedSecret({ namespace: 'default', name: 'run-nats' });
    const gone = await statusOf(
      apps.readNamespacedDaemonSet({ namespace: 'default', name: 'run-prober' }),
    );
    expect(gone.code).toBe(404);
  });

  it('rejects an invalid NetworkPolicy with 422 and the field at fault', async () => {
    const invalid = await statusOf(
      networking.createNamespacedNetworkPolicy({
        namespace: 'default',
        body: {
          metadata: { name: 'bad' },
          spec: { podSelector: {}, ingress: [{ ports: [{ port: 80, endPort: 10 }] }] },
        },
      }),
    );
    expect(invalid.code).toBe(422);
    expect(invalid.body).toMatchObject({
      reason: 'Invalid',
      details: { causes: [{ field: 'spec.ingress[0].ports[0].endPort' }] },
    });
  });

  it('filters lists by label and field selectors', async () => {
    for (const [name, app] of [
      ['a', 'web'],
      ['b', 'db'],
      ['c', 'web'],
    ] as const) {
      await core.createNamespacedPod({ namespace: 'default', body: pod(name, { app }) });
    }
    const names = async (query: {
      labelSelector?: string;
      fieldSelector?: string;
    }): Promise<string[]> =>
      (await core.listNamespacedPod({ namespace: 'default', ...query })).items.map(
        (p) => p.metadata?.name ?? '',
      );
    expect(await names({ labelSelector: 'app=web' })).toEqual(['a', 'c']);
    expect(await names({ labelSelector: 'app in (db,cache)' })).toEqual(['b']);
    expect(await names({ labelSelector: 'app!=web' })).toEqual(['b']);
    expect(await names({ labelSelector: '!app' })).toEqual([]);
    expect(await names({ fieldSelector: 'metadata.name=c' })).toEqual(['c']);
    expect(await names({ fieldSelector: 'spec.nodeName=' })).toEqual(['a', 'b', 'c']);
    const bad = await statusOf(
      core.listNamespacedPod({ namespace: 'default', fieldSelector: 'spec.bogus=1' }),
    );
    expect(bad).toMatchObject({ code: 400, body: { reason: 'BadRequest' } });
    for (const name of ['a', 'b', 'c'])
      await core.deleteNamespacedPod({ namespace: 'default', name });
  });

  it('refuses requests without the bearer token', async () => {
    const response = await request('/api/v1/pods');
    expect(response.status).toBe(401);
    expect(JSON.parse(response.lines[0]!)).toMatchObject({
      kind: 'Status',
      reason: 'Unauthorized',
      code: 401,
    });
  });

  it('feeds an informer through list, watch and a relist after 410 Gone', async () => {
    let lists = 0;
    const informer = k8s.makeInformer(kc, '/api/v1/namespaces/default/pods', () => {
      lists += 1;
      return core.listNamespacedPod({ namespace: 'default' });
    });
    const seen: string[] = [];
    let connects = 0;
    informer.on('add', (p) => seen.push(`add ${p.metadata?.name ?? ''}`));
    informer.on('update', (p) =>
      seen.push(`update ${p.metadata?.name ?? ''} ${JSON.stringify(p.metadata?.labels)}`),
    );
    informer.on('delete', (p) => seen.push(`delete ${p.metadata?.name ?? ''}`));
    informer.on('connect', () => (connects += 1));
    await core.createNamespacedPod({ namespace: 'default', body: pod('before') });
    await informer.start();
    await eventually(() => seen.includes('add before'), 'the initial list');
    await core.createNamespacedPod({ namespace: 'default', body: pod('live') });
    await core.patchNamespacedPod(
      { namespace: 'default', name: 'live', body: { metadata: { labels: { v: '2' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await eventually(() => seen.includes('update live {"v":"2"}'), 'watch events');

    // Other objects move the resourceVersion on, compaction forgets the history, and the
    // connection drops: the informer resumes from an expired resourceVersion, gets
    // 410 Gone, and relists.
    expect(lists).toBe(1);
    await core.createNamespace({ body: { metadata: { name: 'unrelated' } } });
    store.compact();
    server.dropWatches();
    await eventually(() => lists === 2, 'the relist after 410', 10_000);
    await core.deleteNamespacedPod({ namespace: 'default', name: 'before' });
    await eventually(() => seen.includes('delete before'), 'events after the relist');
    expect(informer.list().map((p) => p.metadata?.name)).toEqual(['live']);
    await informer.stop();
    await core.deleteNamespace({ name: 'unrelated' });
    await core.deleteNamespacedPod({ namespace: 'default', name: 'live' });
  });

  it('sends 410 Gone as a watch ERROR event, and bookmarks when asked', async () => {
    store.compact();
    const gone = await request('/api/v1/pods?watch=true&resourceVersion=1', {
      token: 'secret-token',
    });
    expect(gone.lines.map((l) => JSON.parse(l) as unknown)).toEqual([
      {
        type: 'ERROR',
        object: expect.objectContaining({ kind: 'Status', code: 410, reason: 'Expired' }),
      },
    ]);
    const version = store.resourceVersion;
    const bookmarks = await request(
      `/api/v1/namespaces?watch=true&allowWatchBookmarks=true&resourceVersion=${version}`,
      {
        token: 'secret-token',
        lines: 1,
      },
    );
    expect(JSON.parse(bookmarks.lines[0]!)).toMatchObject({
      type: 'BOOKMARK',
      object: { metadata: { resourceVersion: String(version) } },
    });
  });
});

describe('the API emulator serves the cluster-scoped policy tiers', () => {
  const cnp = (name: string, priority: number) => ({
    apiVersion: 'policy.networking.k8s.io/v1alpha2',
    kind: 'ClusterNetworkPolicy',
    metadata: { name },
    spec: {
      tier: 'Admin',
      priority,
      subject: { namespaces: {} },
      ingress: [{ action: 'Deny', from: [{ namespaces: {} }] }],
    },
  });

  it('lists both versions of policy.networking.k8s.io in discovery', async () => {
    const apis = await kc.makeApiClient(k8s.ApisApi).getAPIVersions();
    const group = apis.groups.find((g) => g.name === 'policy.networking.k8s.io');
    expect(group?.versions.map((v) => v.version)).toEqual(['v1alpha2', 'v1alpha1']);
    expect(group?.preferredVersion?.version).toBe('v1alpha2');
  });

  it('creates, lists and deletes ClusterNetworkPolicies as custom objects, and refuses an invalid one with 422', async () => {
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const where = {
      group: 'policy.networking.k8s.io',
      version: 'v1alpha2',
      plural: 'clusternetworkpolicies',
    };
    await custom.createClusterCustomObject({ ...where, body: cnp('deny-all', 10) });
    const list = (await custom.listClusterCustomObject(where)) as {
      items: { metadata: { name: string } }[];
    };
    expect(list.items.map((i) => i.metadata.name)).toEqual(['deny-all']);
    const invalid = await statusOf(
      custom.createClusterCustomObject({ ...where, body: cnp('too-late', 1001) }),
    );
    expect(invalid).toMatchObject({
      code: 422,
      body: { reason: 'Invalid', details: { causes: [{ field: 'spec.priority' }] } },
    });
    await custom.deleteClusterCustomObject({ ...where, name: 'deny-all' });
    const after = (await custom.listClusterCustomObject(where)) as { items: unknown[] };
    expect(after.items).toEqual([]);
  });
});

describe('the API emulator with a real kubectl', () => {
  let kubectl = '';
  const run = async (...args: string[]): Promise<string> =>
    (await promisify(execFile)(kubectl, ['--kubeconfig', kubeconfigPath, ...args])).stdout;

  beforeAll(async () => {
    kubectl = await layerBinary('kubectl', repositoryRoot);
  });

  it('applies, gets, updates and deletes a NetworkPolicy and a Pod', async () => {
    const manifest = join(dir, 'objects.yaml');
    const policy = (port: number): string => `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-allow, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{ports: [{port: ${port}}]}]
---
apiVersion: v1
kind: Pod
metadata: {name: kubectl-pod, namespace: default, labels: {app: web}}
spec: {containers: [{name: main, image: lab}]}
`;
    writeFileSync(manifest, policy(80));
    expect(await run('apply', '-f', manifest)).toMatch(
      /networkpolicy.networking.k8s.io\/web-allow created[\s\S]*pod\/kubectl-pod created/,
    );
    writeFileSync(manifest, policy(8080));
    expect(await run('apply', '-f', manifest)).toContain(
      'networkpolicy.networking.k8s.io/web-allow configured',
    );
    expect(JSON.parse(await run('get', 'netpol', 'web-allow', '-o', 'json'))).toMatchObject({
      spec: { ingress: [{ ports: [{ port: 8080 }] }] },
    });
    expect(await run('get', 'pods')).toMatch(
      /NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\n(kubectl-pod)\s+0\/1\s+Pending/,
    );
    expect(await run('label', 'pod', 'kubectl-pod', 'tier=fe')).toContain(
      'pod/kubectl-pod labeled',
    );
    expect(await run('get', 'pods', '-l', 'tier=fe', '-o', 'name')).toBe('pod/kubectl-pod\n');
    expect(await run('delete', '-f', manifest)).toMatch(
      /web-allow" deleted[\s\S]*kubectl-pod" deleted/,
    );
    expect(await run('get', 'netpol', '-o', 'name')).toBe('');
  });

  it('applies and gets ClusterNetworkPolicies, AdminNetworkPolicies and the BaselineAdminNetworkPolicy by short name', async () => {
    const manifest = join(dir, 'tiers.yaml');
    writeFileSync(
      manifest,
      `apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: isolate}
spec:
  tier: Admin
  priority: 20
  subject: {namespaces: {}}
  ingress: [{action: Pass, from: [{namespaces: {}}]}]
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: old-style}
spec:
  priority: 5
  subject: {namespaces: {}}
  egress: [{action: Allow, to: [{networks: [10.0.0.0/8]}]}]
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  ingress: [{action: Deny, from: [{namespaces: {}}]}]
`,
    );
    expect(await run('apply', '-f', manifest)).toMatch(
      /clusternetworkpolicy.policy.networking.k8s.io\/isolate created[\s\S]*adminnetworkpolicy.policy.networking.k8s.io\/old-style created[\s\S]*baselineadminnetworkpolicy.policy.networking.k8s.io\/default created/,
    );
    expect(await run('get', 'cnp,anp,banp', '-o', 'name')).toBe(
      'clusternetworkpolicy.policy.networking.k8s.io/isolate\nadminnetworkpolicy.policy.networking.k8s.io/old-style\nbaselineadminnetworkpolicy.policy.networking.k8s.io/default\n',
    );
    expect(await run('delete', '-f', manifest)).toContain('"default" deleted');
  });

  it('streams changes with get -w', async () => {
    const watcher = spawn(kubectl, [
      '--kubeconfig',
      kubeconfigPath,
      'get',
      'namespaces',
      '-w',
      '--output-watch-events',
    ]);
    let output = '';
    watcher.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await eventually(() => output.includes('default'), 'the initial listing');
    await core.createNamespace({ body: { metadata: { name: 'watched' } } });
    await eventually(() => /ADDED\s+watched/.test(output), 'the ADDED event');
    await core.deleteNamespace({ name: 'watched' });
    await eventually(() => /DELETED\s+watched/.test(output), 'the DELETED event');
    watcher.kill();
  });
});
