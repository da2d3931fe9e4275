import type {
  Cluster,
  ClusterPolicyManifest,
  Namespace,
  NetworkPolicy,
  Pod,
  Protocol,
} from '#lumen/policy';
import { runChecked } from '#lumen/host';
import { resourceByKind, type KubeObject } from '../api/resources.js';
import type { ObjectStore } from '../api/store.js';
import type { RunningPod } from '../runtime/kubelet.js';
import { netnsPath } from '../runtime/network.js';
import { faultedCluster, formatFault, type Fault } from './faults.js';
import {
  FLUSH_SCRIPT,
  buildRulesets,
  replaceTableScript,
  type EnforcedPod,
  type ProxiedService,
} from './ruleset.js';
import { SERVICE_NAME_LABEL } from '../runtime/endpoint-slices.js';

export interface EnforcerOptions {
  readonly store: ObjectStore;
  readonly pods: () => readonly RunningPod[];
  readonly log: (message: string, fields?: Record<string, unknown>) => void;
  /** Coalesces bursts of changes into one reprogramming. */
  readonly debounceMs?: number;
}

export interface PropagationStats {
  readonly count: number;
  readonly lastMs: number | undefined;
  readonly medianMs: number | undefined;
  readonly maxMs: number | undefined;
}

export interface EnforcerStatus {
  readonly faults: readonly string[];
  /** The API resourceVersion the programmed rules reflect. */
  readonly appliedResourceVersion: number;
  /** Changes seen but not programmed yet (debounce, delay fault, forgetting). */
  readonly pending: boolean;
  readonly propagation: PropagationStats;
  readonly forgettingUntil: string | undefined;
}

interface Snapshot {
  readonly cluster: Cluster;
  readonly services: readonly ProxiedService[];
  readonly pods: readonly EnforcedPod[];
  readonly resourceVersion: number;
  readonly changedAt: number;
}

function podFromObject(object: KubeObject, running: RunningPod): Pod & { ip: string } {
  const spec = (object.spec ?? {}) as {
    containers?: { ports?: { name?: string; containerPort: number; protocol?: Protocol }[] }[];
  };
  return {
    namespace: running.namespace,
    name: running.name,
    labels: object.metadata.labels ?? {},
    ip: running.ip,
    ...(running.ips.length > 1 ? { ips: running.ips } : {}),
    hostNetwork: running.hostNetwork,
    ports: (spec.containers ?? []).flatMap((c) =>
      (c.ports ?? []).map((p) => ({
        ...(p.name ? { name: p.name } : {}),
        port: p.containerPort,
        protocol: p.protocol ?? 'TCP',
      })),
    ),
  };
}

interface SlicePort {
  name?: string;
  port: number;
  protocol?: string;
}

/**
 * What kube-proxy reads: each Service port with its ClusterIP, and the ready endpoints
 * of its EndpointSlices on the port of the same name.
 */
export function proxiedServices(
  services: readonly KubeObject[],
  slices: readonly KubeObject[],
): ProxiedService[] {
  return services.flatMap((service) => {
    const spec = (service.spec ?? {}) as {
      clusterIP?: string;
      ports?: { name?: string; port: number; protocol?: Protocol }[];
    };
    const clusterIP = spec.clusterIP;
    if (!clusterIP || clusterIP === 'None') return [];
    const own = slices.filter(
      (slice) =>
        slice.metadata.namespace === service.metadata.namespace &&
        slice.metadata.labels?.[SERVICE_NAME_LABEL] === service.metadata.name,
    );
    return (spec.ports ?? []).map((entry) => {
      const protocol = entry.protocol ?? 'TCP';
      const backends = own.flatMap((slice) => {
        const port = ((slice['ports'] ?? []) as SlicePort[]).find(
          (p) => (p.name ?? '') === (entry.name ?? '') && (p.protocol ?? 'TCP') === protocol,
        )?.port;
        if (port === undefined) return [];
        const endpoints = (slice['endpoints'] ?? []) as {
          addresses: string[];
          conditions?: { ready?: boolean };
        }[];
        return endpoints
          .filter((e) => e.conditions?.ready !== false)
          .flatMap((e) => e.addresses.slice(0, 1).map((ip) => ({ ip, port })));
      });
      return { clusterIP, port: entry.port, protocol, backends };
    });
  });
}

/**
 * Programs nftables in every pod's network namespace from the cluster state, and can be
 * broken on purpose (see faults.ts). It follows the API through store events, debounced,
 * and measures how long each change takes to be enforced.
 */
