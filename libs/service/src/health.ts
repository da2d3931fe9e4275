import {
  Controller,
  Get,
  HttpCode,
  Inject,
  Module,
  ServiceUnavailableException,
  type DynamicModule,
} from '@nestjs/common';

export const READINESS = Symbol('READINESS');

/** Readiness: every check returns undefined when ready, or why not. */
export type ReadinessCheck = () => string | undefined;

@Controller()
class HealthController {
  constructor(@Inject(READINESS) private readonly checks: readonly ReadinessCheck[]) {}

  @Get('healthz')
  @HttpCode(200)
  healthz(): { status: string } {
    return { status: 'ok' };
  }

  @Get('readyz')
  readyz(): { status: string } {
    const problems = this.checks
      .map((check) => check())
      .filter((p): p is string => p !== undefined);
    if (problems.length > 0)
      throw new ServiceUnavailableException({ status: 'not ready', problems });
    return { status: 'ready' };
  }
}

/** `/healthz` (the process is alive) and `/readyz` (it can do its work). */
@Module({})
class HealthModule {}

export function healthModule(checks: () => readonly ReadinessCheck[]): DynamicModule {
  return {
    module: HealthModule,
    controllers: [HealthController],
    providers: [{ provide: READINESS, useFactory: checks }],
  };
}
