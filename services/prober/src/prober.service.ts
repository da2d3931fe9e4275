import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import {
  ProbeBatchContract,
  ProbeResultContract,
  PROBE_RESULT_SUBJECT,
  probeBatchSubject,
  type ProbeBatch,
} from '#lumen/contracts';
import { MessageBus } from '#lumen/messaging';
import { findPodNetns } from '#lumen/netns';
import { executeBatch, type ProberSettings } from '#lumen/probing';
import { kernelSupportsSctp, run } from '#lumen/system';
import { PROBER_CONFIG, type ProberConfig } from './config.js';

/** The prober's one job: a batch in, nmap from inside the source pod, observations out. */
@Injectable()
export class ProberService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ProberService.name);
  private bus: MessageBus | undefined;
  private consumer: { stop: () => Promise<void> } | undefined;
  private readonly settings: ProberSettings;

  constructor(@Inject(PROBER_CONFIG) private readonly config: ProberConfig) {
    this.settings = {
      node: config.NODE_NAME,
      podCidrs: config.POD_CIDRS,
      protocols: config.PROBE_PROTOCOLS,
      portRanges: config.PROBE_PORTS,
      sctpSupported: kernelSupportsSctp(),
      tcpScan: config.TCP_SCAN,
      maxRttTimeoutMs: config.NMAP_MAX_RTT_MS,
      hostTimeoutMs: config.NMAP_HOST_TIMEOUT_MS,
    };
  }

  get ready(): boolean {
    return this.consumer !== undefined && !(this.bus?.connection.isClosed() ?? true);
  }

  async onApplicationBootstrap(): Promise<void> {
    this.bus = await MessageBus.connect({
      url: this.config.NATS_URL,
      service: 'prober',
      ...(this.config.NATS_USER
        ? { user: this.config.NATS_USER, pass: this.config.NATS_PASSWORD ?? '' }
        : {}),
      log: {
        warn: (message, fields) => {
          this.logger.warn(message, fields);
        },
      },
    });
    this.consumer = await this.bus.consume({
      contract: ProbeBatchContract,
      durable: `prober-${this.config.NODE_NAME.replace(/\./g, '_')}`,
      filterSubject: probeBatchSubject(this.config.NODE_NAME),
      ackWaitMs: this.config.NMAP_HOST_TIMEOUT_MS + 30_000,
      handle: (batch, delivery) => this.probe(batch, delivery.traceparent),
    });
    this.logger.log('consuming probe batches', { node: this.config.NODE_NAME });
  }

  /** Acked once the result is stored in JetStream; a redelivered batch yields the same result id. */
  async probe(batch: ProbeBatch, traceparent: string | undefined): Promise<void> {
    this.logger.log('batch received', {
      batchId: batch.batchId,
      attempt: batch.attempt,
      targets: batch.targets.length,
    });
    const result = await executeBatch(batch, this.settings, {
      findNetns: (uid) => findPodNetns(uid),
      runNmap: (path, args) =>
        run('nsenter', [`--net=${path}`, 'nmap', ...args], {
          timeoutMs: this.config.NMAP_HOST_TIMEOUT_MS + 10_000,
        }),
      now: () => new Date(),
    });
    await this.bus?.publish(PROBE_RESULT_SUBJECT, ProbeResultContract, result, {
      msgId: `${batch.batchId}/${batch.attempt}`,
      ...(traceparent ? { traceparent } : {}),
    });
    this.logger.log('batch probed', { batchId: batch.batchId, durationMs: result.durationMs });
  }

  async onApplicationShutdown(): Promise<void> {
    // Stop taking work; an unacked batch in flight is redelivered to the next prober.
    await this.consumer?.stop();
    await this.bus?.close();
    this.logger.log('stopped consuming probe batches', { node: this.config.NODE_NAME });
  }
}
