import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { ConfigError, JsonLogger, loadConfig } from '#lumen/runtime';
import { ProberModule } from './app.module.js';
import { proberConfigSchema } from './config.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig('prober', proberConfigSchema);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  }
  const app = await NestFactory.create(ProberModule.forRoot(config), {
    logger: new JsonLogger('prober', config.LOG_LEVEL),
  });
  app.enableShutdownHooks();
  await app.listen(config.HTTP_PORT, '0.0.0.0');
}

await main();
