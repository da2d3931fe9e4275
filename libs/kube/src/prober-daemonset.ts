import {
  ApiException,
  AppsV1Api,
  AuthorizationV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1DaemonSet,
} from '@kubernetes/client-node';

/** Pods of a `lumen run` prober DaemonSet carry this label; the planner leaves them out. */
export const RUN_PROBER_LABEL = 'lumen.dev/run-prober';

/** Everything a `lumen run` creates carries this label, so that a later run finds leftovers. */
export const RUN_MANAGED_BY = { 'app.kubernetes.io/managed-by': 'lumen-run' } as const;

/** When a run's objects may be removed by any later run: its deadline, passed. */
export const RUN_EXPIRES_ANNOTATION = 'lumen.dev/expires-at';

export interface ProberDaemonSetOptions {
  readonly namespace: string;
  /** The run's id: names the DaemonSet and labels its pods. */
  readonly runId: string;
  readonly image: string;
  /** POD_CIDRS of the probers: the targets they accept. */
  readonly podCidrs: string;
  /** After this, the run is over even if it was killed: a later run removes what is left. */
  readonly expiresAt: Date;
}

/** What a run removed of earlier runs: `kind namespace/name` each. */
export type RemovedLeftovers = readonly string[];

/** A right the run needs: a verb on a resource, in a namespace or cluster-wide. */
export interface AccessNeed {
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly namespace?: string;
  readonly why: string;
}

/** The run lacks rights; the message says exactly which, with RBAC that grants them. */
export class MissingAccess extends Error {
  constructor(
    readonly missing: readonly AccessNeed[],
    rbac: string,
  ) {
    super(
      `lumen run needs rights it does not have:\n${missing
        .map(
          (m) =>
            `  - ${m.verb} ${m.group ? `${m.resource}.${m.group}` : m.resource}${m.namespace ? ` in namespace ${m.namespace}` : ' (cluster-wide)'}: ${m.why}`,
        )
        .join('\n')}\nGrant them, for example with:\n\n${rbac}`,
    );
    this.name = 'MissingAccess';
  }
}

const isStatus = (error: unknown, code: number): boolean =>
  error instanceof ApiException && error.code === code;

/**
 * The probers of one `lumen run` against a cluster with none installed: a DaemonSet in
 * Lumen's run namespace, with only the capabilities the prober needs, removed afterwards
 * (and the namespace with it, when the run created it).
 */
export class ProberDaemonSet {
  private readonly apps: AppsV1Api;
  private readonly core: CoreV1Api;
  private readonly authorization: AuthorizationV1Api;
  private createdNamespace = false;
  private created = false;
  private createdSecret = false;

  constructor(
    config: KubeConfig,
    private readonly options: ProberDaemonSetOptions,
  ) {
    this.apps = config.makeApiClient(AppsV1Api);
    this.core = config.makeApiClient(CoreV1Api);
    this.authorization = config.makeApiClient(AuthorizationV1Api);
  }

  get namespace(): string {
    return this.options.namespace;
  }

  get name(): string {
    return `lumen-run-${this.options.runId}-prober`;
  }

  /** The Secret holding the probers' NATS user; it owns the DaemonSet. */
  get secretName(): string {
    return `lumen-run-${this.options.runId}-nats`;
  }

  /** Every right the run uses, with why. */
  async needs(): Promise<AccessNeed[]> {
    const namespace = this.options.namespace;
    const read = (resource: string, group = ''): AccessNeed[] =>
      ['get', 'list', 'watch'].map((verb) => ({
        verb,
        group,
        resource,
        why: 'the planner watches the cluster',
      }));
    const namespaceExists = await this.core
      .readNamespace({ name: namespace })
      .then(() => true)
      .catch((error: unknown) => {
        if (isStatus(error, 404)) return false;
        throw error;
      });
    return [
      ...read('pods'),
      ...read('namespaces'),
      ...read('networkpolicies', 'networking.k8s.io'),
      ...read('nodes'),
      ...(namespaceExists
        ? []
        : [
            {
              verb: 'create',
              group: '',
              resource: 'namespaces',
              why: `the run creates namespace ${namespace}`,
            },
            { verb: 'delete', group: '', resource: 'namespaces', why: 'and removes it afterwards' },
          ]),
      ...['create', 'delete', 'get', 'list'].map((verb) => ({
        verb,
        group: 'apps',
        resource: 'daemonsets',
        namespace,
        why: 'the run starts its probers as a temporary DaemonSet (and removes expired ones)',
      })),
      ...['create', 'delete', 'list'].map((verb) => ({
        verb,
        group: '',
        resource: 'secrets',
        namespace,
        why: 'the probers read their NATS password from a Secret of the run',
      })),
    ];
  }

