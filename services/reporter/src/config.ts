import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { z } from 'zod';
import { ApiTokens } from '#lumen/access';
import { parseReceivers, type Receiver } from '#lumen/alerting';
import { REPORTER_DEFAULTS } from '#lumen/reporter';
import { commonConfig, integer, leaderElectionConfig } from '#lumen/service';

/** A file named by a variable, parsed at boot: its problems fail the boot like any bad value. */
function configFile<T>(parse: (text: string, path: string) => T, empty: T) {
  return z
    .string()
    .min(1)
    .optional()
    .transform((path, context): T => {
      if (!path) return empty;
      try {
        return parse(readFileSync(path, 'utf8'), path);
      } catch (error) {
        context.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    });
}

/** The reporter's environment, validated once at boot. */
export const reporterConfigSchema = z.object({
  ...commonConfig,
  ...leaderElectionConfig,
  /** postgres:// for PostgreSQL; without it, SQLite at SQLITE_PATH. */
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\/.+/, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  SQLITE_PATH: z.string().min(1).default('/var/lib/lumen/lumen.db'),
  SETTLE_WINDOW_MS: integer(0, 3_600_000, REPORTER_DEFAULTS.race.settleWindowMs),
  MAX_ATTEMPTS: integer(1, 20, REPORTER_DEFAULTS.race.maxAttempts),
  BACKOFF_MS: integer(0, 600_000, REPORTER_DEFAULTS.race.backoffMs),
  CONFIRM_ATTEMPTS: integer(1, 20, REPORTER_DEFAULTS.race.confirmAttempts),
  /** Each case's newest probe attempts kept, whatever they saw. */
  RETENTION_ATTEMPTS_PER_CASE: integer(1, 1000, REPORTER_DEFAULTS.retention.attemptsPerCase),
  /** Outcome history, evidence of failures and changes, and unplanned cases are kept this long. */
  RETENTION_MAX_AGE_HOURS: integer(1, 24 * 3650, REPORTER_DEFAULTS.retention.maxAgeMs / 3_600_000),
  RETENTION_EVERY_MS: integer(10_000, 86_400_000, REPORTER_DEFAULTS.retention.everyMs),
  HTTP_PORT: integer(1, 65535, 8084),
  /** The cluster's name in alerts. */
  CLUSTER_NAME: z
    .string()
    .regex(/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/, 'must be a short name')
    .default('cluster'),
  /** How people reach this API, for links in alerts (default: this host and HTTP_PORT). */
  PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** YAML: `tokens: [{name, token, namespaces?}]`; without it, the API answers 401. */
  API_TOKENS_FILE: configFile(
    (text, path): { path: string | undefined; tokens: ApiTokens } => ({
      path,
      tokens: ApiTokens.parse(text, path),
    }),
    { path: undefined, tokens: new ApiTokens([]) },
  ),
  /**
   * How often the tokens file is read again: a rotated Secret takes effect without a
   * restart (the kubelet updates the mounted file within a minute or so).
   */
  API_TOKENS_RELOAD_MS: integer(100, 3_600_000, 10_000),
  /** YAML: `receivers: [{name, type, url, secret?, namespaces?, severities?}]` (docs/alerts.md). */
  ALERT_RECEIVERS_FILE: configFile<Receiver[]>(parseReceivers, []),
  ALERT_GROUP_WAIT_MS: integer(0, 600_000, 1000),
  ALERT_GROUP_INTERVAL_MS: integer(0, 3_600_000, 30_000),
  ALERT_RETRY_BASE_MS: integer(100, 600_000, 1000),
  ALERT_RETRY_MAX_MS: integer(1000, 86_400_000, 300_000),
  ALERT_DISPATCH_INTERVAL_MS: integer(100, 60_000, 1000),
  ALERT_HTTP_TIMEOUT_MS: integer(100, 120_000, 10_000),
  ALERTMANAGER_RESEND_MS: integer(10_000, 3_600_000, 60_000),
});

export type ReporterConfig = z.infer<typeof reporterConfigSchema>;

export function publicUrl(config: ReporterConfig): string {
  return (config.PUBLIC_URL ?? `http://${hostname()}:${config.HTTP_PORT}`).replace(/\/+$/, '');
}
