import { DEFAULT_LAB_ROOT } from '#lumen/lab';

/** The CLI's environment, read once. */
export interface CliConfig {
  /** Where labs keep their state (LUMEN_LAB_ROOT). */
  readonly labRoot: string;
  /** An existing NATS server with JetStream (NATS_URL); without one, commands start their own. */
  readonly natsUrl: string | undefined;
  /** PostgreSQL for results (DATABASE_URL); without one, SQLite. */
  readonly databaseUrl: string | undefined;
  /** An OTLP/HTTP collector for traces (OTEL_EXPORTER_OTLP_ENDPOINT). */
  readonly otlpEndpoint: string | undefined;
}

export function cliConfig(env: NodeJS.ProcessEnv = process.env): CliConfig {
  const labRoot = env.LUMEN_LAB_ROOT ?? DEFAULT_LAB_ROOT;
  if (!labRoot.startsWith('/'))
    throw new Error(`LUMEN_LAB_ROOT must be an absolute path, not "${labRoot}"`);
  const natsUrl = env.NATS_URL || undefined;
  if (natsUrl && !/^(nats|tls):\/\/.+/.test(natsUrl))
    throw new Error(`NATS_URL must be a nats:// or tls:// URL, not "${natsUrl}"`);
  return {
    labRoot,
    natsUrl,
    databaseUrl: env.DATABASE_URL || undefined,
    otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined,
  };
}
