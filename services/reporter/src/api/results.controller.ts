import {
  BadRequestException,
  Controller,
  Get,
  Headers,
  HttpException,
  HttpStatus,
  Inject,
  Injectable,
  NotFoundException,
  Param,
  PayloadTooLargeException,
  Query,
  ServiceUnavailableException,
  UnauthorizedException,
  UseGuards,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { API_MAX_URL_BYTES } from '#lumen/contracts';
import { ApiProblem, openApiDocument, type ResultsApi } from '#lumen/reporter';
import { isStoreUnreachable } from '#lumen/store';

export const RESULTS_API = Symbol('RESULTS_API');

const HTTP: Record<ApiProblem['status'], new (message: string) => HttpException> = {
  400: BadRequestException,
  401: UnauthorizedException,
  404: NotFoundException,
  503: ServiceUnavailableException,
};

/** An ApiProblem (or a store outage) as Nest's HTTP exception: `{statusCode, message, error}`. */
async function answer<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ApiProblem) throw new HTTP[error.status](error.message);
    // The database is down or restarting (ADR 0017): a reason and a retry, not a 500.
    if (isStoreUnreachable(error))
      throw new ServiceUnavailableException('the store is unreachable; try again shortly');
    throw error;
  }
}

/**
 * The request's own size, before anything reads it: a request line and query longer than
 * API_MAX_URL_BYTES is 414, and a body (every route is a GET) is 413. Node refuses headers
 * over 16 KiB with 431 before this runs.
 */
@Injectable()
export class ApiRequestBounds implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<IncomingMessage>();
    const url = request.url ?? '';
    if (Buffer.byteLength(url) > API_MAX_URL_BYTES)
      throw new HttpException(
        `request URL of ${Buffer.byteLength(url)} bytes; at most ${API_MAX_URL_BYTES} are accepted`,
        HttpStatus.URI_TOO_LONG,
      );
    const length = Number(request.headers['content-length'] ?? 0);
    if (length > 0 || request.headers['transfer-encoding'] !== undefined)
      throw new PayloadTooLargeException('the API takes no request body');
    return true;
  }
}

/** `/api/v1`: thin routes over ResultsApi, which authenticates, validates and scopes. */
@Controller('api/v1')
@UseGuards(ApiRequestBounds)
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

  @Get('matrix')
  matrix(@Headers('authorization') authorization?: string): Promise<object> {
    return answer(() => this.api.matrix(authorization));
  }

  @Get('matrix/:source/:destination')
  matrixPair(
    @Param() params: unknown,
    @Headers('authorization') authorization?: string,
  ): Promise<object> {
    return answer(() => this.api.matrixPair(authorization, params));
  }

  @Get('regressions')
  regressions(
    @Query() query: unknown,
    @Headers('authorization') authorization?: string,
  ): Promise<object> {
    return answer(() => this.api.regressions(authorization, query));
  }

  @Get('latency')
  latency(
    @Query() query: unknown,
    @Headers('authorization') authorization?: string,
  ): Promise<object> {
    return answer(() => this.api.latency(authorization, query));
  }
}
