import { ApiError } from '../api/errors.js';
import { resourceByKind, type KubeObject } from '../api/resources.js';
import type { ObjectStore } from '../api/store.js';
import type { LabNode } from './kubelet.js';

interface DaemonSetSpec {
  readonly template?: {
    readonly metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
    readonly spec?: Record<string, unknown>;
  };
}

/**
 * The lab's DaemonSet controller: one pod per node for every DaemonSet, named
 * `<daemonset>-<node>` and owned by it; its pods go when it goes (the garbage collector's
 * part). Enough for `lumen run` to run its temporary probers in a lab.
 */
export class DaemonSetController {
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly store: ObjectStore,
    private readonly nodes: readonly LabNode[],
    private readonly log: (message: string, fields?: Record<string, unknown>) => void,
  ) {}

  start(): void {
    const dsType = resourceByKind('DaemonSet');
    if (!dsType) throw new Error('the DaemonSet resource is not served');
    this.unsubscribe = this.store.subscribe((event) => {
      if (event.resource !== dsType) return;
      try {
        if (event.type === 'DELETED') this.collect(event.object);
        else this.reconcile(event.object);
      } catch (error) {
        this.log('daemonset change failed', {
          daemonset: `${event.object.metadata.namespace ?? ''}/${event.object.metadata.name}`,
          error: String(error),
        });
      }
    });
  }

  stop(): void {
    this.unsubscribe?.();
  }

  private reconcile(ds: KubeObject): void {
    const podType = resourceByKind('Pod');
    if (!podType) return;
    const namespace = ds.metadata.namespace ?? 'default';
    const template = (ds.spec as DaemonSetSpec | undefined)?.template ?? {};
    for (const node of this.nodes) {
      const name = `${ds.metadata.name}-${node.name}`.slice(0, 63);
      try {
        this.store.get(podType, namespace, name);
        continue;
      } catch (error) {
        if (!(error instanceof ApiError && error.code === 404)) throw error;
      }
      this.store.create(podType, namespace, {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name,
          namespace,
          labels: { ...(template.metadata?.labels ?? {}) },
          annotations: { ...(template.metadata?.annotations ?? {}) },
          ownerReferences: [
            {
              apiVersion: 'apps/v1',
              kind: 'DaemonSet',
              name: ds.metadata.name,
              uid: ds.metadata.uid,
              controller: true,
            },
          ],
        },
        spec: { ...(template.spec ?? {}), nodeName: node.name },
      });
      this.log('daemonset pod created', { pod: `${namespace}/${name}`, node: node.name });
    }
  }

  private collect(ds: KubeObject): void {
    const podType = resourceByKind('Pod');
    if (!podType) return;
    const namespace = ds.metadata.namespace ?? 'default';
    for (const pod of this.store.list(podType, namespace).items) {
      const owners = (pod.metadata['ownerReferences'] ?? []) as { uid?: string }[];
      if (!owners.some((o) => o.uid === ds.metadata.uid)) continue;
      try {
        this.store.delete(podType, namespace, pod.metadata.name);
      } catch (error) {
        if (!(error instanceof ApiError && error.code === 404)) throw error;
      }
    }
  }
}
