/** The planner's settings; the defaults below are the only ones (service and `lumen run`). */
export interface PlannerSettings {
  /** Extra sampled cases per plan beyond the obligations. */
  readonly sampleBudget: number;
  /** Lumen's namespace for synthetic sources; undefined keeps them off (the default). */
  readonly syntheticNamespace?: string;
  readonly seed?: string;
  /** Candidate pods per class in each case message. */
  readonly maxCandidates: number;
  /** Pods of namespaces labelled `<optOutLabel>=true` are neither probed nor probe sources. */
  readonly optOutLabel?: string;
}

export const PLANNER_DEFAULTS = {
  sampleBudget: 0,
  maxCandidates: 10,
  optOutLabel: 'lumen.dev/ignore',
  /** A full sweep re-publishes every case this often. */
  sweepIntervalMs: 300_000,
  /** Bursts of cluster events are gathered this long before re-planning. */
  debounceMs: 1000,
  syntheticNamespace: 'lumen-synthetic',
  syntheticImage: 'registry.k8s.io/pause:3.10',
} as const;
