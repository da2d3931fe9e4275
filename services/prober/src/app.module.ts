import { Module, type DynamicModule } from '@nestjs/common';
import { MetricsModule, healthModule } from '#lumen/service';
import { PROBER_CONFIG, type ProberConfig } from './config.js';
import { ProberService } from './prober.service.js';

@Module({})
export class ProberModule {
  static forRoot(config: ProberConfig): DynamicModule {
    let service: ProberService | undefined;
    return {
      module: ProberModule,
      imports: [
        healthModule(() => [
          () => (service?.ready ? undefined : 'not consuming probe batches yet'),
        ]),
        MetricsModule,
      ],
      providers: [
        { provide: PROBER_CONFIG, useValue: config },
        {
          provide: ProberService,
          useFactory: (c: ProberConfig) => (service = new ProberService(c)),
          inject: [PROBER_CONFIG],
        },
      ],
    };
  }
}
