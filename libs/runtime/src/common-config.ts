import { z } from 'zod';

/** Variables every Lumen service reads. */
export const commonConfig = {
  NATS_URL: z.string().regex(/^(nats|tls):\/\/.+/, 'must be a nats:// or tls:// URL'),
  NATS_USER: z.string().optional(),
  NATS_PASSWORD: z.string().optional(),
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
