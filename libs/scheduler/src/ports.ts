import type { CaseTracer, Clock, Log, ProberHeartbeat, Publisher } from '#lumen/contracts';

/** Which nodes have a live prober now; ProberRegistry (libs/messaging, a JetStream KV) is the real one. */
export interface LiveProbers {
  live(now: Date): Promise<ReadonlyMap<string, ProberHeartbeat>>;
}

/** What the scheduler reports about its queues; libs/telemetry has the Prometheus one. */
export interface SchedulerMetrics {
  /** Targets dispatched and not answered, per node, and cases waiting for dispatch. */
  queues(inFlightByNode: ReadonlyMap<string, number>, waiting: number): void;
  unschedulable(): void;
}

export const noSchedulerMetrics: SchedulerMetrics = {
  queues: () => undefined,
  unschedulable: () => undefined,
};

/** Everything the scheduler's core reaches outside itself. */
export interface SchedulerPorts {
  /** Batches on lumen.v1.probe.<node>, reports on lumen.v1.unschedulable. */
  readonly bus: Publisher;
  readonly probers: LiveProbers;
  readonly clock: Clock;
  readonly log: Log;
  readonly tracer: CaseTracer;
  readonly metrics: SchedulerMetrics;
}
