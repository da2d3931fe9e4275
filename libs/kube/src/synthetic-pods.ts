import { createHash } from 'node:crypto';
import { ApiException, CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';

/** A source pod Lumen creates for a near miss that no real pod covers. */
export interface SyntheticPod {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
}

const MARKER = 'lumen.dev/synthetic';
const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'lumen' };
/** A namespace Lumen makes admits only pods that meet Pod Security "restricted". */
const RESTRICTED = {
  'pod-security.kubernetes.io/enforce': 'restricted',
  'pod-security.kubernetes.io/enforce-version': 'latest',
};

function isNotFound(error: unknown): boolean {
  return error instanceof ApiException && error.code === 404;
}

/** A stable pod name for a set of labels: the same request always means the same pod. */
export function syntheticPodName(labels: Readonly<Record<string, string>>): string {
  const sorted = Object.fromEntries(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
  return `lumen-src-${createHash('sha256').update(JSON.stringify(sorted)).digest('hex').slice(0, 12)}`;
}

/**
 * Lumen's synthetic source pods, behind a small port: created in their own namespace with
 * labels that mark them, kept while wanted, deleted when not, all removed on request. Only
 * pods carrying the marker label are ever touched.
 */
export class SyntheticPods {
  private readonly core: CoreV1Api;

  constructor(
    config: KubeConfig,
    private readonly image: string,
  ) {
    this.core = config.makeApiClient(CoreV1Api);
  }

  /** Makes the marked pods of each namespace exactly the wanted ones. Returns what it created and deleted. */
  async reconcile(
    namespace: string,
    wanted: readonly SyntheticPod[],
  ): Promise<{ created: string[]; deleted: string[] }> {
    if (wanted.length > 0) await this.ensureNamespace(namespace);
    const existing = await this.list(namespace);
    const byName = new Map(wanted.map((w) => [syntheticPodName(w.labels), w]));
    const created: string[] = [];
    const deleted: string[] = [];
    for (const [name, pod] of byName) {
      if (existing.has(name)) continue;
      await this.core.createNamespacedPod({ namespace, body: this.podSpec(namespace, name, pod) });
      created.push(name);
    }
    for (const name of existing) {
      if (byName.has(name)) continue;
      await this.deletePod(namespace, name);
      deleted.push(name);
    }
    return { created, deleted };
  }

  /** Deletes every marked pod, then the namespace if Lumen made it (not one Helm made). */
  async removeAll(namespace: string): Promise<void> {
    for (const name of await this.list(namespace)) await this.deletePod(namespace, name);
    try {
      const labels = (await this.core.readNamespace({ name: namespace })).metadata?.labels ?? {};
      if (
        labels[MARKER] === 'true' &&
        labels['app.kubernetes.io/managed-by'] === MANAGED_BY['app.kubernetes.io/managed-by']
      )
        await this.core.deleteNamespace({ name: namespace });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  private async list(namespace: string): Promise<Set<string>> {
    try {
      const pods = await this.core.listNamespacedPod({
        namespace,
        labelSelector: `${MARKER}=true`,
      });
      return new Set(pods.items.flatMap((p) => (p.metadata?.name ? [p.metadata.name] : [])));
    } catch (error) {
      if (isNotFound(error)) return new Set();
      throw error;
    }
  }

  private async deletePod(namespace: string, name: string): Promise<void> {
    try {
      await this.core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  private async ensureNamespace(namespace: string): Promise<void> {
    try {
      await this.core.readNamespace({ name: namespace });
    } catch (error) {
      if (!isNotFound(error)) throw error;
      await this.core.createNamespace({
        body: {
          metadata: { name: namespace, labels: { [MARKER]: 'true', ...MANAGED_BY, ...RESTRICTED } },
        },
      });
    }
  }

  private podSpec(namespace: string, name: string, pod: SyntheticPod): V1Pod {
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace, labels: { ...pod.labels, [MARKER]: 'true' } },
      // Fixed but for the labels: what Pod Security "restricted" admits, nothing mounted,
      // no token, no host anything.
      spec: {
        automountServiceAccountToken: false,
        terminationGracePeriodSeconds: 0,
        enableServiceLinks: false,
        securityContext: {
          runAsNonRoot: true,
          runAsUser: 65534,
          runAsGroup: 65534,
          seccompProfile: { type: 'RuntimeDefault' },
        },
        containers: [
          {
            name: 'source',
            image: this.image,
            securityContext: {
              allowPrivilegeEscalation: false,
              readOnlyRootFilesystem: true,
              runAsNonRoot: true,
              runAsUser: 65534,
              capabilities: { drop: ['ALL'] },
              seccompProfile: { type: 'RuntimeDefault' },
            },
            resources: { requests: { cpu: '1m', memory: '4Mi' }, limits: { memory: '16Mi' } },
          },
        ],
      },
    };
  }
}
