import { randomUUID } from 'node:crypto';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { proberInboxPrefix } from '#lumen/contracts';
import { MessageBus, ProberRegistry } from '#lumen/messaging';
import { kernelSupportsSctp } from '#lumen/host';
import {
  PROBER_DEFAULTS,
  ProberWorker,
  heartbeatIntervalMs,
  hostProbeHost,
  targetScopeFromNodes,
  type TargetScope,
} from '#lumen/prober';
import { ApiSourceCheck, NodeWatcher, loadKubeConfig } from '#lumen/kube';
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
  private nodes: NodeWatcher | undefined;

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
    if (config.NODE_DISCOVERY) await this.watchNodes();
    const registry = await ProberRegistry.open(this.bus, config.HEARTBEAT_TTL_MS, true);
    this.worker = new ProberWorker(
      {
        bus: this.bus,
        heartbeats: registry,
        host: hostProbeHost(config.NMAP_HOST_TIMEOUT_MS + 10_000),
        log,
        tracer: caseTracer('prober'),
        metrics: proberPrometheus,
        ...(this.nodes ? { targetScope: () => this.targetScope() } : {}),
        ...(config.SOURCE_CHECK
          ? {
              sources: new ApiSourceCheck(loadKubeConfig(config.KUBECONFIG), {
                node: config.NODE_NAME,
                optOutLabel: config.OPT_OUT_LABEL,
              }),
            }
          : {}),
      },
      {
        settings: {
          node: config.NODE_NAME,
          podCidrs: config.POD_CIDRS ?? [],
          serviceCidrs: config.SERVICE_CIDRS,
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

  /**
   * The nodes, watched: every node's addresses are refused, and (unless POD_CIDRS says
   * otherwise) their pod CIDRs are the targets. A failure to list them stops the boot.
   */
  private async watchNodes(): Promise<void> {
    const config = this.config;
    let cidrsKnown = true;
    this.nodes = new NodeWatcher(loadKubeConfig(config.KUBECONFIG), {
      onChange: () => {
        // Said once each time it turns: every target would be refused.
        const known = this.targetScope().podCidrs.length > 0;
        if (!known && cidrsKnown)
          this.logger.error(
            'no node has spec.podCIDRs, so every target is refused: the CNI allocates pod addresses itself; set the pod CIDRs (the chart value podCidrs)',
          );
        cidrsKnown = known;
      },
      onError: (error) => {
        this.logger.warn('node watch failed; retrying', { error: String(error) });
      },
    });
    await this.nodes.start();
    const nodes = this.nodes.current();
    this.logger.log('targets from the nodes', {
      nodes: nodes.length,
      podCidrs: config.POD_CIDRS
        ? 'POD_CIDRS'
        : [...new Set(nodes.flatMap((n) => n.spec?.podCIDRs ?? []))].join(','),
      refusedAddresses: this.targetScope().refusedAddresses.length,
    });
  }

  private targetScope(): TargetScope {
    return targetScopeFromNodes(this.nodes?.current() ?? [], {
      ...(this.config.POD_CIDRS ? { podCidrs: this.config.POD_CIDRS } : {}),
      refused: this.config.NODE_IPS,
    });
  }

  async onApplicationShutdown(): Promise<void> {
    // Stop taking work; a batch in progress finishes, an unacked one is redelivered.
    await this.worker?.stop();
    await this.nodes?.stop();
    await this.bus?.close();
    this.logger.log('stopped consuming probe batches', { node: this.config.NODE_NAME });
  }
}
