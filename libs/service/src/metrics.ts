import { Controller, Get, Header, Module } from '@nestjs/common';
import { METRICS_CONTENT_TYPE, metricsText } from '#lumen/telemetry';

@Controller()
class MetricsController {
  /** Prometheus text exposition; open to scrapers, so Lumen's NetworkPolicy limits who reaches it. */
  @Get('metrics')
  @Header('content-type', METRICS_CONTENT_TYPE)
  @Header('cache-control', 'no-store')
  metrics(): Promise<string> {
    return metricsText();
  }
}

@Module({ controllers: [MetricsController] })
export class MetricsModule {}
