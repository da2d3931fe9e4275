import type { z } from 'zod';

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
  if (parsed.success) return parsed.data;
  throw new ConfigError(
    service,
    parsed.error.issues.map(
      (issue) => `${issue.path.join('.') || '(environment)'}: ${issue.message}`,
    ),
  );
}