  /** Asks the API server (SelfSubjectAccessReview) for each need; throws MissingAccess with what lacks. */
  async checkAccess(): Promise<void> {
    const needs = await this.needs();
    const missing: AccessNeed[] = [];
    for (const need of needs) {
      const review = await this.authorization.createSelfSubjectAccessReview({
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SelfSubjectAccessReview',
          spec: {
            resourceAttributes: {
              verb: need.verb,
              group: need.group,
              resource: need.resource,
              ...(need.namespace ? { namespace: need.namespace } : {}),
            },
          },
        },
      });
      if (!review.status?.allowed) missing.push(need);
    }
    if (missing.length > 0)
      throw new MissingAccess(missing, rbacFor(needs, this.options.namespace));
  }

  /** The nodes the DaemonSet runs on (tolerating every taint, it runs on all). */
  async nodes(): Promise<string[]> {
    const list = await this.core.listNode();
    return list.items.flatMap((n) => (n.metadata?.name ? [n.metadata.name] : []));
  }

  /**
   * Creates the namespace when missing, the Secret with the probers' NATS user, then the
   * DaemonSet, owned by the Secret: deleting the Secret takes the probers with it.
   */
  async apply(
    natsUrl: string,
    credentials?: { readonly user: string; readonly password: string },
  ): Promise<void> {
    const { namespace } = this.options;
    try {
      await this.core.createNamespace({
        body: { metadata: { name: namespace, labels: { ...RUN_MANAGED_BY } } },
      });
      this.createdNamespace = true;
    } catch (error) {
      if (!isStatus(error, 409)) throw error;
    }
    const secret = credentials
      ? await this.core.createNamespacedSecret({
          namespace,
          body: {
            metadata: { name: this.secretName, namespace, ...this.runMetadata() },
            type: 'Opaque',
            stringData: { user: credentials.user, password: credentials.password },
          },
        })
      : undefined;
    this.createdSecret = secret !== undefined;
    const owner = secret?.metadata?.uid
      ? { apiVersion: 'v1', kind: 'Secret', name: this.secretName, uid: secret.metadata.uid }
      : undefined;
    await this.apps.createNamespacedDaemonSet({
      namespace,
      body: this.manifest(natsUrl, credentials !== undefined, owner),
    });
    this.created = true;
  }

  /** Labels and the expiry annotation every object of this run carries. */
  private runMetadata(): { labels: Record<string, string>; annotations: Record<string, string> } {
    return {
      labels: { ...RUN_MANAGED_BY, [RUN_PROBER_LABEL]: this.options.runId },
      annotations: { [RUN_EXPIRES_ANNOTATION]: this.options.expiresAt.toISOString() },
    };
  }

  /** Removes the DaemonSet (its pods go with it), its Secret and a namespace the run created. Safe to call twice. */
  async remove(): Promise<void> {
    const { namespace } = this.options;
    const gone = (error: unknown): void => {
      if (!isStatus(error, 404)) throw error;
    };
    if (this.created)
      await this.apps
        .deleteNamespacedDaemonSet({ name: this.name, namespace, propagationPolicy: 'Background' })
        .catch(gone);
    this.created = false;
    if (this.createdSecret)
      await this.core.deleteNamespacedSecret({ name: this.secretName, namespace }).catch(gone);
    this.createdSecret = false;
    if (this.createdNamespace) await this.core.deleteNamespace({ name: namespace }).catch(gone);
    this.createdNamespace = false;
  }

  /**
   * What earlier runs left in the namespace (a run killed with -9, a second Ctrl-C): their
   * DaemonSets and Secrets, only those past their expiry unless `all`. With `all`, also the
   * namespace when a run created it. Returns what it removed.
   */
  async removeLeftovers(options: {
    readonly all: boolean;
    readonly now: Date;
  }): Promise<RemovedLeftovers> {
    const { namespace } = this.options;
    const labelSelector = Object.entries(RUN_MANAGED_BY)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const expired = (meta: { annotations?: Record<string, string> } | undefined): boolean => {
      if (options.all) return true;
      const at = Date.parse(meta?.annotations?.[RUN_EXPIRES_ANNOTATION] ?? '');
      return Number.isFinite(at) && at < options.now.getTime();
    };
    const gone = (error: unknown): void => {
      if (!isStatus(error, 404)) throw error;
    };
    const missingNamespace = (error: unknown): { items: [] } => {
      if (isStatus(error, 404)) return { items: [] };
      throw error;
    };
    // A run's two kinds of objects, each listed by the run label and removed when expired.
    const kinds = [
      {
        kind: 'DaemonSet',
        own: this.name,
        list: () => this.apps.listNamespacedDaemonSet({ namespace, labelSelector }),
        remove: (name: string) =>
          this.apps.deleteNamespacedDaemonSet({ name, namespace, propagationPolicy: 'Background' }),
      },
      {
        kind: 'Secret',
        own: this.secretName,
        list: () => this.core.listNamespacedSecret({ namespace, labelSelector }),
        remove: (name: string) => this.core.deleteNamespacedSecret({ name, namespace }),
      },
    ];
    const removed: string[] = [];
    for (const { kind, own, list, remove } of kinds) {
      const objects = await list().catch(missingNamespace);
      for (const object of objects.items) {
        const name = object.metadata?.name;
        if (!name || name === own || !expired(object.metadata)) continue;
        await remove(name).catch(gone);
        removed.push(`${kind} ${namespace}/${name}`);
      }
    }
    if (options.all) {
      const created = await this.core
        .readNamespace({ name: namespace })
        .then((n) => n.metadata?.labels?.['app.kubernetes.io/managed-by'] === 'lumen-run')
        .catch((error: unknown) => {
          if (isStatus(error, 404)) return false;
          throw error;
        });
      if (created) {
        await this.core.deleteNamespace({ name: namespace }).catch(gone);
        removed.push(`Namespace ${namespace}`);
      }
    }
    return removed;
  }

  /** The DaemonSet; with `withCredentials`, its probers read their NATS user from the run's Secret. */
  manifest(
    natsUrl: string,
    withCredentials: boolean,
    owner?: { apiVersion: string; kind: string; name: string; uid: string },
  ): V1DaemonSet {
    const o = this.options;
    const labels = {
      'app.kubernetes.io/name': 'lumen',
      'app.kubernetes.io/component': 'prober',
      ...RUN_MANAGED_BY,
      [RUN_PROBER_LABEL]: o.runId,
    };
    const fromSecret = (name: string, key: string) => ({
      name,
      valueFrom: { secretKeyRef: { name: this.secretName, key } },
    });
    const env = [
      { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
      { name: 'NATS_URL', value: natsUrl },
      { name: 'POD_CIDRS', value: o.podCidrs },
      { name: 'HEARTBEAT_TTL_MS', value: '6000' },
      // The run's prober user, from its Secret: never in the DaemonSet's own spec.
      ...(withCredentials
        ? [fromSecret('NATS_USER', 'user'), fromSecret('NATS_PASSWORD', 'password')]
        : []),
    ];
    return {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: {
        name: this.name,
        namespace: o.namespace,
        labels,
        annotations: this.runMetadata().annotations,
        ...(owner ? { ownerReferences: [owner] } : {}),
      },
      spec: {
        selector: { matchLabels: { [RUN_PROBER_LABEL]: o.runId } },
        template: {
          metadata: { labels },
          spec: {
            // The prober enters other pods' network namespaces through /proc/<pid>/ns/net.
            hostPID: true,
            automountServiceAccountToken: false,
            tolerations: [{ operator: 'Exists' }],
            containers: [
              {
                name: 'prober',
                image: o.image,
                command: ['node', '/app/dist/services/prober/src/main.js'],
                env,
                // What the chart's prober has, no more (deploy/helm/lumen/README.md).
                securityContext: {
                  privileged: false,
                  runAsUser: 0,
                  runAsNonRoot: false,
                  readOnlyRootFilesystem: true,
                  allowPrivilegeEscalation: false,
                  capabilities: { drop: ['ALL'], add: ['NET_RAW', 'SYS_ADMIN', 'SYS_PTRACE'] },
                  seccompProfile: { type: 'RuntimeDefault' },
                },
                resources: {
                  requests: { cpu: '50m', memory: '96Mi' },
                  limits: { memory: '256Mi' },
                },
              },
            ],
          },
        },
      },
    };
  }
}

