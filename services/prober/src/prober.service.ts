import { randomUUID } from 'node:crypto';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { MessageBus, ProberRegistry } from '#lumen/messaging';
import { kernelSupportsSctp } from '#lumen/host';
import {
  PROBER_DEFAULTS,
  ProberWorker,
  heartbeatIntervalMs,
  hostProbeHost,
  proberInboxPrefix,
} from '#lumen/prober';
import { connectBus, nestLog } from '#lumen/service';
import { caseTracer, proberPrometheus } from '#lumen/telemetry';
import { PROBER_CONFIG, type ProberConfig } from './config.js';

const VERSION = '0.1.0';

/** Thin Nest adapter: connects, then hands the node's batches to the ProberWorker. */
@Injectable()
export class ProberService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ProberService.name);
  private bus: MessageBus | undefined;
  private worker: ProberWorker | undefined;

  constructor(@Inject(PROBER_CONFIG) private readonly config: ProberConfig) {}

  get ready(): boolean {
    return (this.worker?.consuming ?? false) && !(this.bus?.connection.isClosed() ?? true);
  }

  async onApplicationBootstrap(): Promise<void> {
    const config = this.config;
    const log = nestLog(this.logger);
    // No stream or consumer management, and replies under its node's own inbox prefix: a
    // prober's NATS user may do no more (ADR 0014).
    this.bus = await connectBus('prober', config, log, {
      manageStreams: false,
      inboxPrefix: proberInboxPrefix(config.NODE_NAME),
    });
    const registry = await ProberRegistry.open(this.bus, config.HEARTBEAT_TTL_MS, true);
    this.worker = new ProberWorker(
      {
        bus: this.bus,
        heartbeats: registry,
        host: hostProbeHost(config.NMAP_HOST_TIMEOUT_MS + 10_000),
        log,
        tracer: caseTracer('prober'),
        metrics: proberPrometheus,
      },
      {
        settings: {
          node: config.NODE_NAME,
          podCidrs: config.POD_CIDRS,
          protocols: config.PROBE_PROTOCOLS,
          portRanges: config.PROBE_PORTS,
          sctpSupported: kernelSupportsSctp(),
          tcpScan: config.TCP_SCAN,
          maxRttTimeoutMs: config.NMAP_MAX_RTT_MS,
          hostTimeoutMs: config.NMAP_HOST_TIMEOUT_MS,
          maxRate: config.NMAP_MAX_RATE,
          maxTargetsPerBatch: PROBER_DEFAULTS.maxTargetsPerBatch,
          refusedAddresses: config.NODE_IPS,
        },
        instance: randomUUID(),
        version: VERSION,
        heartbeatIntervalMs: heartbeatIntervalMs(config.HEARTBEAT_TTL_MS),
        concurrency: config.PROBE_CONCURRENCY,
      },
    );
    await this.worker.start();
    this.logger.log('consuming probe batches', { node: config.NODE_NAME });
  }

  async onApplicationShutdown(): Promise<void> {
    // Stop taking work; a batch in progress finishes, an unacked one is redelivered.
    await this.worker?.stop();
    await this.bus?.close();
    this.logger.log('stopped consuming probe batches', { node: this.config.NODE_NAME });
  }
}
