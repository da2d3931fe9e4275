import type { Protocol } from '#lumen/policy';

export interface ScanRequest {
  /** Target IP addresses; all must be of one family. */
  readonly targets: readonly string[];
  /** Ports per protocol, scanned on every target. */
  readonly ports: Readonly<Partial<Record<Protocol, readonly number[]>>>;
  /** TCP SYN scan (raw sockets, needs NET_RAW) or a full connect scan. */
  readonly tcpScan?: 'syn' | 'connect';
  /** How long nmap waits for an answer before it retries or gives up. */
  readonly maxRttTimeoutMs?: number;
  readonly maxRetries?: number;
  /** Stop scanning a host after this long. */
  readonly hostTimeoutMs?: number;
  /** Packets per second at most, whatever a batch asks for. */
  readonly maxRate?: number;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6 = /^[0-9a-fA-F:.]+$/;

function checkTarget(target: string): void {
  if (!IPV4.test(target) && !(target.includes(':') && IPV6.test(target))) {
    throw new Error(`not an IP address: ${JSON.stringify(target)}`);
  }
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`not a port: ${port}`);
}

/**
 * nmap's argument array for one batch: every target, every port, in one process, with XML
 * on standard output. Everything is validated, and nothing goes through a shell.
 */
export function nmapArguments(request: ScanRequest): string[] {
  if (request.targets.length === 0) throw new Error('a scan needs at least one target');
  request.targets.forEach(checkTarget);
  const families = new Set(request.targets.map((t) => (t.includes(':') ? 6 : 4)));
  if (families.size > 1) throw new Error('a scan takes targets of one IP family');
  const lists: string[] = [];
  const scans: string[] = [];
  const letter: Record<Protocol, string> = { TCP: 'T', UDP: 'U', SCTP: 'S' };
  const scanType: Record<Protocol, string> = {
    TCP: request.tcpScan === 'connect' ? '-sT' : '-sS',
    UDP: '-sU',
    SCTP: '-sY',
  };
  for (const protocol of ['TCP', 'UDP', 'SCTP'] as const) {
    const ports = [...new Set(request.ports[protocol] ?? [])].sort((a, b) => a - b);
    if (ports.length === 0) continue;
    ports.forEach(checkPort);
    lists.push(`${letter[protocol]}:${ports.join(',')}`);
    scans.push(scanType[protocol]);
  }
  if (lists.length === 0) throw new Error('a scan needs at least one port');
  return [
    ...scans,
    ...(families.has(6) ? ['-6'] : []),
    '-Pn',
    // -Pn still ARP-pings the pods on the source's own segment (a node's bridge); under
    // load an ARP answer comes late, nmap calls the pod down and reports none of its ports.
    '--disable-arp-ping',
    '-n',
    '--reason',
    '--max-retries',
    String(request.maxRetries ?? 1),
    '--max-rtt-timeout',
    `${request.maxRttTimeoutMs ?? 300}ms`,
    '--initial-rtt-timeout',
    `${Math.min(100, request.maxRttTimeoutMs ?? 300)}ms`,
    ...(request.hostTimeoutMs ? ['--host-timeout', `${request.hostTimeoutMs}ms`] : []),
    ...(request.maxRate ? ['--max-rate', String(request.maxRate)] : []),
    '-p',
    lists.join(','),
    '-oX',
    '-',
    ...request.targets,
  ];
}
