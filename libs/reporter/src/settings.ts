import type { RetentionPolicy } from '#lumen/contracts';

/** The verdict model's race handling (DESIGN: verdict model, races). */
export interface RaceSettings {
  /** After a relevant change, a mismatch is not yet a failure for this long (CNIs apply policies late). */
  readonly settleWindowMs: number;
  /** Probes per case before a final outcome. */
  readonly maxAttempts: number;
  /** First re-probe delay; doubles with each attempt. */
  readonly backoffMs: number;
  /**
   * Conclusive attempts that must agree before a pass is final (default 1). More finds
   * flaky enforcement (a CNI that drops only some packets) at the cost of more probes.
   */
  readonly confirmAttempts?: number;
}

/** The store's retention, applied by the reporter every `everyMs`. */
export interface RetentionSettings extends RetentionPolicy {
  readonly everyMs: number;
}

/** The reporter's defaults, for the service and `lumen run` alike. */
export const REPORTER_DEFAULTS = {
  race: { settleWindowMs: 10_000, maxAttempts: 3, backoffMs: 1_000, confirmAttempts: 1 },
  // Ten attempts show a case's recent behaviour; fourteen days of history and evidence
  // cover the usual incident and change-review windows.
  retention: {
    attemptsPerCase: 10,
    maxAgeMs: 14 * 24 * 3_600_000,
    batchSize: 500,
    everyMs: 5 * 60_000,
  },
} as const satisfies { race: RaceSettings; retention: RetentionSettings };
