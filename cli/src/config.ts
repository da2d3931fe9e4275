import { DEFAULT_LAB_ROOT } from '#lumen/lab';
import { natsTls } from '#lumen/messaging';

/** The CLI's environment, read once. */
export interface CliConfig {
  /** Where labs keep their state (LUMEN_LAB_ROOT). */
  readonly labRoot: string;
  /** An existing NATS server with JetStream (NATS_URL); without one, commands start their own. */
  readonly natsUrl: string | undefined;
  /** The NATS_URL server's user (NATS_USER, NATS_PASSWORD), if it requires one. */
  readonly natsCredentials: { readonly user: string; readonly password: string } | undefined;
  /** PEM of the CA that signed the NATS_URL server's certificate (NATS_CA_FILE; tls:// only). */
  readonly natsCaFile: string | undefined;
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
  const natsCaFile = env.NATS_CA_FILE || undefined;
  if (natsCaFile && !natsUrl) throw new Error('NATS_CA_FILE is set, but NATS_URL is not');
  if (natsUrl) natsTls(natsUrl, natsCaFile);
  return {
    labRoot,
    natsUrl,
    natsCredentials: env.NATS_USER
      ? { user: env.NATS_USER, password: env.NATS_PASSWORD ?? '' }
      : undefined,
    natsCaFile,
    databaseUrl: env.DATABASE_URL || undefined,
    otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined,
  };
}
