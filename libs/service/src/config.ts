import type { z } from 'zod';
import { natsTls } from '#lumen/messaging';

/** A configuration that cannot be used: the message names every bad variable. */
export class ConfigError extends Error {
  constructor(service: string, problems: readonly string[]) {
    super(`${service}: invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Reads a service's configuration from the environment once, at boot, into a typed
 * object. Nothing else reads process.env.
 */
export function loadConfig<T>(
  service: string,
  schema: z.ZodType<T>,
  env: NodeJS.ProcessEnv = process.env,
): T {
  const parsed = schema.safeParse(env);
  if (parsed.success) {
    natsTlsOrThrow(service, parsed.data);
    return parsed.data;
  }
  throw new ConfigError(
    service,
    parsed.error.issues.map(
      (issue) => `${issue.path.join('.') || '(environment)'}: ${issue.message}`,
    ),
  );
}

/** A tls:// URL's CA file is read at boot, and a CA beside a nats:// URL refused there. */
function natsTlsOrThrow(service: string, config: unknown): void {
  const { NATS_URL: url, NATS_CA_FILE: caFile } = (config ?? {}) as Record<string, unknown>;
  if (typeof url !== 'string') return;
  try {
    natsTls(url, typeof caFile === 'string' ? caFile : undefined);
  } catch (error) {
    throw new ConfigError(service, [`NATS_CA_FILE: ${(error as Error).message}`]);
  }
}
