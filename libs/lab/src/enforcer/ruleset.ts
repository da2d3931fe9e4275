import {
  PROTOCOLS,
  ReferenceEvaluator,
  addressIn,
  addressesOf,
  clusterInFamily,
  type Cluster,
  type IpFamily,
  type Pod,
  type Protocol,
} from '#lumen/policy';

/** A pod the enforcer programs: its policy view plus where its network namespace is. */
export interface EnforcedPod {
  readonly pod: Pod & { readonly ip: string };
  readonly netns: string;
}

/** A Service port as kube-proxy programs it: its ClusterIP, and the backends it translates to. */
export interface ProxiedService {
  readonly clusterIP: string;
  readonly port: number;
  readonly protocol: Protocol;
  readonly backends: readonly { readonly ip: string; readonly port: number }[];
}

export interface RulesetOptions {
  /** The Services every pod's traffic is translated for (kube-proxy's rules, per pod). */
  readonly services?: readonly ProxiedService[];
  /** The service-bypass fault: traffic through a Service skips the policies. */
  readonly serviceBypass?: boolean;
  /** The hairpin-deny fault: a pod cannot reach itself through its Service. */
  readonly hairpinDeny?: boolean;
  /** The ignore-ipv6 fault: policies are enforced over IPv4 only. */
  readonly ignoreIpv6?: boolean;
  /** Answer denied TCP with a RST and other protocols with ICMP port-unreachable. */
  readonly reject: boolean;
  /** Share of denied packets let through at random (0 for none). */
  readonly flakyRatio: number;
  /** Ask the Baseline tier before the NetworkPolicies (the baseline-over-networkpolicy fault). */
  readonly baselineBeforeNetworkPolicies?: boolean;
}

interface PortRange {
  readonly from: number;
  readonly to: number;
}

const NFT_PROTOCOL: Record<Protocol, string> = { TCP: 'tcp', UDP: 'udp', SCTP: 'sctp' };

/**
 * The port ranges within which no policy can tell two ports apart: every numbered port,
 * every endPort and every containerPort (for named ports) starts or ends one.
 */
export function portRanges(cluster: Cluster): PortRange[] {
  const starts = new Set([1, 65536]);
  for (const policy of cluster.policies) {
    for (const rule of [...(policy.spec.ingress ?? []), ...(policy.spec.egress ?? [])]) {
      for (const entry of rule.ports ?? []) {
        if (typeof entry.port === 'number') {
          starts.add(entry.port);
          starts.add((entry.endPort ?? entry.port) + 1);
        }
      }
    }
  }
  for (const pod of cluster.pods) {
    for (const { port } of pod.ports) {
      starts.add(port);
      starts.add(port + 1);
    }
  }
  const sorted = [...starts].sort((a, b) => a - b);
  return sorted.slice(0, -1).map((from, i) => ({ from, to: (sorted[i + 1] ?? 65536) - 1 }));
}

interface Elements {
  readonly v4: string[];
  readonly v6: string[];
}

function element(ip: string, protocol: Protocol, range: PortRange): string {
  const ports = range.from === range.to ? `${range.from}` : `${range.from}-${range.to}`;
  return `${ip} . ${NFT_PROTOCOL[protocol]} . ${ports}`;
}

/** Adjacent ranges with the same answer merge, so "every port" is one element. */
function allowedRanges(
  ranges: readonly PortRange[],
  allowed: (port: number) => boolean,
): PortRange[] {
  const merged: PortRange[] = [];
  for (const range of ranges) {
    if (!allowed(range.from)) continue;
    const last = merged[merged.length - 1];
    if (last && last.to + 1 === range.from)
      merged[merged.length - 1] = { from: last.from, to: range.to };
    else merged.push(range);
  }
  return merged;
}

function setDefinition(
  name: string,
  family: 'ipv4_addr' | 'ipv6_addr',
  elements: readonly string[],
): string {
  const body = elements.length > 0 ? ` elements = { ${elements.join(', ')} }` : '';
  return `  set ${name} { type ${family} . inet_proto . inet_service; flags interval;${body} }`;
}

/** DSCP the service-bypass fault marks Service traffic with at its source, to spare it at the destination. */
const BYPASS_MARK = 'cs7';

