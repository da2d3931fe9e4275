import type { CaseTracer, Clock, Log, Publisher } from '#lumen/contracts';
import type { Cluster, ClusterPolicyKind, Pod } from '#lumen/policy';
import type { MatrixCoverage, NotJudged, UnmodelledPolicy } from './plan.js';

/** A pod as the watcher sees it: policy facts plus where it runs. */
export type ObservedPod = Pod & {
  readonly uid: string;
  readonly node: string | undefined;
  readonly running: boolean;
};

/** The cluster as the planner takes it: the whole model and what changed since the last view. */
export interface ClusterView {
  readonly cluster: Cluster;
  /** CNI-specific policy objects Lumen does not model (absent: none found). */
  readonly unmodelled?: readonly UnmodelledPolicy[];
  readonly pods: readonly ObservedPod[];
  readonly changes: readonly {
    readonly kind:
      | 'Namespace'
      | 'Pod'
      | 'NetworkPolicy'
      | 'Service'
      | 'EndpointSlice'
      | ClusterPolicyKind
      | 'UnmodelledPolicy';
    readonly type: 'upsert' | 'delete';
    /** "name" for namespaces and cluster-scoped policies, "namespace/name" otherwise. */
    readonly key: string;
  }[];
}

/** Creates and removes Lumen's synthetic source pods; SyntheticPods (libs/kube) is the real one. */
export interface SyntheticSources {
  reconcile(
    namespace: string,
    wanted: readonly { namespace: string; labels: Readonly<Record<string, string>> }[],
  ): Promise<{ created: string[]; deleted: string[] }>;
  removeAll(namespace: string): Promise<void>;
}

/** What the planner reports about its plan; libs/telemetry has the Prometheus one. */
export interface PlannerMetrics {
  planned(cases: number, coverage: MatrixCoverage): void;
  /** Policy objects Lumen does not model, the cases each kept from judgment, and how many in all. */
  notJudged(objects: readonly NotJudged[], cases: number): void;
}

export const noPlannerMetrics: PlannerMetrics = {
  planned: () => undefined,
  notJudged: () => undefined,
};

/** Everything the planner's core reaches outside itself. */
export interface PlannerPorts {
  /** Cases on lumen.v1.cases, the policy inventory on lumen.v1.policies, the matrix on lumen.v1.coverage. */
  readonly bus: Publisher;
  readonly clock: Clock;
  readonly log: Log;
  readonly tracer: CaseTracer;
  readonly metrics: PlannerMetrics;
  /** Only with synthetic sources switched on. */
  readonly synthetic?: SyntheticSources;
}