/** A ClusterRole (reads) and a Role (the DaemonSet) that grant every need. */
export function rbacFor(needs: readonly AccessNeed[], namespace: string): string {
  const rules = (scoped: boolean): string =>
    [
      ...new Map(
        needs
          .filter((n) => (n.namespace !== undefined) === scoped)
          .map((n) => [`${n.group}|${n.resource}`, n]),
      ).values(),
    ]
      .map((n) => {
        const verbs = needs
          .filter((m) => m.group === n.group && m.resource === n.resource)
          .map((m) => m.verb);
        return `  - apiGroups: ["${n.group}"]\n    resources: ["${n.resource}"]\n    verbs: [${verbs.map((v) => `"${v}"`).join(', ')}]`;
      })
      .join('\n');
  return [
    'apiVersion: rbac.authorization.k8s.io/v1',
    'kind: ClusterRole',
    'metadata:',
    '  name: lumen-run',
    'rules:',
    rules(false),
    '---',
    'apiVersion: rbac.authorization.k8s.io/v1',
    'kind: Role',
    'metadata:',
    '  name: lumen-run',
    `  namespace: ${namespace}`,
    'rules:',
    rules(true),
    '',
    '(bind both to the identity that runs `lumen run`: kubectl create clusterrolebinding /',
    ' rolebinding lumen-run --clusterrole/--role lumen-run --user|--serviceaccount …)',
  ].join('\n');
}
