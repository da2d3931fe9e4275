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

/** The reporter's defaults, for the service and `lumen run` alike. */
export const REPORTER_DEFAULTS = {
  race: { settleWindowMs: 10_000, maxAttempts: 3, backoffMs: 1_000, confirmAttempts: 1 },
} as const satisfies { race: RaceSettings };
