import { z } from 'zod';
import { parseCidr, type Cidr } from '#lumen/policy';
import { PLANNER_DEFAULTS } from '#lumen/planner';
import { PROBER_DEFAULTS } from '#lumen/prober';
import { commonConfig, flag, integer, labelKey } from '#lumen/service';

const cidrList = z
  .string()
  .min(1, 'give at least one CIDR')
  .transform((text, ctx) =>
    text.split(',').map((part) => {
      const cidr = parseCidr(part.trim());
      if (!cidr) ctx.addIssue({ code: 'custom', message: `"${part.trim()}" is not a CIDR` });
      return cidr as Cidr;
    }),
  );

const portRanges = z
  .string()
  .default(PROBER_DEFAULTS.portRanges.map((r) => `${r.from}-${r.to}`).join(','))
  .transform((text, ctx) =>
    text.split(',').map((part) => {
      const [from = '', to = from] = part.trim().split('-');
      const range = { from: Number(from), to: Number(to) };
      if (
        !Number.isInteger(range.from) ||
        !Number.isInteger(range.to) ||
        range.from < 1 ||
        range.to > 65535 ||
        range.from > range.to
      ) {
        ctx.addIssue({
          code: 'custom',
          message: `"${part.trim()}" is not a port or port range (1-65535)`,
        });
      }
      return range;
    }),
  );

/** The prober's environment, validated once at boot. */
export const proberConfigSchema = z
  .object({
    NODE_NAME: z
      .string()
      .regex(
        /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/,
        'must be the node name (downward API spec.nodeName)',
      ),
    ...commonConfig,
    /**
     * Targets must lie in these. Without it, NODE_DISCOVERY must be on, and the nodes'
     * spec.podCIDRs are used instead; with both, these win (a CNI with its own IPAM).
     */
    POD_CIDRS: cidrList.optional(),
    /** ClusterIPs probed through a Service must lie in these: the cluster's service CIDRs. */
    SERVICE_CIDRS: cidrList.prefault(PROBER_DEFAULTS.serviceCidrs),
    /**
     * true: read the nodes from the API (get, list, watch): their pod CIDRs, and every
     * node's addresses, which are refused as targets. The chart turns it on.
     */
    NODE_DISCOVERY: flag(),
    /**
     * true: before entering a batch's source pod, ask the API (get on pods and namespaces)
     * that it is the batch's pod, on this node, not on the host's network, and not in a
     * namespace labelled OPT_OUT_LABEL=true. The chart turns it on.
     */
    SOURCE_CHECK: flag(),
    OPT_OUT_LABEL: labelKey(PLANNER_DEFAULTS.optOutLabel),
    /** For NODE_DISCOVERY and SOURCE_CHECK outside a cluster (the lab, tests); in a pod, its service account. */
    KUBECONFIG: z.string().min(1).optional(),
    PROBE_PORTS: portRanges,
    PROBE_PROTOCOLS: z
      .string()
      .default(PROBER_DEFAULTS.protocols.join(','))
      .transform((t) => t.split(',').map((p) => p.trim().toUpperCase()))
      .pipe(z.array(z.enum(['TCP', 'UDP', 'SCTP'])).min(1)),
    TCP_SCAN: z.enum(['syn', 'connect']).default(PROBER_DEFAULTS.tcpScan),
    NMAP_MAX_RTT_MS: integer(50, 10_000, PROBER_DEFAULTS.maxRttTimeoutMs),
    NMAP_HOST_TIMEOUT_MS: integer(1000, 600_000, PROBER_DEFAULTS.hostTimeoutMs),
    /** A prober silent this long counts as gone; it beats three times as often. */
    HEARTBEAT_TTL_MS: integer(1500, 300_000, PROBER_DEFAULTS.heartbeatTtlMs),
    /** Batches (one nmap each) probed at once. */
    PROBE_CONCURRENCY: integer(1, 64, PROBER_DEFAULTS.concurrency),
    /** nmap's packets per second at most. */
    NMAP_MAX_RATE: integer(10, 100_000, PROBER_DEFAULTS.maxRate),
    /**
     * The node's own addresses (the chart passes status.hostIP): never probed, even inside
     * POD_CIDRS, so no batch can point the prober at its kubelet.
     */
    NODE_IPS: z
      .string()
      .default('')
      .transform((text) =>
        text
          .split(',')
          .map((ip) => ip.trim())
          .filter(Boolean),
      )
      .pipe(z.array(z.union([z.ipv4(), z.ipv6()]))),
    HTTP_PORT: integer(1, 65535, 8083),
    /**
     * Connect with this projected ServiceAccount token, re-read at every reconnect, instead
     * of NATS_USER: NATS auth callout then admits the prober as its node's own user (ADR 0016).
     */
    NATS_TOKEN_FILE: z.string().min(1).optional(),
    /** Or a NATS credentials file the operator put on this node: its own user (ADR 0016). */
    NATS_CREDS_FILE: z.string().min(1).optional(),
  })
  .refine((config) => config.POD_CIDRS !== undefined || config.NODE_DISCOVERY, {
    path: ['POD_CIDRS'],
    message: 'give the pod CIDRs, or set NODE_DISCOVERY=true to read them from the nodes',
  })
  .refine(
    (config) =>
      [config.NATS_TOKEN_FILE, config.NATS_CREDS_FILE, config.NATS_USER].filter(Boolean).length <=
      1,
    {
      path: ['NATS_TOKEN_FILE'],
      message: 'give one of NATS_TOKEN_FILE, NATS_CREDS_FILE (per-node) or NATS_USER (shared)',
    },
  );

export type ProberConfig = z.infer<typeof proberConfigSchema>;
export const PROBER_CONFIG = Symbol('PROBER_CONFIG');
