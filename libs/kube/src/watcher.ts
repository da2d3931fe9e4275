import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  NetworkingV1Api,
  makeInformer,
  type Informer,
  type KubernetesObject,
} from '@kubernetes/client-node';
import type {
  Cluster,
  ClusterPolicyKind,
  ClusterPolicyManifest,
  Namespace,
  NetworkPolicy,
  Pod,
} from '#lumen/policy';
import { clusterPolicyFrom, namespaceFrom, podFrom, policyFrom } from './convert.js';

export type WatchedKind =
  | 'Namespace'
  | 'Pod'
  | 'NetworkPolicy'
  | ClusterPolicyKind
  /** A CNI's own policy kind, which Lumen does not model (see UNMODELLED_POLICY_RESOURCES). */
  | 'UnmodelledPolicy';

/** A policy object of a kind Lumen does not model: found, so what it may affect is not judged. */
export interface UnmodelledPolicy {
  readonly group: string;
  readonly kind: string;
  /** Absent for a cluster-scoped kind, which may affect every pod. */
  readonly namespace?: string;
  readonly name: string;
}

/**
 * CNI-specific policy kinds: a cluster that uses them enforces more than Lumen's model
 * says, so their objects are discovered (when their CRDs are installed) and named.
 */
export const UNMODELLED_POLICY_RESOURCES: readonly {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
}[] = [
  {
    group: 'cilium.io',
    version: 'v2',
    plural: 'ciliumnetworkpolicies',
    kind: 'CiliumNetworkPolicy',
    namespaced: true,
  },
  {
    group: 'cilium.io',
    version: 'v2',
    plural: 'ciliumclusterwidenetworkpolicies',
    kind: 'CiliumClusterwideNetworkPolicy',
    namespaced: false,
  },
  {
    group: 'crd.projectcalico.org',
    version: 'v1',
    plural: 'networkpolicies',
    kind: 'NetworkPolicy',
    namespaced: true,
  },
  {
    group: 'crd.projectcalico.org',
    version: 'v1',
    plural: 'globalnetworkpolicies',
    kind: 'GlobalNetworkPolicy',
    namespaced: false,
  },
  {
    group: 'projectcalico.org',
    version: 'v3',
    plural: 'networkpolicies',
    kind: 'NetworkPolicy',
    namespaced: true,
  },
  {
    group: 'projectcalico.org',
    version: 'v3',
    plural: 'globalnetworkpolicies',
    kind: 'GlobalNetworkPolicy',
    namespaced: false,
  },
  {
    group: 'crd.antrea.io',
    version: 'v1beta1',
    plural: 'networkpolicies',
    kind: 'NetworkPolicy',
    namespaced: true,
  },
  {
    group: 'crd.antrea.io',
    version: 'v1beta1',
    plural: 'clusternetworkpolicies',
    kind: 'ClusterNetworkPolicy',
    namespaced: false,
  },
];

/** The cluster-scoped policy kinds, watched when their CRDs are installed. */
export const CLUSTER_POLICY_RESOURCES: readonly {
  readonly kind: ClusterPolicyKind;
  readonly group: string;
  readonly version: string;
  readonly plural: string;
}[] = [
  {
    kind: 'ClusterNetworkPolicy',
    group: 'policy.networking.k8s.io',
    version: 'v1alpha2',
    plural: 'clusternetworkpolicies',
  },
  {
    kind: 'AdminNetworkPolicy',
    group: 'policy.networking.k8s.io',
    version: 'v1alpha1',
    plural: 'adminnetworkpolicies',
  },
  {
    kind: 'BaselineAdminNetworkPolicy',
    group: 'policy.networking.k8s.io',
    version: 'v1alpha1',
    plural: 'baselineadminnetworkpolicies',
  },
];

export interface ClusterChange {
  readonly kind: WatchedKind;
  readonly type: 'upsert' | 'delete';
  /** "name" for namespaces and cluster-scoped policies, "namespace/name" otherwise. */
  readonly key: string;
}

export type WatchedPod = NonNullable<ReturnType<typeof podFrom>>;

export interface ClusterSnapshot {
  readonly cluster: Cluster;
  /** CNI-specific policy objects found (their kinds are not modelled). */
  readonly unmodelled: readonly UnmodelledPolicy[];
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
  /** By `Kind/name`. */
  private readonly clusterPolicies = new Map<string, ClusterPolicyManifest>();
  /** By `group/Kind/namespace/name`. */
  private readonly unmodelled = new Map<string, UnmodelledPolicy>();
  /** The kinds whose list must have returned before a snapshot is whole. */
  private readonly expected = new Set<WatchedKind>(['Namespace', 'Pod', 'NetworkPolicy']);
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
    const sources: [
      'Namespace' | 'Pod' | 'NetworkPolicy',
      string,
      () => Promise<{ items: KubernetesObject[] }>,
    ][] = [
      ['Namespace', '/api/v1/namespaces', () => core.listNamespace()],
      ['Pod', '/api/v1/pods', () => core.listPodForAllNamespaces()],
      [
        'NetworkPolicy',
        '/apis/networking.k8s.io/v1/networkpolicies',
        () => networking.listNetworkPolicyForAllNamespaces(),
      ],
    ];
    const converters: Record<
      'Namespace' | 'Pod' | 'NetworkPolicy',
      [(o: never) => unknown, Map<string, unknown>]
    > = {
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
    await this.watchClusterPolicies(listed);
    await this.watchUnmodelledPolicies();
    await Promise.all(this.informers.map((i) => i.start()));
  }

