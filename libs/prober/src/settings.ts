import { parseCidr, type Cidr, type Protocol } from '#lumen/policy';

export interface ProberSettings {
  readonly node: string;
  /** Targets must lie in these; anything else is refused. */
  readonly podCidrs: readonly Cidr[];
  /** Targets probed through a Service (ClusterIPs) must lie in these. */
  readonly serviceCidrs: readonly Cidr[];
  readonly protocols: readonly Protocol[];
  /** Ports outside these inclusive ranges are refused. */
  readonly portRanges: readonly { readonly from: number; readonly to: number }[];
  readonly sctpSupported: boolean;
  readonly tcpScan: 'syn' | 'connect';
  readonly maxRttTimeoutMs: number;
  readonly hostTimeoutMs: number;
  /** nmap's packets per second at most (`--max-rate`). */
  readonly maxRate: number;
  /** A batch naming more targets than this is refused whole. */
  readonly maxTargetsPerBatch: number;
  /** Never probed, even inside the pod CIDRs: the node's own addresses (its kubelet). */
  readonly refusedAddresses: readonly string[];
}

/** The prober's defaults, for the service, `lumen run` and the benchmark alike. */
export const PROBER_DEFAULTS = {
  protocols: ['TCP', 'UDP', 'SCTP'] as readonly Protocol[],
  portRanges: [{ from: 1, to: 65535 }] as const,
  tcpScan: 'syn' as const,
  maxRttTimeoutMs: 300,
  hostTimeoutMs: 60_000,
  /**
   * nmap's packets per second at most: far above what a batch needs (the prober measured
   * 55 probes/s, docs/benchmarks.md), and a bound on what a forged batch could make it send.
   */
  maxRate: 1000,
  /** The scheduler's largest batch (maxTargetsPerBatch) is 1,000 targets. */
  maxTargetsPerBatch: 1000,
  /**
   * Batches a prober runs at once. An nmap spends most of its time waiting for answers
   * (and for silence, where a policy drops), so a few run side by side on one core.
   */
  concurrency: 4,
  /** A prober silent this long counts as gone; it beats three times as often. */
  heartbeatTtlMs: 15_000,
  /** Pod networks of the usual CNIs: RFC 1918 and IPv6 unique-local. */
  podCidrs: '10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7',
  /**
   * ClusterIP ranges: kubeadm's and most distributions' default service CIDR, and the
   * IPv6 one kind and kubeadm's dual-stack guide use. Set SERVICE_CIDRS to the cluster's.
   */
  serviceCidrs: '10.96.0.0/12,fd00:10:96::/108',
} as const;

/** Heartbeats go out three times per TTL, so one lost beat does not make a prober silent. */
export function heartbeatIntervalMs(heartbeatTtlMs: number): number {
  return Math.max(500, Math.floor(heartbeatTtlMs / 3));
}

/** A prober's settings with the defaults, given its node, the pod CIDRs and the kernel's SCTP. */
export function defaultProberSettings(
  node: string,
  podCidrs: readonly Cidr[],
  sctpSupported: boolean,
): ProberSettings {
  return {
    node,
    podCidrs,
    serviceCidrs: PROBER_DEFAULTS.serviceCidrs.split(',').map((c) => parseCidr(c) as Cidr),
    protocols: PROBER_DEFAULTS.protocols,
    portRanges: PROBER_DEFAULTS.portRanges,
    sctpSupported,
    tcpScan: PROBER_DEFAULTS.tcpScan,
    maxRttTimeoutMs: PROBER_DEFAULTS.maxRttTimeoutMs,
    hostTimeoutMs: PROBER_DEFAULTS.hostTimeoutMs,
    maxRate: PROBER_DEFAULTS.maxRate,
    maxTargetsPerBatch: PROBER_DEFAULTS.maxTargetsPerBatch,
    refusedAddresses: [],
  };
}
