import { ApiException, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';

/** The source a batch names: the prober enters its network namespace by UID. */
export interface BatchSource {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

/**
 * Checks a batch's source pod against the API before the prober enters it: the pod of that
 * name in that namespace has that UID, runs on this node, does not use the host's network,
 * and its namespace has not opted out. Needs only `get` on pods and namespaces, never list:
 * a compromised prober can read no pod it cannot name.
 */
export class ApiSourceCheck {
  private readonly core: CoreV1Api;
  private readonly namespaces = new Map<string, { optedOut: boolean; at: number }>();

  constructor(
    config: KubeConfig,
    private readonly options: {
      readonly node: string;
      readonly optOutLabel: string;
      /** How long a namespace's opt-out is believed; default 30 s. */
      readonly namespaceTtlMs?: number;
      readonly now?: () => number;
    },
  ) {
    this.core = config.makeApiClient(CoreV1Api);
  }

  /** Why the source may not be probed from, or undefined when it may. */
  async refusal(source: BatchSource): Promise<string | undefined> {
    const named = `${source.namespace}/${source.name}`;
    const pod = await this.core
      .readNamespacedPod({ namespace: source.namespace, name: source.name })
      .catch((error: unknown) => {
        if (error instanceof ApiException && error.code === 404) return undefined;
        throw error;
      });
    if (!pod) return `source pod ${named} does not exist`;
    if (pod.metadata?.uid !== source.uid)
      return `source pod ${named} has UID ${pod.metadata?.uid ?? 'none'}, not the batch's ${source.uid}`;
    if (pod.spec?.nodeName !== this.options.node)
      return `source pod ${named} runs on ${pod.spec?.nodeName ?? 'no node'}, not on ${this.options.node}`;
    if (pod.spec.hostNetwork) return `source pod ${named} uses the host's network`;
    if (await this.optedOut(source.namespace))
      return `namespace ${source.namespace} opted out (${this.options.optOutLabel}=true)`;
    return undefined;
  }

  private async optedOut(namespace: string): Promise<boolean> {
    const now = (this.options.now ?? Date.now)();
    const known = this.namespaces.get(namespace);
    if (known && now - known.at < (this.options.namespaceTtlMs ?? 30_000)) return known.optedOut;
    const object = await this.core.readNamespace({ name: namespace });
    const optedOut = object.metadata?.labels?.[this.options.optOutLabel] === 'true';
    this.namespaces.set(namespace, { optedOut, at: now });
    return optedOut;
  }
}
