export interface SchedulerSettings {
  readonly maxTargetsPerBatch: number;
  /** Batches per second and node, and the burst allowed. */
  readonly ratePerNode: number;
  readonly burstPerNode: number;
  /**
   * Batches a node's prober holds at once (running or queued for it). More work waits in
   * the scheduler, unacked, where it gathers into fuller batches instead of flooding the
   * prober's queue.
   */
  readonly maxBatchesInFlightPerNode: number;
  /** Cases gathered this long before they are cut into batches. */
  readonly gatherMs: number;
  /** A batch without a result after this long is dispatched again. */
  readonly redispatchAfterMs: number;
  /** After start, wait this long for probers to announce themselves before calling a case unschedulable. */
  readonly startupGraceMs: number;
  /** Re-dispatches of one piece of work before it is reported unschedulable. */
  readonly maxDispatches: number;
}

/**
 * The scheduler's defaults, for the service and `lumen run` alike. The gather window is
 * short: a round's cases arrive within milliseconds of each other, and every 100 ms of
 * gathering is 100 ms later first verdicts (the service used 200 ms, `lumen run` 100 ms).
 */
export const SCHEDULER_DEFAULTS: SchedulerSettings = {
  maxTargetsPerBatch: 200,
  ratePerNode: 20,
  burstPerNode: 40,
  // Twice a prober's default concurrency (4): one batch waits ready for each nmap that ends.
  maxBatchesInFlightPerNode: 8,
  gatherMs: 100,
  redispatchAfterMs: 120_000,
  startupGraceMs: 15_000,
  maxDispatches: 3,
};

/**
 * Each node's prober consumer, which the scheduler makes (ADR 0014).
 * - ackWaitMs: how long a batch may go unacked before JetStream gives it to its node's
 *   prober again: the default nmap host timeout (60 s) and 30 s to spare. A prober working
 *   on a batch tells the server so every third of it (a dual-stack batch runs two scans),
 *   so only a crashed prober's batches wait this long.
 * - maxDeliver: a batch that kills its prober every time it is taken (a poison batch) is
 *   not handed out forever; after this many deliveries the server stops, and the scheduler
 *   re-dispatches the work as a new attempt once no result came in time.
 */
export const PROBER_CONSUMER_SETTINGS = { ackWaitMs: 90_000, maxDeliver: 3 } as const;

/** How often the scheduler looks for work held by silent probers. */
export const PROBER_WATCH_INTERVAL_MS = 1000;