export class Enforcer {
  private faults: Fault[] = [];
  private readonly applied = new Map<string, string>();
  private appliedResourceVersion = 0;
  private firstUnappliedChange: number | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private readonly delayed = new Set<NodeJS.Timeout>();
  private chain: Promise<void> = Promise.resolve();
  /** How long the last programming took (computing and applying the rules). */
  private lastProgramMs = 0;
  /** The newest snapshot not yet being programmed. */
  private waiting: Snapshot | undefined;
  /**
   * Snapshots taken but not yet fully programmed. A fault changes no resourceVersion, so
   * without this the status would say "settled" while the faulted rules are still being
   * written pod by pod (a probe then saw one pod's old rules, in CI at stop 25).
   */
  private unfinished = 0;
  private forgettingUntil: number | undefined;
  private readonly durations: number[] = [];
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly options: EnforcerOptions) {}

  start(): void {
    const watched = new Set(
      [
        'Pod',
        'Namespace',
        'NetworkPolicy',
        'ClusterNetworkPolicy',
        'AdminNetworkPolicy',
        'BaselineAdminNetworkPolicy',
        'Service',
        'EndpointSlice',
      ].map((k) => resourceByKind(k)),
    );
    this.unsubscribe = this.options.store.subscribe((event) => {
      if (watched.has(event.resource)) this.changed();
    });
    this.changed();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    clearTimeout(this.debounce);
    this.delayed.forEach(clearTimeout);
    await this.chain;
  }

  /** Something the rules depend on changed (an API event, or a pod started/stopped). */
  changed(): void {
    const now = performance.now();
    this.firstUnappliedChange ??= now;
    clearTimeout(this.debounce);
    // Programming blocks the daemon (a lab of 500 pods takes seconds), and a burst of
    // changes (lab up applying 125 policies one request at a time) would then cost one
    // programming each. So the quiet period grows with the last programming's length, and
    // a steady trickle still gets programmed after four of them.
    const quiet = Math.min(2000, Math.max(this.options.debounceMs ?? 20, this.lastProgramMs / 4));
    const overdue = now - this.firstUnappliedChange >= 4 * quiet;
    this.debounce = setTimeout(
      () => {
        this.schedule();
      },
      overdue ? 0 : quiet,
    );
  }

  get activeFaults(): readonly Fault[] {
    return this.faults;
  }

  setFault(fault: Fault): void {
    this.faults = [...this.faults.filter((f) => f.kind !== fault.kind), fault];
    this.options.log('fault set', { fault: formatFault(fault) });
    if (fault.kind === 'forget-on-restart') this.forget(fault.seconds);
    this.changed();
  }

  clearFaults(kind?: Fault['kind']): void {
    this.faults = kind ? this.faults.filter((f) => f.kind !== kind) : [];
    this.options.log('faults cleared', { fault: kind ?? 'all' });
    this.changed();
  }

  status(): EnforcerStatus {
    const sorted = [...this.durations].sort((a, b) => a - b);
    return {
      faults: this.faults.map(formatFault),
      appliedResourceVersion: this.appliedResourceVersion,
      pending:
        this.firstUnappliedChange !== undefined || this.delayed.size > 0 || this.unfinished > 0,
      propagation: {
        count: this.durations.length,
        lastMs: this.durations[this.durations.length - 1],
        medianMs: sorted[Math.floor(sorted.length / 2)],
        maxMs: sorted[sorted.length - 1],
      },
      forgettingUntil:
        this.forgettingUntil === undefined
          ? undefined
          : new Date(this.forgettingUntil).toISOString(),
    };
  }

  private snapshot(changedAt: number): Snapshot {
    const { store } = this.options;
    const type = (kind: string): NonNullable<ReturnType<typeof resourceByKind>> => {
      const found = resourceByKind(kind);
      if (!found) throw new Error(`${kind} is not served`);
      return found;
    };
    const resourceVersion = store.resourceVersion;
    const namespaces: Namespace[] = store
      .list(type('Namespace'))
      .items.map((n) => ({ name: n.metadata.name, labels: n.metadata.labels ?? {} }));
    const objects = new Map(store.list(type('Pod')).items.map((p) => [p.metadata.uid, p]));
    const pods: EnforcedPod[] = this.options.pods().flatMap((running) => {
      const object = objects.get(running.uid);
      return object && running.netns
        ? [{ pod: podFromObject(object, running), netns: running.netns }]
        : [];
    });
    const policies = store.list(type('NetworkPolicy')).items as unknown as NetworkPolicy[];
    const clusterPolicies = (
      ['ClusterNetworkPolicy', 'AdminNetworkPolicy', 'BaselineAdminNetworkPolicy'] as const
    ).flatMap((kind) => store.list(type(kind)).items as unknown as ClusterPolicyManifest[]);
    return {
      cluster: { namespaces, pods: pods.map((p) => p.pod), policies, clusterPolicies },
      services: proxiedServices(
        store.list(type('Service')).items,
        store.list(type('EndpointSlice')).items,
      ),
      pods,
      resourceVersion,
      changedAt,
    };
  }

  /** Takes the state now and programs it now, or after the `delay` fault's seconds. */
  private schedule(): void {
    const changedAt = this.firstUnappliedChange ?? performance.now();
    this.firstUnappliedChange = undefined;
    const snapshot = this.snapshot(changedAt);
    const delay = this.faults.find((f) => f.kind === 'delay');
    if (!delay || delay.seconds === 0) {
      this.enqueue(snapshot);
      return;
    }
    const timer = setTimeout(() => {
      this.delayed.delete(timer);
      this.enqueue(snapshot);
    }, delay.seconds * 1000);
    this.delayed.add(timer);
  }

  /**
   * Programs a snapshot after those before it. Snapshots that queue up behind a slow
   * programming (hundreds of pods starting) collapse into the newest, which holds them
   * all; its propagation counts from the oldest change it carries.
   */
  private enqueue(snapshot: Snapshot): void {
    if (this.waiting) {
      this.waiting = {
        ...snapshot,
        changedAt: Math.min(this.waiting.changedAt, snapshot.changedAt),
      };
      return;
    }
    this.waiting = snapshot;
    this.unfinished++;
    this.chain = this.chain
      .then(() => {
        const next = this.waiting;
        this.waiting = undefined;
        return next ? this.program(next) : undefined;
      })
      .catch((error: unknown) => {
        this.options.log('programming failed', { error: String(error) });
      })
      .finally(() => {
        this.unfinished--;
      });
  }

  private async program(snapshot: Snapshot): Promise<void> {
    if (this.forgettingUntil !== undefined) return;
    const started = performance.now();
    try {
      await this.programRules(snapshot);
    } finally {
      this.lastProgramMs = performance.now() - started;
    }
  }

  private async programRules(snapshot: Snapshot): Promise<void> {
    const semantic = faultedCluster(snapshot.cluster, this.faults);
    const flaky = this.faults.find((f) => f.kind === 'flaky');
    const rulesets = buildRulesets(semantic, snapshot.pods, {
      baselineBeforeNetworkPolicies: this.faults.some(
        (f) => f.kind === 'baseline-over-networkpolicy',
      ),
      reject: this.faults.some((f) => f.kind === 'reject-instead-of-drop'),
      flakyRatio: flaky?.kind === 'flaky' ? flaky.ratio : 0,
      services: snapshot.services,
      serviceBypass: this.faults.some((f) => f.kind === 'service-bypass'),
      hairpinDeny: this.faults.some((f) => f.kind === 'hairpin-deny'),
      ignoreIpv6: this.faults.some((f) => f.kind === 'ignore-ipv6'),
    });
    const live = new Set(snapshot.pods.map((p) => p.netns));
    for (const netns of [...this.applied.keys()]) if (!live.has(netns)) this.applied.delete(netns);
    const changed = [...rulesets].filter(([netns, ruleset]) => this.applied.get(netns) !== ruleset);
    await Promise.all(
      changed.map(async ([netns, ruleset]) => {
        await runChecked('nsenter', [`--net=${netnsPath(netns)}`, 'nft', '-f', '-'], {
          input: replaceTableScript(ruleset),
        });
        this.applied.set(netns, ruleset);
      }),
    );
    this.appliedResourceVersion = snapshot.resourceVersion;
    const took = performance.now() - snapshot.changedAt;
    this.durations.push(took);
    if (this.durations.length > 200) this.durations.shift();
    if (changed.length > 0)
      this.options.log('rules programmed', {
        pods: changed.length,
        propagationMs: Math.round(took),
      });
  }

  /** A simulated enforcer restart that loses every rule for `seconds`. */
  private forget(seconds: number): void {
    this.forgettingUntil = Date.now() + seconds * 1000;
    this.chain = this.chain.then(async () => {
      await Promise.all(
        [...this.applied.keys()].map((netns) =>
          runChecked('nsenter', [`--net=${netnsPath(netns)}`, 'nft', '-f', '-'], {
            input: FLUSH_SCRIPT,
          }).catch(() => undefined),
        ),
      );
      this.applied.clear();
      this.options.log('enforcer restarted and forgot its rules', { seconds });
    });
    const timer = setTimeout(() => {
      this.delayed.delete(timer);
      this.forgettingUntil = undefined;
      this.changed();
    }, seconds * 1000);
    this.delayed.add(timer);
  }
}
