import {
  BadRequestException,
  Controller,
  Get,
  Headers,
  HttpException,
  Inject,
  NotFoundException,
  Param,
  Query,
  ServiceUnavailableException,
  UnauthorizedException,
} from '@nestjs/common';
import { ApiProblem, openApiDocument, type ResultsApi } from '#lumen/reporter';

export const RESULTS_API = Symbol('RESULTS_API');

const HTTP: Record<ApiProblem['status'], new (message: string) => HttpException> = {
  400: BadRequestException,
  401: UnauthorizedException,
  404: NotFoundException,
  503: ServiceUnavailableException,
};

/** An ApiProblem as Nest's HTTP exception: `{statusCode, message, error}`. */
async function answer<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ApiProblem) throw new HTTP[error.status](error.message);
    throw error;
  }
}

/** `/api/v1`: thin routes over ResultsApi, which authenticates, validates and scopes. */
@Controller('api/v1')
export class ResultsController {
  private readonly document = openApiDocument();

  constructor(@Inject(RESULTS_API) private readonly api: ResultsApi) {}

  @Get('openapi.json')
  openapi(): object {
    return this.document;
  }

  @Get('summary')
  summary(@Headers('authorization') authorization?: string): Promise<object> {
    return answer(() => this.api.summary(authorization));
  }

  @Get('outcomes')
  outcomes(
    @Query() query: unknown,
    @Headers('authorization') authorization?: string,
  ): Promise<object> {
    return answer(() => this.api.outcomes(authorization, query));
  }

  @Get('cases/:caseId')
  caseDetail(
    @Param() params: unknown,
    @Query() query: unknown,
    @Headers('authorization') authorization?: string,
  ): Promise<object> {
    return answer(() => this.api.caseDetail(authorization, params, query));
  }

  @Get('cases/:caseId/attempts')
  attempts(
    @Param() params: unknown,
    @Query() query: unknown,
    @Headers('authorization') authorization?: string,
  ): Promise<object> {
    return answer(() => this.api.attempts(authorization, params, query));
  }

  @Get('coverage')
  coverage(
    @Query() query: unknown,
    @Headers('authorization') authorization?: string,
  ): Promise<object> {
    return answer(() => this.api.coverage(authorization, query));
  }

  @Get('latency')
  latency(
    @Query() query: unknown,
    @Headers('authorization') authorization?: string,
  ): Promise<object> {
    return answer(() => this.api.latency(authorization, query));
  }
}
