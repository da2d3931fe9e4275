import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  DiscoveryV1Api,
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
import {
  endpointSliceFrom,
  serviceFrom,
  serviceFrontends,
  type WatchedEndpointSlice,
  type WatchedService,
} from './services.js';

export type WatchedKind =
  | 'Namespace'
  | 'Pod'
  | 'NetworkPolicy'
  /** Services and EndpointSlices: the paths through Services the planner probes (issue 19). */
  | 'Service'
  | 'EndpointSlice'
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

/** The built-in kinds, watched from the start. */
type CoreKind = 'Namespace' | 'Pod' | 'NetworkPolicy' | 'Service' | 'EndpointSlice';

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
  /**
   * The first failure of a watch (or of its relist) in an outage; the next come quietly.
   * `discovery`: looking for a CRD not watched yet failed (it is looked for again).
   */
  readonly onError?: (kind: WatchedKind, error: unknown, during?: 'discovery') => void;
  /** A CRD-backed kind whose CRD was removed: its objects are gone from the view. */
  readonly onUninstalled?: (kind: WatchedKind) => void;
  /** A failed watch listed again: its part of the view is fresh again. */
  readonly onRecovered?: (kind: WatchedKind, outageMs: number) => void;
  /** A CRD-backed kind found after start (its CRD was installed later), now watched. */
  readonly onDiscovered?: (kind: string, group: string) => void;
  /** How often CRDs not installed at start are looked for again; 0 or absent: never. */
  readonly discoveryMs?: number;
  readonly now?: () => Date;
}

/** Kubeconfig from a file, or the in-cluster service account when there is none. */
export function loadKubeConfig(file: string | undefined): KubeConfig {
  const config = new KubeConfig();
  if (file) config.loadFromFile(file);
  else config.loadFromCluster();
  return config;
}

