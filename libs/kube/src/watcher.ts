import {
  CoreV1Api,
  KubeConfig,
  NetworkingV1Api,
  makeInformer,
  type Informer,
  type KubernetesObject,
} from '@kubernetes/client-node';
import type { Cluster, Namespace, NetworkPolicy, Pod } from '#lumen/policy';
import { namespaceFrom, podFrom, policyFrom } from './convert.js';

export type WatchedKind = 'Namespace' | 'Pod' | 'NetworkPolicy';

export interface ClusterChange {
  readonly kind: WatchedKind;
  readonly type: 'upsert' | 'delete';
  /** "name" for namespaces, "namespace/name" otherwise. */
  readonly key: string;
}

export type WatchedPod = NonNullable<ReturnType<typeof podFrom>>;

export interface ClusterSnapshot {
  readonly cluster: Cluster;
  readonly pods: readonly WatchedPod[];
  /** What changed since the previous snapshot (everything, for the first). */
  readonly changes: readonly ClusterChange[];
  readonly at: Date;
}

export interface WatcherOptions {
  /** Coalesces bursts of events into one snapshot. */
  readonly debounceMs: number;
  readonly onSnapshot: (snapshot: ClusterSnapshot) => void;
  readonly onError?: (kind: WatchedKind, error: unknown) => void;
  readonly now?: () => Date;
}

/** Kubeconfig from a file, or the in-cluster service account when there is none. */
export function loadKubeConfig(file: string | undefined): KubeConfig {
  const config = new KubeConfig();
  if (file) config.loadFromFile(file);
  else config.loadFromCluster();
  return config;
}

const keyOf = (o: KubernetesObject): string =>
  o.metadata?.namespace
    ? `${o.metadata.namespace}/${o.metadata.name ?? ''}`
    : (o.metadata?.name ?? '');

/**
 * Informers (list, then watch; relist after 410 or a dropped watch, as client-node does) on
 * Namespaces, Pods and NetworkPolicies, turned into debounced snapshots of the cluster.
 */
export class ClusterWatcher {
  private readonly namespaces = new Map<string, Namespace>();
  private readonly pods = new Map<string, WatchedPod>();
  private readonly policies = new Map<string, NetworkPolicy>();
  private pending: ClusterChange[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly informers: Informer<KubernetesObject>[] = [];
  private readonly synced = new Set<WatchedKind>();

  constructor(
    private readonly config: KubeConfig,
    private readonly options: WatcherOptions,
  ) {}

  async start(): Promise<void> {
    const core = this.config.makeApiClient(CoreV1Api);
    const networking = this.config.makeApiClient(NetworkingV1Api);
    // A kind counts as synced once its list has returned (client-node's "connect" comes before the list).
    const listed = <T>(kind: WatchedKind, list: Promise<T>): Promise<T> =>
      list.then((result) => {
        this.synced.add(kind);
        this.changed(undefined);
        return result;
      });
    const sources: [WatchedKind, string, () => Promise<{ items: KubernetesObject[] }>][] = [
      ['Namespace', '/api/v1/namespaces', () => core.listNamespace()],
      ['Pod', '/api/v1/pods', () => core.listPodForAllNamespaces()],
      [
        'NetworkPolicy',
        '/apis/networking.k8s.io/v1/networkpolicies',
        () => networking.listNetworkPolicyForAllNamespaces(),
      ],
    ];
    const converters: Record<WatchedKind, [(o: never) => unknown, Map<string, unknown>]> = {
      Namespace: [namespaceFrom, this.namespaces],
      Pod: [podFrom, this.pods],
      NetworkPolicy: [policyFrom, this.policies],
    };
    for (const [kind, path, list] of sources) {
      const [convert, into] = converters[kind];
      this.watch(
        kind,
        makeInformer(this.config, path, () => listed(kind, list())),
        convert as (o: KubernetesObject) => unknown,
        into,
      );
    }
    await Promise.all(this.informers.map((i) => i.start()));
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.all(this.informers.map((i) => i.stop()));
  }

  private watch<K extends KubernetesObject, V>(
    kind: WatchedKind,
    informer: Informer<K>,
    convert: (o: K) => V | undefined,
    into: Map<string, V>,
  ): void {
    const upsert = (object: K): void => {
      const value = convert(object);
      if (value === undefined) return;
      into.set(keyOf(object), value);
      this.changed({ kind, type: 'upsert', key: keyOf(object) });
    };
    informer.on('add', upsert);
    informer.on('update', upsert);
    informer.on('delete', (object) => {
      into.delete(keyOf(object));
      this.changed({ kind, type: 'delete', key: keyOf(object) });
    });
    informer.on('error', (error: unknown) => {
      this.options.onError?.(kind, error);
      // client-node stops an informer on a non-410 error; start it again after a pause.
      setTimeout(
        () => void informer.start().catch((e: unknown) => this.options.onError?.(kind, e)),
        1000,
      ).unref();
    });
    this.informers.push(informer);
  }

  /**
   * Changes are gathered for `debounceMs` from the first one, then flushed together. The
   * timer is not restarted by later changes: under sustained churn (a rollout of
   * thousands of pods) a trailing debounce would never fire, and the planner would fall
   * behind for as long as the churn lasts. Here it is never more than one interval behind.
   */
  private changed(change: ClusterChange | undefined): void {
    if (change) this.pending.push(change);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, this.options.debounceMs);
  }

  private flush(): void {
    if (this.synced.size < 3 || this.pending.length === 0) return;
    const changes = this.pending;
    this.pending = [];
    const pods = [...this.pods.values()];
    this.options.onSnapshot({
      cluster: {
        namespaces: [...this.namespaces.values()],
        pods,
        policies: [...this.policies.values()],
      },
      pods,
      changes,
      at: this.options.now?.() ?? new Date(),
    });
  }
}

export type { Pod };
