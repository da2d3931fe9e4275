/** The planner's settings; the defaults below are the only ones (service and `lumen run`). */
export interface PlannerSettings {
  /**
   * What a plan probes: the obligations and, within the probe budget, the matrix cells
   * probed least recently (`budget`); every cell (`full`); or the obligations alone.
   */
  readonly coverage: CoverageMode;
  /** Probes per plan; 0 derives it from the nodes and the sweep interval. */
  readonly probeBudget: number;
  /** How often a sweep comes: the derived budget fills this share of it. */
  readonly sweepIntervalMs: number;
  /** Lumen's namespace for synthetic sources; undefined keeps them off (the default). */
  readonly syntheticNamespace?: string;
  /** At most this many synthetic source pods at once; undefined takes the default. */
  readonly maxSyntheticSources?: number;
  /** Candidate pods per class in each case message. */
  readonly maxCandidates: number;
  /** Pods of namespaces labelled `<optOutLabel>=true` are neither probed nor probe sources. */
  readonly optOutLabel?: string;
  /**
   * Rotation cells per plan above which they travel as cell blocks (ADR 0013); undefined
   * takes PLANNER_DEFAULTS.rotationBlocksAbove.
   */
  readonly rotationBlocksAbove?: number;
}

export type CoverageMode = 'budget' | 'full' | 'obligations';

export const PLANNER_DEFAULTS = {
  coverage: 'budget' as CoverageMode,
  probeBudget: 0,
  /**
   * Probes a node's prober is asked for per second of a sweep when the budget is derived:
   * below one batched nmap's measured 55 probes/s (docs/benchmarks.md, bench:prober), and
   * only for half of the sweep, so re-probes and changes find room.
   */
  probesPerSecondPerNode: 50,
  sweepShare: 0.5,
  maxCandidates: 10,
  /**
   * Rotation cells per plan above which they travel as cell blocks (ADR 0013): the
   * 20,000-pod cluster rotates 3.75 M a sweep; the 500-pod lab's whole matrix (30,351
   * cells) stays cases, each with its explanation and trace.
   */
  rotationBlocksAbove: 50_000,
  optOutLabel: 'lumen.dev/ignore',
  /** A full sweep re-publishes every case this often. */
  sweepIntervalMs: 300_000,
  /** Bursts of cluster events are gathered this long before re-planning. */
  debounceMs: 1000,
  /**
   * How often the policy CRDs not installed at start (ClusterNetworkPolicy and the
   * v1alpha1 kinds; Cilium, Calico, Antrea) are looked for again: one list call each.
   */
  crdDiscoveryMs: 60_000,
  syntheticNamespace: 'lumen-synthetic',
  /**
   * Synthetic source pods at most: tenants choose their labels through their selectors, so
   * their number is capped; the near misses beyond stay "not generated", with why.
   */
  maxSyntheticSources: 50,
  syntheticImage: 'registry.k8s.io/pause:3.10',
} as const;

/** The probe budget of one plan: given, or nodes × rate × the share of a sweep. */
export function probeBudget(
  settings: Pick<PlannerSettings, 'probeBudget' | 'sweepIntervalMs'>,
  nodes: number,
): number {
  if (settings.probeBudget > 0) return settings.probeBudget;
  return Math.floor(
    Math.max(1, nodes) *
      PLANNER_DEFAULTS.probesPerSecondPerNode *
      (settings.sweepIntervalMs / 1000) *
      PLANNER_DEFAULTS.sweepShare,
  );
}

/** A one-shot run has no sweeps: its derived budget is that of a sweep this long. */
export const ONE_PASS_MS = 60_000;