/** What the Service faults add before a chain's policy rules. */
function serviceFaultRules(
  direction: 'input' | 'output',
  ownIps: readonly string[],
  options: RulesetOptions,
): string[] {
  const ownIp = ownIps[0] ?? '';
  const family = ownIp.includes(':') ? 'ip6' : 'ip';
  const lines: string[] = [];
  if (direction === 'output' && options.hairpinDeny)
    for (const ip of ownIps)
      lines.push(`    ct status dnat ${ip.includes(':') ? 'ip6' : 'ip'} daddr ${ip} drop`);
  if (direction === 'output' && options.serviceBypass)
    lines.push(`    ct status dnat ${family} dscp set ${BYPASS_MARK}`, '    ct status dnat accept');
  if (direction === 'input' && options.serviceBypass)
    lines.push(`    ${family} dscp ${BYPASS_MARK} accept`);
  return lines;
}

/**
 * kube-proxy's translation, in every pod's namespace before its egress rules (nat at
 * priority -100, filter at 0): the policies then judge the translated connection, as a
 * CNI that enforces after the Service's translation does. Each connection picks a backend
 * at random; a Service port without backends is refused, as kube-proxy does.
 */
function servicesChain(services: readonly ProxiedService[]): string[] {
  const rules = services
    .filter((s) => !s.clusterIP.includes(':'))
    .map((s) => {
      const match = `ip daddr ${s.clusterIP} ${NFT_PROTOCOL[s.protocol]} dport ${s.port}`;
      if (s.backends.length === 0) return undefined;
      const map = s.backends.map((b, i) => `${i} : ${b.ip} . ${b.port}`).join(', ');
      return `    ${match} dnat ip to numgen random mod ${s.backends.length} map { ${map} }`;
    })
    .filter((r): r is string => r !== undefined);
  return [
    '  chain services {',
    '    type nat hook output priority -100; policy accept;',
    ...rules,
    '  }',
  ];
}

/** Service ports without backends: refused at the source, before any policy. */
function refusedServices(services: readonly ProxiedService[]): string[] {
  return services
    .filter((s) => !s.clusterIP.includes(':') && s.backends.length === 0)
    .map(
      (s) =>
        `    ip daddr ${s.clusterIP} ${NFT_PROTOCOL[s.protocol]} dport ${s.port} reject with icmpx port-unreachable`,
    );
}

function chain(
  direction: 'input' | 'output',
  isolated: boolean,
  options: RulesetOptions,
  ownIps: readonly string[],
): string[] {
  const [peer, loopback, set] =
    direction === 'input' ? ['saddr', 'iif', 'ingress'] : ['daddr', 'oif', 'egress'];
  const lines = [
    `  chain ${direction} {`,
    `    type filter hook ${direction} priority filter; policy accept;`,
    ...serviceFaultRules(direction, ownIps, options),
    ...(direction === 'output' ? refusedServices(options.services ?? []) : []),
    '    ct state established,related accept',
    `    ${loopback} "lo" ip daddr 127.0.0.0/8 accept`,
    `    ${loopback} "lo" ip6 daddr ::1 accept`,
    '    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert } accept',
    ...(options.ignoreIpv6 ? ['    meta nfproto ipv6 accept'] : []),
  ];
  if (!isolated) lines.push('    accept');
  else {
    lines.push(
      `    ip ${peer} . meta l4proto . th dport @${set}_v4 accept`,
      `    ip6 ${peer} . meta l4proto . th dport @${set}_v6 accept`,
    );
    if (options.flakyRatio > 0)
      lines.push(`    numgen random mod 1000 < ${Math.round(options.flakyRatio * 1000)} accept`);
    if (options.reject)
      lines.push(
        '    meta l4proto tcp reject with tcp reset',
        '    reject with icmpx port-unreachable',
      );
    lines.push('    drop');
  }
  lines.push('  }');
  return lines;
}

interface Isolation {
  readonly ingress: boolean;
  readonly egress: boolean;
}

function emptyElements(): Elements {
  return { v4: [], v6: [] };
}

function addRanges(
  into: Elements | undefined,
  ip: string,
  protocol: Protocol,
  ranges: readonly PortRange[],
): void {
  const list = ip.includes(':') ? into?.v6 : into?.v4;
  for (const range of ranges) list?.push(element(ip, protocol, range));
}

/** What one pod's sets hold: who may reach it (ingress) and whom it may reach (egress). */
interface PodElements {
  readonly isolation: Isolation;
  readonly ingress: Elements;
  readonly egress: Elements;
}