  /**
   * The CNI-specific policy kinds whose CRDs are installed: each object is named, so the
   * cases it may affect are reported as not judged instead of judged against a model
   * that leaves it out. They do not hold up the first snapshot.
   */
  private async watchUnmodelledPolicies(): Promise<void> {
    const custom = this.config.makeApiClient(CustomObjectsApi);
    for (const { group, version, plural, kind, namespaced } of UNMODELLED_POLICY_RESOURCES) {
      const list = (): Promise<{ items: KubernetesObject[] }> =>
        (namespaced
          ? custom.listCustomObjectForAllNamespaces({ group, version, resourcePlural: plural })
          : custom.listClusterCustomObject({ group, version, plural })) as Promise<{
          items: KubernetesObject[];
        }>;
      try {
        await list();
      } catch (error) {
        if (error instanceof ApiException && error.code === 404) continue;
        throw error;
      }
      const named = (object: KubernetesObject): UnmodelledPolicy | undefined =>
        object.metadata?.name
          ? {
              group,
              kind,
              ...(namespaced && object.metadata.namespace
                ? { namespace: object.metadata.namespace }
                : {}),
              name: object.metadata.name,
            }
          : undefined;
      this.watch(
        'UnmodelledPolicy',
        makeInformer(this.config, `/apis/${group}/${version}/${plural}`, list),
        named,
        new KeyedByKind(`${group}/${kind}`, this.unmodelled),
      );
    }
  }

  /** The kinds of cluster-scoped policies being watched (their CRDs are installed). */
  get clusterPolicyKinds(): readonly ClusterPolicyKind[] {
    return CLUSTER_POLICY_RESOURCES.filter((r) => this.expected.has(r.kind)).map((r) => r.kind);
  }

  /**
   * ClusterNetworkPolicies and the v1alpha1 kinds, for each whose CRD is installed: a
   * first list answers 404 when it is not, and nothing of it is watched.
   */
  private async watchClusterPolicies(
    listed: <T>(kind: WatchedKind, list: Promise<T>) => Promise<T>,
  ): Promise<void> {
    const custom = this.config.makeApiClient(CustomObjectsApi);
    for (const { kind, group, version, plural } of CLUSTER_POLICY_RESOURCES) {
      const list = (): Promise<{ items: KubernetesObject[] }> =>
        custom.listClusterCustomObject({ group, version, plural }) as Promise<{
          items: KubernetesObject[];
        }>;
      try {
        await list();
      } catch (error) {
        if (error instanceof ApiException && error.code === 404) continue;
        throw error;
      }
      this.expected.add(kind);
      const keyed = (object: KubernetesObject): ClusterPolicyManifest | undefined =>
        clusterPolicyFrom({ ...object, kind });
      this.watch(
        kind,
        makeInformer(this.config, `/apis/${group}/${version}/${plural}`, () =>
          listed(kind, list()),
        ),
        keyed,
        new KeyedByKind(kind, this.clusterPolicies),
      );
    }
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
    into: { set(key: string, value: V): unknown; delete(key: string): unknown },
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
    if ([...this.expected].some((k) => !this.synced.has(k)) || this.pending.length === 0) return;
    const changes = this.pending;
    this.pending = [];
    const pods = [...this.pods.values()];
    this.options.onSnapshot({
      cluster: {
        namespaces: [...this.namespaces.values()],
        pods,
        policies: [...this.policies.values()],
        ...(this.clusterPolicies.size > 0
          ? { clusterPolicies: [...this.clusterPolicies.values()] }
          : {}),
      },
      unmodelled: [...this.unmodelled.values()],
      pods,
      changes,
      at: this.options.now?.() ?? new Date(),
    });
  }
}

/**
 * A view of the cluster-scoped policies map for one kind: names are unique per kind only,
 * so entries are kept as `Kind/name`.
 */
class KeyedByKind<V> {
  constructor(
    private readonly kind: string,
    private readonly into: Map<string, V>,
  ) {}

  set(name: string, value: V): this {
    this.into.set(`${this.kind}/${name}`, value);
    return this;
  }

  delete(name: string): boolean {
    return this.into.delete(`${this.kind}/${name}`);
  }
}

export type { Pod };
