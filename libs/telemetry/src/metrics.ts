import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Lumen's Prometheus metrics, one registry per process. Labels take only bounded values
 * (outcome, node, receiver, policy, subject), never a pod pair or free text, so a large
 * cluster does not explode the series count.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry });

export const METRICS_CONTENT_TYPE = registry.contentType;

const registers = [registry];

/** Current cases by their latest outcome; the reporter sets it from the store at scrape time. */
export const casesByOutcome = new Gauge({
  name: 'lumen_cases',
  help: 'Cases by their latest outcome (pass, fail, flaky, inconclusive, undecided).',
  labelNames: ['outcome'] as const,
  registers,
});

export const verdicts = new Counter({
  name: 'lumen_verdicts_total',
  help: 'Final verdicts stored, by outcome.',
  labelNames: ['outcome'] as const,
  registers,
});

export const probes = new Counter({
  name: 'lumen_probes_total',
  help: 'Probe observations made by this prober, by reachability.',
  labelNames: ['node', 'reachability'] as const,
  registers,
});

export const probeBatchDuration = new Histogram({
  name: 'lumen_probe_batch_duration_seconds',
  help: 'Wall time of one nmap run over a batch of targets.',
  labelNames: ['node'] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
  registers,
});

export const enforcementLatency = new Histogram({
  name: 'lumen_enforcement_latency_seconds',
  help: 'Time from a policy change to the first probe that saw it enforced.',
  buckets: [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600],
  registers,
});

export const regressions = new Counter({
  name: 'lumen_regressions_total',
  help: 'Cases that turned from pass to fail (alerts fired), by severity.',
  labelNames: ['severity'] as const,
  registers,
});

export const regressionsFiring = new Gauge({
  name: 'lumen_regressions_firing',
  help: 'Regression alerts firing now.',
  registers,
});

/** Publishes a full stream refused (ADR 0019): the publisher keeps the work and tries again. */
export const publishRejected = new Counter({
  name: 'lumen_publish_rejected_total',
  help: 'Messages a stream refused because it was at its limits (discard new), by stream.',
  labelNames: ['stream'] as const,
  registers,
});

/** What each stream holds and may hold; the scheduler, which manages them, reads them. */
export const streamBytes = new Gauge({
  name: 'lumen_stream_bytes',
  help: 'Bytes a Lumen stream holds now (work not yet consumed, or its retained record).',
  labelNames: ['stream'] as const,
  registers,
});

export const streamMessages = new Gauge({
  name: 'lumen_stream_messages',
  help: 'Messages a Lumen stream holds now.',
  labelNames: ['stream'] as const,
  registers,
});

export const streamLimitBytes = new Gauge({
  name: 'lumen_stream_limit_bytes',
  help: 'The byte limit of a Lumen stream: at it, a work stream refuses new messages.',
  labelNames: ['stream'] as const,
  registers,
});

export const ruleCoverage = new Gauge({
  name: 'lumen_policy_rule_coverage_ratio',
  help: 'Share of a policy’s rules with a verified must-allow and must-deny case.',
  // Not `namespace`: Prometheus gives every series the namespace of the pod it scraped,
  // and would rename this one exported_namespace.
  labelNames: ['policy_namespace', 'policy'] as const,
  registers,
});

export const deadLetters = new Counter({
  name: 'lumen_dead_letters_total',
  help: 'Messages this service could not use, sent to lumen.v1.dead.',
  labelNames: ['subject'] as const,
  registers,
});

export const queueDepth = new Gauge({
  name: 'lumen_scheduler_queue_depth',
  help: 'Probe targets dispatched to a node and not answered yet.',
  labelNames: ['node'] as const,
  registers,
});

export const casesWaiting = new Gauge({
  name: 'lumen_scheduler_waiting_cases',
  help: 'Cases and re-probes gathered by the scheduler, not yet dispatched.',
  registers,
});

export const unschedulable = new Counter({
  name: 'lumen_unschedulable_total',
  help: 'Cases the scheduler could not give to any prober.',
  registers,
});

export const probersLive = new Gauge({
  name: 'lumen_probers_live',
  help: 'Nodes whose prober’s heartbeat the scheduler sees: the probers that can take work.',
  registers,
});

export const plannedCases = new Gauge({
  name: 'lumen_planned_cases',
  help: 'Cases in the planner’s current plan.',
  registers,
});

export const matrixCells = new Gauge({
  name: 'lumen_matrix_cells',
  help: 'Cells of the class matrix: (source class, destination class, declared port, protocol).',
  registers,
});

export const matrixCellsPlanned = new Gauge({
  name: 'lumen_matrix_cells_planned',
  help: 'Matrix cells the current plan probes: the obligations’ and those rotation took.',
  registers,
});

export const matrixSweepsPerRotation = new Gauge({
  name: 'lumen_matrix_sweeps_per_rotation',
  help: 'Sweeps it takes to probe every matrix cell at the probe budget (+Inf: never).',
  registers,
});

export const unmodelledPolicies = new Gauge({
  name: 'lumen_unmodelled_policies',
  help: 'Policy objects of kinds Lumen does not model (a CNI’s own), found in the cluster.',
  labelNames: ['group', 'kind'] as const,
  registers,
});

export const casesNotJudged = new Gauge({
  name: 'lumen_cases_not_judged',
  help: 'Cases of the current plan left unjudged because a policy Lumen does not model may affect them.',
  registers,
});

export const matrixCellsVerified = new Gauge({
  name: 'lumen_matrix_cells_verified',
  help: 'Matrix cells whose latest outcome is conclusive (pass, fail or flaky).',
  registers,
});

export const alertDeliveries = new Counter({
  name: 'lumen_alert_deliveries_total',
  help: 'Alert deliveries tried, by receiver and result (delivered, failed).',
  labelNames: ['receiver', 'result'] as const,
  registers,
});

export const alertOutboxPending = new Gauge({
  name: 'lumen_alert_outbox_pending',
  help: 'Alerts waiting in the outbox for a receiver.',
  labelNames: ['receiver'] as const,
  registers,
});

/** Values that are read, not counted: refreshed just before each scrape. */
const refreshers: (() => Promise<void> | void)[] = [];

export function refreshBeforeScrape(refresh: () => Promise<void> | void): void {
  refreshers.push(refresh);
}

/** The exposition text; a refresher that fails leaves its metrics as they were. */
export async function metricsText(): Promise<string> {
  await Promise.all(refreshers.map(async (r) => r()).map((p) => p.catch(() => undefined)));
  return registry.metrics();
}

/**
 * Every series name Lumen's services export, with its label names: a histogram's
 * _bucket (with le), _sum and _count. What the chart's alert rules and Grafana dashboard
 * may query; their tests check against it.
 */
export function exportedSeries(): Map<string, string[]> {
  const exported = new Map<string, string[]>();
  for (const metric of registry.getMetricsAsArray()) {
    // prom-client keeps each metric's label names on the metric itself.
    const labels = [
      ...((metric as unknown as { labelNames?: readonly string[] }).labelNames ?? []),
    ];
    const names =
      String(metric.type) === 'histogram'
        ? ['_bucket', '_sum', '_count'].map((suffix) => `${metric.name}${suffix}`)
        : [metric.name];
    for (const name of names)
      exported.set(name, name.endsWith('_bucket') ? [...labels, 'le'] : labels);
  }
  return exported;
}
