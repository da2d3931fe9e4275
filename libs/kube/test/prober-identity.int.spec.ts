/**
 * A prober's identity from its pod-bound ServiceAccount token (ADR 0016): TokenRequest,
 * TokenReview and the pod, over client-node against the lab's API emulator (the sanctioned
 * stand-in for a real API server).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProberAttestor } from '#lumen/access';
import { KubeProberIdentityPorts } from '#lumen/kube';
import { ApiServer, ObjectStore } from '../../lab/src/api/index.js';
import { selfSignedCertificate } from '../../lab/src/api/certificate.js';
import { renderKubeconfig } from '../../lab/src/kubeconfig.js';

const dir = mkdtempSync(join(tmpdir(), 'lumen-prober-identity-'));
const LABELS = { 'app.kubernetes.io/instance': 'lumen', 'app.kubernetes.io/component': 'prober' };
let server: ApiServer;
let config: KubeConfig;
let core: CoreV1Api;

async function runningPod(
  name: string,
  node: string,
  labels: Record<string, string> = LABELS,
): Promise<string> {
  const created = await core.createNamespacedPod({
    namespace: 'lumen',
    body: {
      metadata: { name, labels },
      spec: { nodeName: node, containers: [{ name: 'prober', image: 'lumen' }] },
    },
  });
  await core.replaceNamespacedPodStatus({
    namespace: 'lumen',
    name,
    body: { metadata: created.metadata, spec: created.spec, status: { phase: 'Running' } },
  });
  return created.metadata?.uid ?? '';
}

async function token(
  serviceAccount: string,
  pod: { name: string; uid: string } | undefined,
  audience = 'lumen-nats',
): Promise<string> {
  const answer = await core.createNamespacedServiceAccountToken({
    namespace: 'lumen',
    name: serviceAccount,
    body: {
      spec: {
        audiences: [audience],
        expirationSeconds: 3600,
        ...(pod ? { boundObjectRef: { apiVersion: 'v1', kind: 'Pod', ...pod } } : {}),
      },
    },
  });
  return answer.status?.token ?? '';
}

const attestor = (): ProberAttestor =>
  new ProberAttestor(
    {
      namespace: 'lumen',
      serviceAccount: 'lumen-prober',
      podLabels: LABELS,
      audience: 'lumen-nats',
      maxLifetimeSeconds: 3600,
    },
    new KubeProberIdentityPorts(config),
  );

beforeAll(async () => {
  const tls = await selfSignedCertificate(dir);
  server = new ApiServer({ store: new ObjectStore(), tls, token: 'identity-token' });
  const url = await server.listen();
  writeFileSync(
    join(dir, 'kubeconfig'),
    renderKubeconfig('identity', url, 'identity-token', tls.cert),
  );
  config = new KubeConfig();
  config.loadFromFile(join(dir, 'kubeconfig'));
  core = config.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: 'lumen' } } });
});

afterAll(async () => {
  await server.close();
});

describe('KubeProberIdentityPorts with ProberAttestor, over HTTP', () => {
  it('names the node of the prober pod the token is bound to, and expires with the token', async () => {
    const uid = await runningPod('lumen-prober-a', 'node-a');
    const identity = await attestor().attest(
      await token('lumen-prober', { name: 'lumen-prober-a', uid }),
    );
    expect(identity).toMatchObject({ ok: true, node: 'node-a', pod: 'lumen-prober-a' });
    const inAnHour = Math.floor(Date.now() / 1000) + 3600;
    expect(identity.ok && Math.abs(identity.expiresAt - inAnHour)).toBeLessThanOrEqual(5);
  });

  it.each([
    [
      'a token for another audience',
      async () => {
        const uid = await runningPod('lumen-prober-b', 'node-b');
        return token(
          'lumen-prober',
          { name: 'lumen-prober-b', uid },
          'https://kubernetes.default.svc',
        );
      },
      /did not authenticate the token: .*audiences is invalid/,
    ],
    ['a token bound to no pod', () => token('lumen-prober', undefined), /not bound to a pod/],
    [
      'another ServiceAccount’s token, bound to a prober pod',
      async () => {
        const uid = await runningPod('lumen-prober-c', 'node-c');
        return token('lumen-reporter', { name: 'lumen-prober-c', uid });
      },
      /belongs to system:serviceaccount:lumen:lumen-reporter/,
    ],
    [
      'the prober’s token bound to a pod that is not a prober',
      async () => {
        const uid = await runningPod('tenant-pod', 'node-a', { app: 'web' });
        return token('lumen-prober', { name: 'tenant-pod', uid });
      },
      /not a prober pod/,
    ],
    [
      'a token whose pod was deleted',
      async () => {
        const uid = await runningPod('lumen-prober-d', 'node-d');
        const bound = await token('lumen-prober', { name: 'lumen-prober-d', uid });
        await core.deleteNamespacedPod({ namespace: 'lumen', name: 'lumen-prober-d' });
        return bound;
      },
      /not found or replaced/,
    ],
    [
      'a forged token',
      () => Promise.resolve('eyJhbGciOiJIUzI1NiJ9.e30.AAAA'),
      /invalid bearer token/,
    ],
  ])('refuses %s', async (_case, make, reason) => {
    const identity = await attestor().attest(await make());
    expect(identity.ok).toBe(false);
    expect(identity.ok ? '' : identity.reason).toMatch(reason);
  });
});
