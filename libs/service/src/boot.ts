import { NestFactory } from '@nestjs/core';
import type { DynamicModule } from '@nestjs/common';
import type { z } from 'zod';
import { startTelemetry } from '#lumen/telemetry';
import { ConfigError, loadConfig } from './config.js';
import { JsonLogger } from './logger.js';

interface BaseConfig {
  readonly LOG_LEVEL: 'debug' | 'info' | 'warn' | 'error';
  readonly HTTP_PORT: number;
  readonly OTEL_TRACES_EXPORTER: 'otlp' | 'none';
  readonly OTEL_EXPORTER_OTLP_ENDPOINT?: string | undefined;
}

/**
 * A service's main: telemetry first, then the validated configuration (exit 2 naming
 * every bad variable), then Nest with JSON logs, health endpoints and shutdown hooks.
 */
export async function bootService<C extends BaseConfig>(
  service: string,
  schema: z.ZodType<C>,
  module: (config: C) => DynamicModule,
): Promise<void> {
  let config: C;
  try {
    config = loadConfig(service, schema);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
  startTelemetry({
    service,
    exporter: config.OTEL_TRACES_EXPORTER,
    ...(config.OTEL_EXPORTER_OTLP_ENDPOINT
      ? { otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT }
      : {}),
  });
  const app = await NestFactory.create(module(config), {
    logger: new JsonLogger(service, config.LOG_LEVEL),
  });
  app.enableShutdownHooks();
  await app.listen(config.HTTP_PORT, '0.0.0.0');
}
