import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { MessageBus, type Logger } from '#lumen/messaging';

/** Variables every Lumen service reads. */
export const commonConfig = {
  NATS_URL: z.string().regex(/^(nats|tls):\/\/.+/, 'must be a nats:// or tls:// URL'),
  NATS_USER: z.string().optional(),
  NATS_PASSWORD: z.string().optional(),
  /** PEM file of the CA that signed the NATS server's certificate (a tls:// URL only). */
  NATS_CA_FILE: z.string().optional(),
  /**
   * How many JetStream servers keep each stream and bucket the service makes: the servers
   * in the cluster (the chart sets nats.replicas), so that losing one loses nothing.
   */
  NATS_STREAM_REPLICAS: integer(1, 5, 1),
  LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  /** otlp sends traces to OTEL_EXPORTER_OTLP_ENDPOINT; none keeps trace ids only. */
  OTEL_TRACES_EXPORTER: z.enum(['otlp', 'none']).default('none'),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),
};

export function integer(
  min: number,
  max: number,
  fallback: number,
): z.ZodDefault<z.ZodCoercedNumber> {
  return z.coerce.number().int().min(min).max(max).default(fallback);
}

/** A setting that is `true` or `false` (default `false`), read as a boolean. */
export function flag(): z.ZodPipe<
  z.ZodDefault<z.ZodEnum<{ true: 'true'; false: 'false' }>>,
  z.ZodTransform<boolean, 'true' | 'false'>
> {
  return z
    .enum(['true', 'false'], 'must be true or false')
    .default('false')
    .transform((v) => v === 'true');
}

/** A Kubernetes label key (an optional DNS prefix and a name), with its default. */
export function labelKey(fallback: string): z.ZodDefault<z.ZodString> {
  return z
    .string()
    .regex(
      /^([a-z0-9.-]{1,253}\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/,
      'must be a label key',
    )
    .default(fallback);
}

/** The NATS part of every service's configuration. */
export interface NatsConfig {
  readonly NATS_URL: string;
  readonly NATS_USER?: string | undefined;
  readonly NATS_PASSWORD?: string | undefined;
  readonly NATS_CA_FILE?: string | undefined;
  readonly NATS_STREAM_REPLICAS?: number | undefined;
  /**
   * A file holding a token to connect with instead of user and password, read at every
   * (re)connect: the prober's projected ServiceAccount token under NATS auth callout (ADR 0016).
   */
  readonly NATS_TOKEN_FILE?: string | undefined;
  /**
   * A NATS credentials file (user JWT and seed, `.creds`), read at every (re)connect: a
   * per-node user an operator provisions on each node for its own NATS server (ADR 0016).
   */
  readonly NATS_CREDS_FILE?: string | undefined;
}

/** Connects a service to NATS with its credentials; by default it ensures Lumen's streams. */
export function connectBus(
  service: string,
  config: NatsConfig,
  log: Logger,
  options: Pick<
    Parameters<typeof MessageBus.connect>[0],
    'manageStreams' | 'awaitStreams' | 'inboxPrefix'
  > = {},
): Promise<MessageBus> {
  return MessageBus.connect({
    url: config.NATS_URL,
    service,
    ...(config.NATS_TOKEN_FILE
      ? { token: tokenFromFile(config.NATS_TOKEN_FILE) }
      : config.NATS_CREDS_FILE
        ? { credsFile: config.NATS_CREDS_FILE }
        : config.NATS_USER
          ? { user: config.NATS_USER, pass: config.NATS_PASSWORD ?? '' }
          : {}),
    ...(config.NATS_CA_FILE ? { caFile: config.NATS_CA_FILE } : {}),
    ...(config.NATS_STREAM_REPLICAS ? { streamReplicas: config.NATS_STREAM_REPLICAS } : {}),
    log,
    ...options,
  });
}

/** Reads the token file at every call: kubelet rewrites a projected token before it expires. */
function tokenFromFile(file: string): () => string {
  return () => {
    const token = readFileSync(file, 'utf8').trim();
    if (!token) throw new Error(`NATS_TOKEN_FILE ${file} is empty`);
    return token;
  };
}
