import { Controller, Get, Headers, Inject, Param, Query } from '@nestjs/common';
import { openApiDocument } from './openapi.js';
import { ReporterApi } from './reporter-api.js';

export const REPORTER_API = Symbol('REPORTER_API');

/** `/api/v1`: thin routes over ReporterApi, which authenticates, validates and scopes. */
@Controller('api/v1')
export class ResultsController {
  constructor(@Inject(REPORTER_API) private readonly api: ReporterApi) {}

  @Get('openapi.json')
  openapi(): object {
    return openApiDocument();
  }

  @Get('summary')
  summary(@Headers('authorization') authorization?: string): Promise<object> {
    return this.api.summary(authorization);
  }

  @Get('outcomes')
  outcomes(
    @Query() query: unknown,
    @Headers('authorization') authorization?: string,
  ): Promise<object> {
    return this.api.outcomes(authorization, query);
  }

  @Get('cases/:caseId')
  caseDetail(
    @Param('caseId') caseId: string,
    @Query() query: unknown,
    @Headers('authorization') authorization?: string,
  ): Promise<object> {
    return this.api.caseDetail(authorization, caseId, query);
  }

  @Get('cases/:caseId/attempts')
  attempts(
    @Param('caseId') caseId: string,
    @Query() query: unknown,
    @Headers('authorization') authorization?: string,
  ): Promise<object> {
    return this.api.attempts(authorization, caseId, query);
  }

  @Get('coverage')
  coverage(
    @Query() query: unknown,
    @Headers('authorization') authorization?: string,
  ): Promise<object> {
    return this.api.coverage(authorization, query);
  }

  @Get('latency')
  latency(
    @Query() query: unknown,
    @Headers('authorization') authorization?: string,
  ): Promise<object> {
    return this.api.latency(authorization, query);
  }
}
