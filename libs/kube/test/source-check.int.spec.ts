/**
 * The prober's check of a batch's source pod, against the lab's API emulator (the
 * sanctioned stand-in for a real API server) over client-node.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiSourceCheck } from '#lumen/kube';
import { ApiServer, ObjectStore } from '../../lab/src/api/index.js';
import { selfSignedCertificate } from '../../lab/src/api/certificate.js';
import { renderKubeconfig } from '../../lab/src/kubeconfig.js';

const dir = mkdtempSync(join(tmpdir(), 'lumen-source-check-'));
let server: ApiServer;
let config: KubeConfig;
let core: CoreV1Api;
const uids: Record<string, string> = {};

async function pod(namespace: string, name: string, spec: Partial<V1Pod['spec']>): Promise<void> {
  const created = await core.createNamespacedPod({
    namespace,
    body: { metadata: { name }, spec: { containers: [{ name: 'c', image: 'x' }], ...spec } },
  });
  uids[`${namespace}/${name}`] = created.metadata?.uid ?? '';
}

beforeAll(async () => {
  const tls = await selfSignedCertificate(dir);
  server = new ApiServer({ store: new ObjectStore(), tls, token: 'check-token' });
  const url = await server.listen();
  writeFileSync(join(dir, 'kubeconfig'), renderKubeconfig('check', url, 'check-token', tls.cert));
  config = new KubeConfig();
  config.loadFromFile(join(dir, 'kubeconfig'));
  core = config.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'tenant' } } });
  await core.createNamespace({
    body: { metadata: { name: 'quiet', labels: { 'lumen.dev/ignore': 'true' } } },
  });
  await pod('tenant', 'client', { nodeName: 'node-a' });
  await pod('tenant', 'elsewhere', { nodeName: 'node-b' });
  await pod('tenant', 'host', { nodeName: 'node-a', hostNetwork: true });
  await pod('quiet', 'client', { nodeName: 'node-a' });
});

afterAll(async () => {
  await server.close();
});

describe('ApiSourceCheck', () => {
  const check = (): ApiSourceCheck =>
    new ApiSourceCheck(config, { node: 'node-a', optOutLabel: 'lumen.dev/ignore' });
  const source = (key: string, uid = uids[key] ?? '') => {
    const [namespace = '', name = ''] = key.split('/');
    return { namespace, name, uid };
  };

  it('lets the batch’s own pod, on this node, be entered', async () => {
    expect(await check().refusal(source('tenant/client'))).toBeUndefined();
  });

  it.each([
    [
      'another pod’s UID',
      () => source('tenant/client', uids['tenant/elsewhere']),
      /has UID .*, not the batch's/,
    ],
    ['a pod on another node', () => source('tenant/elsewhere'), /runs on node-b, not on node-a/],
    ['a hostNetwork pod', () => source('tenant/host'), /uses the host's network/],
    [
      'a pod that does not exist',
      () => source('tenant/ghost', 'u-1'),
      /tenant\/ghost does not exist/,
    ],
    [
      'a pod of an opted-out namespace',
      () => source('quiet/client'),
      /namespace quiet opted out \(lumen.dev\/ignore=true\)/,
    ],
  ])('refuses %s', async (_what, named, reason) => {
    expect(await check().refusal(named())).toMatch(reason);
  });

  it('fails loudly when the API cannot answer, rather than let the pod in', async () => {
    const broken = new KubeConfig();
    broken.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const unreachable = new ApiSourceCheck(broken, {
      node: 'node-a',
      optOutLabel: 'lumen.dev/ignore',
    });
    await expect(unreachable.refusal(source('tenant/client'))).rejects.toThrow();
  });
});