/** `plural.group` of a custom resource's API path (`/apis/group/version/plural`). */
function customResourceId(path: string): string | undefined {
  const [, apis, group, , plural] = path.split('/');
  return apis === 'apis' && group && plural ? `${plural}.${group}` : undefined;
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
  private readonly services = new Map<string, WatchedService>();
  private readonly endpointSlices = new Map<string, WatchedEndpointSlice>();
  /** By `Kind/name`. */
  private readonly clusterPolicies = new Map<string, ClusterPolicyManifest>();
  /** By `group/Kind/namespace/name`. */
  private readonly unmodelled = new Map<string, UnmodelledPolicy>();
  /** The kinds whose list must have returned before a snapshot is whole. */
  private readonly expected = new Set<WatchedKind>([
    'Namespace',
    'Pod',
    'NetworkPolicy',
    'Service',
    'EndpointSlice',
  ]);
  private pending: ClusterChange[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly informers: Informer<KubernetesObject>[] = [];
  private readonly synced = new Set<WatchedKind>();
  /** CRD-backed resources (`plural.group`) being watched; the rest are looked for again. */
  private readonly watchedResources = new Set<string>();
  private discovery: NodeJS.Timeout | undefined;
  private discovering = false;
  private stopped = false;
  /** Informers (by API path) whose watch failed and whose relist has not succeeded yet. */
  private readonly failing = new Map<string, Date>();
  /** Errors per informer: a restart whose watch failed at once has not recovered. */
  private readonly errors = new Map<string, number>();

  constructor(
    private readonly config: KubeConfig,
    private readonly options: WatcherOptions,
  ) {}

  async start(): Promise<void> {
    const core = this.config.makeApiClient(CoreV1Api);
    const networking = this.config.makeApiClient(NetworkingV1Api);
    const discovery = this.config.makeApiClient(DiscoveryV1Api);
    const sources: [CoreKind, string, () => Promise<{ items: KubernetesObject[] }>][] = [
      ['Namespace', '/api/v1/namespaces', () => core.listNamespace()],
      ['Pod', '/api/v1/pods', () => core.listPodForAllNamespaces()],
      [
        'NetworkPolicy',
        '/apis/networking.k8s.io/v1/networkpolicies',
        () => networking.listNetworkPolicyForAllNamespaces(),
      ],
      ['Service', '/api/v1/services', () => core.listServiceForAllNamespaces()],
      [
        'EndpointSlice',
        '/apis/discovery.k8s.io/v1/endpointslices',
        () => discovery.listEndpointSliceForAllNamespaces(),
      ],
    ];
    const converters: Record<CoreKind, [(o: never) => unknown, Map<string, unknown>]> = {
      Namespace: [namespaceFrom, this.namespaces],
      Pod: [podFrom, this.pods],
      NetworkPolicy: [policyFrom, this.policies],
      Service: [serviceFrom, this.services],
      EndpointSlice: [endpointSliceFrom, this.endpointSlices],
    };
    for (const [kind, path, list] of sources) {
      const [convert, into] = converters[kind];
      this.watch(
        kind,
        {
          path,
          list,
          informer: makeInformer(this.config, path, () => this.listed(kind, path, list())),
        },
        convert as (o: KubernetesObject) => unknown,
        into,
      );
    }
    // At start, a CRD-backed kind's first list holds up the first snapshot like the others.
    await this.discover(true);
    await Promise.all(this.informers.map((i) => i.start()));
    const every = this.options.discoveryMs ?? 0;
    if (every > 0)
      this.discovery = setInterval(() => {
        void this.discover(false);
      }, every).unref();
  }

  /**
   * A kind counts as synced once its list has returned (client-node's "connect" comes before
   * the list), and a failed informer is fresh again once its relist has.
   */
  private listed<T>(kind: WatchedKind | undefined, path: string, list: Promise<T>): Promise<T> {
    return list.then((result) => {
      if (kind) this.synced.add(kind);
      this.recovered(kind ?? 'UnmodelledPolicy', path);
      return result;
    });
  }

  private recovered(kind: WatchedKind, path: string): void {
    const since = this.failing.get(path);
    if (since) {
      this.failing.delete(path);
      this.options.onRecovered?.(kind, this.now().getTime() - since.getTime());
    }
    this.changed(undefined);
  }

  /**
   * Since when part of the view may be stale: the oldest failure of a watch that has not
   * listed again (the API unreachable, or refusing). Undefined while every watch is live.
   */
  get staleSince(): Date | undefined {
    let oldest: Date | undefined;
    for (const since of this.failing.values()) if (!oldest || since < oldest) oldest = since;
    return oldest;
  }

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }

  /**
   * Looks for the CRD-backed kinds not watched yet: the cluster-scoped tiers and the CNI
   * kinds Lumen does not model. A first list answering 404 means the CRD is not installed;
   * it is looked for again every `discoveryMs`, so a CRD installed later is watched without
   * a restart. At start an error other than 404 is thrown; later it is reported and the
   * next round tries again.
   */
  private async discover(atStart: boolean): Promise<void> {
    if (this.discovering) return;
    this.discovering = true;
    try {
      for (const resource of CLUSTER_POLICY_RESOURCES)
        await this.tryWatch(resource, atStart, () => this.watchClusterPolicy(resource, atStart));
      for (const resource of UNMODELLED_POLICY_RESOURCES)
        await this.tryWatch(resource, atStart, () => this.watchUnmodelledPolicy(resource));
    } finally {
      this.discovering = false;
    }
  }

  private async tryWatch(
    resource: { group: string; plural: string; kind: string },
    atStart: boolean,
    watch: () => Informer<KubernetesObject>,
  ): Promise<void> {
    const id = `${resource.plural}.${resource.group}`;
    if (this.watchedResources.has(id) || this.stopped) return;
    const kind: WatchedKind = CLUSTER_POLICY_RESOURCES.some((r) => r.kind === resource.kind)
      ? (resource.kind as ClusterPolicyKind)
      : 'UnmodelledPolicy';
    try {
      await this.customList(resource)();
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return;
      if (atStart) throw error;
      this.options.onError?.(kind, error, 'discovery');
      return;
    }
    // stop() may have come while the list was out.
    if (this.isStopped()) return;
    this.watchedResources.add(id);
    const informer = watch();
    if (!atStart) {
      this.options.onDiscovered?.(resource.kind, resource.group);
      await informer.start().catch((error: unknown) => this.options.onError?.(kind, error));
    }
  }

  private isStopped(): boolean {
    return this.stopped;
  }

  private customList(resource: {
    group: string;
    version?: string;
    plural: string;
    namespaced?: boolean;
  }): () => Promise<{ items: KubernetesObject[] }> {
    const custom = this.config.makeApiClient(CustomObjectsApi);
    const { group, plural } = resource;
    const version =
      resource.version ??
      [...CLUSTER_POLICY_RESOURCES, ...UNMODELLED_POLICY_RESOURCES].find(
        (r) => r.group === group && r.plural === plural,
      )?.version ??
      '';
    return () =>
      (resource.namespaced
        ? custom.listCustomObjectForAllNamespaces({ group, version, resourcePlural: plural })
        : custom.listClusterCustomObject({ group, version, plural })) as Promise<{
        items: KubernetesObject[];
      }>;
  }

  /**
   * A CNI-specific policy kind whose CRD is installed: each object is named, so the cases
   * it may affect are reported as not judged instead of judged against a model that leaves
   * it out. It never holds up a snapshot.
   */
  private watchUnmodelledPolicy(
    resource: (typeof UNMODELLED_POLICY_RESOURCES)[number],
  ): Informer<KubernetesObject> {
    const { group, version, plural, kind, namespaced } = resource;
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
    const path = `/apis/${group}/${version}/${plural}`;
    const list = this.customList(resource);
    return this.watch(
      'UnmodelledPolicy',
      {
        path,
        list,
        informer: makeInformer(this.config, path, () => this.listed(undefined, path, list())),
      },
      named,
      new KeyedByKind(`${group}/${kind}`, this.unmodelled),
    );
  }

  /** The kinds of cluster-scoped policies being watched (their CRDs are installed). */
  get clusterPolicyKinds(): readonly ClusterPolicyKind[] {
    return CLUSTER_POLICY_RESOURCES.filter((r) =>
      this.watchedResources.has(`${r.plural}.${r.group}`),
    ).map((r) => r.kind);
  }

  /**
   * A ClusterNetworkPolicy kind (or a v1alpha1 one) whose CRD is installed. Found at start,
   * the first snapshot waits for its list; found later, its objects arrive as changes.
   */
  private watchClusterPolicy(
    resource: (typeof CLUSTER_POLICY_RESOURCES)[number],
    atStart: boolean,
  ): Informer<KubernetesObject> {
    const { kind, group, version, plural } = resource;
    const list = this.customList(resource);
    if (atStart) this.expected.add(kind);
    const keyed = (object: KubernetesObject): ClusterPolicyManifest | undefined =>
      clusterPolicyFrom({ ...object, kind });
    const path = `/apis/${group}/${version}/${plural}`;
    return this.watch(
      kind,
      {
        path,
        list,
        informer: makeInformer(this.config, path, () => this.listed(kind, path, list())),
      },
      keyed,
      new KeyedByKind(kind, this.clusterPolicies),
    );
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.discovery);
    clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.all(this.informers.map((i) => i.stop()));
  }

  private watch<K extends KubernetesObject, V>(
    kind: WatchedKind,
    source: {
      readonly path: string;
      /** The informer's list, which a restart asks first. */
      readonly list: () => Promise<unknown>;
      readonly informer: Informer<K>;
    },
    convert: (o: K) => V | undefined,
    into: { set(key: string, value: V): unknown; delete(key: string): unknown },
  ): Informer<K> {
    const { path, list, informer } = source;
    const keys = new Set<string>();
    const upsert = (object: K): void => {
      const value = convert(object);
      if (value === undefined) return;
      into.set(keyOf(object), value);
      keys.add(keyOf(object));
      this.changed({ kind, type: 'upsert', key: keyOf(object) });
    };
    informer.on('add', upsert);
    informer.on('update', upsert);
    informer.on('delete', (object) => {
      into.delete(keyOf(object));
      keys.delete(keyOf(object));
      this.changed({ kind, type: 'delete', key: keyOf(object) });
    });
    // A CRD-backed kind whose CRD went away (an upgrade replacing v1alpha1 with v1alpha2):
    // its objects went with it. Discovery looks for the CRD again.
    const uninstalled = (): void => {
      void informer.stop();
      for (const key of keys) {
        into.delete(key);
        this.changed({ kind, type: 'delete', key });
      }
      keys.clear();
      this.watchedResources.delete(customResourceId(path) ?? '');
      this.failing.delete(path);
      this.options.onUninstalled?.(kind);
      this.changed(undefined);
    };
    informer.on('error', (error: unknown) => {
      // Stopping aborts the informers' watches, which some report as errors: neither those
      // nor a restart after stop() may reach the caller (a late snapshot re-planned after
      // a pipeline removed its synthetic sources, and made their namespace again).
      if (this.isStopped()) return;
      this.failed(kind, path, error);
      this.restart({ kind, path, list, informer, uninstalled }, 0);
    });
    this.informers.push(informer);
    return informer;
  }

  private failed(kind: WatchedKind, path: string, error: unknown): void {
    this.errors.set(path, (this.errors.get(path) ?? 0) + 1);
    if (this.failing.has(path)) return;
    this.failing.set(path, this.now());
    this.options.onError?.(kind, error);
  }

  /**
   * client-node stops an informer on an error other than 410. After a pause that grows from
   * 1 s to 5 s, the API is asked for a list first: only when that answers is the informer
   * started again (it resumes its watch from where it was, or relists after a 410), and its
   * part of the view counts as fresh. A resumed watch lists nothing, and a watch that cannot
   * connect still lets start() return: neither says the API is back.
   */
  private restart<K extends KubernetesObject>(
    watched: {
      readonly kind: WatchedKind;
      readonly path: string;
      readonly list: () => Promise<unknown>;
      readonly informer: Informer<K>;
      readonly uninstalled: () => void;
    },
    tries: number,
  ): void {
    const { kind, path, list, informer } = watched;
    setTimeout(
      () => {
        if (this.isStopped()) return;
        let errorsBefore = 0;
        list()
          .then(() => {
            errorsBefore = this.errors.get(path) ?? 0;
            return this.isStopped() ? undefined : informer.start();
          })
          .then(
            () => {
              // A watch that failed at once reported an error, and its own restart goes on.
              if (this.isStopped() || (this.errors.get(path) ?? 0) > errorsBefore) return;
              this.recovered(kind, path);
            },
            (error: unknown) => {
              if (this.isStopped()) return;
              const id = customResourceId(path);
              if (
                error instanceof ApiException &&
                error.code === 404 &&
                id &&
                this.watchedResources.has(id)
              ) {
                watched.uninstalled();
                return;
              }
              this.failed(kind, path, error);
              this.restart(watched, tries + 1);
            },
          );
      },
      Math.min(5000, 1000 * 2 ** tries),
    ).unref();
  }

  /**
   * Changes are gathered for `debounceMs` from the first one, then flushed together. The
   * timer is not restarted by later changes: under sustained churn (a rollout of
   * thousands of pods) a trailing debounce would never fire, and the planner would fall
   * behind for as long as the churn lasts. Here it is never more than one interval behind.
   */
  private changed(change: ClusterChange | undefined): void {
    if (this.isStopped()) return;
    if (change) this.pending.push(change);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, this.options.debounceMs);
  }

  /**
   * Sends the changes gathered, unless the view is not whole: a kind not listed yet, or a
   * watch that failed and has not listed again. Its changes wait for that relist; a plan
   * from a view the API no longer confirms would be taken for a fresh one.
   */
  private flush(): void {
    if (
      [...this.expected].some((k) => !this.synced.has(k)) ||
      this.failing.size > 0 ||
      this.pending.length === 0
    )
      return;
    const changes = this.pending;
    this.pending = [];
    const pods = [...this.pods.values()];
    const services = serviceFrontends(this.services.values(), this.endpointSlices.values());
    this.options.onSnapshot({
      cluster: {
        namespaces: [...this.namespaces.values()],
        pods,
        policies: [...this.policies.values()],
        ...(this.clusterPolicies.size > 0
          ? { clusterPolicies: [...this.clusterPolicies.values()] }
          : {}),
        ...(services.length > 0 ? { services } : {}),
      },
      unmodelled: [...this.unmodelled.values()],
      pods,
      changes,
      at: this.now(),
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