function collectElements(
  cluster: Cluster,
  pods: readonly EnforcedPod[],
  baselineBeforeNetworkPolicies: boolean,
): Map<Pod, PodElements> {
  const evaluator = new ReferenceEvaluator(cluster, { baselineBeforeNetworkPolicies });
  const ranges = portRanges(cluster);
  const byPod = new Map<Pod, PodElements>();
  for (const { pod } of pods) {
    const self = evaluator.verdict({ from: pod, to: pod, port: 1, protocol: 'TCP' }).explanation;
    byPod.set(pod, {
      // A pod is enforced in a direction when a NetworkPolicy isolates it or a cluster-scoped
      // policy has rules for it there; its sets then hold what every tier together allows.
      isolation: {
        ingress: self.ingress.isolated || self.ingress.tier !== undefined,
        egress: self.egress.isolated || self.egress.tier !== undefined,
      },
      ingress: emptyElements(),
      egress: emptyElements(),
    });
  }
  // Each family on its own view of the cluster, where every pod is at its address of that
  // family, so that ipBlocks match per family, as the spec says.
  const families = new Set<IpFamily>(
    pods.flatMap(({ pod }) => addressesOf(pod).map((ip) => (ip.includes(':') ? 6 : 4))),
  );
  for (const family of families) {
    const inFamily =
      families.size === 1
        ? evaluator
        : new ReferenceEvaluator(clusterInFamily(cluster, family), {
            baselineBeforeNetworkPolicies,
          });
    const address = (pod: Pod): string | undefined => addressIn(pod, family);
    for (const { pod: source } of pods) {
      for (const { pod: destination } of pods) {
        const from = byPod.get(source);
        const to = byPod.get(destination);
        const sourceIp = address(source);
        const destinationIp = address(destination);
        if (!from || !to || !sourceIp || !destinationIp) continue;
        if (!to.isolation.ingress && !from.isolation.egress) continue;
        addPair(inFamily, ranges, { source, sourceIp, destination, destinationIp, from, to });
      }
    }
  }
  return byPod;
}

/** What one source and destination add to their sets, over one family. */
function addPair(
  evaluator: ReferenceEvaluator,
  ranges: readonly PortRange[],
  pair: {
    readonly source: Pod;
    readonly sourceIp: string;
    readonly destination: Pod;
    readonly destinationIp: string;
    readonly from: PodElements;
    readonly to: PodElements;
  },
): void {
  const { source, sourceIp, destination, destinationIp, from, to } = pair;
  for (const protocol of PROTOCOLS) {
    const answers = new Map(
      ranges.map((r) => [
        r.from,
        evaluator.verdict({ from: source, to: destination, port: r.from, protocol }).explanation,
      ]),
    );
    if (to.isolation.ingress)
      addRanges(
        to.ingress,
        sourceIp,
        protocol,
        allowedRanges(ranges, (p) => answers.get(p)?.ingress.allowed ?? false),
      );
    if (from.isolation.egress)
      addRanges(
        from.egress,
        destinationIp,
        protocol,
        allowedRanges(ranges, (p) => answers.get(p)?.egress.allowed ?? false),
      );
  }
}

/**
 * The nftables program for every pod, computed with the reference evaluator: ingress
 * rules at the destination (input hook), egress rules at the source (output hook), in
 * the pod's own network namespace. A pod's traffic to its own IP crosses both hooks, so
 * policies govern it too.
 */
export function buildRulesets(
  cluster: Cluster,
  pods: readonly EnforcedPod[],
  options: RulesetOptions,
): Map<string, string> {
  const elements = collectElements(cluster, pods, options.baselineBeforeNetworkPolicies ?? false);
  const rulesets = new Map<string, string>();
  for (const { pod, netns } of pods) {
    const { isolation, ingress, egress } = elements.get(pod) ?? {
      isolation: { ingress: false, egress: false },
      ingress: emptyElements(),
      egress: emptyElements(),
    };
    const table = [
      'table inet lumen {',
      setDefinition('ingress_v4', 'ipv4_addr', ingress.v4),
      setDefinition('ingress_v6', 'ipv6_addr', ingress.v6),
      setDefinition('egress_v4', 'ipv4_addr', egress.v4),
      setDefinition('egress_v6', 'ipv6_addr', egress.v6),
      ...chain('input', isolation.ingress, options, addressesOf(pod)),
      ...chain('output', isolation.egress, options, addressesOf(pod)),
      ...servicesChain(options.services ?? []),
      '}',
    ];
    rulesets.set(netns, `${table.join('\n')}\n`);
  }
  return rulesets;
}

/** An nft script that replaces the lab's table atomically (`table` first, so delete never fails). */
export function replaceTableScript(ruleset: string): string {
  return `table inet lumen\ndelete table inet lumen\n${ruleset}`;
}

export const FLUSH_SCRIPT = 'table inet lumen\ndelete table inet lumen\n';
