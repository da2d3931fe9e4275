import { XMLParser } from 'fast-xml-parser';
import type { Protocol } from '#lumen/policy';

/** One port of one host, as nmap reported it. */
export interface PortResult {
  readonly address: string;
  readonly port: number;
  readonly protocol: Protocol;
  /** nmap's state: open, closed, filtered, open|filtered, closed|filtered, unfiltered. */
  readonly state: string;
  /** Why nmap concluded it: syn-ack, reset, no-response, port-unreach, admin-prohibited, udp-response… */
  readonly reason: string;
  readonly reasonTtl: number | undefined;
}

export interface ScanResult {
  readonly ports: readonly PortResult[];
  /** Seconds nmap took, from its runstats. */
  readonly elapsedSeconds: number | undefined;
  /** nmap's own summary line (`Nmap done at …; 1 IP address (1 host up) scanned in 0.5 seconds`). */
  readonly summary: string;
  /** Set when nmap reported the run as failed (`exit="error"`). */
  readonly error: string | undefined;
}

/** nmap output that cannot be read: a finding of its own, never a crash. */
export class NmapOutputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NmapOutputError';
  }
}

const PROTOCOLS: Record<string, Protocol> = { tcp: 'TCP', udp: 'UDP', sctp: 'SCTP' };

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  isArray: (name) => ['host', 'port', 'address'].includes(name),
  processEntities: false,
});

type Node = Record<string, unknown>;

function record(value: unknown): Node {
  return typeof value === 'object' && value !== null ? (value as Node) : {};
}

function hostPorts(host: Node): PortResult[] {
  const addresses = (host.address as Node[] | undefined) ?? [];
  const ip = addresses.find((a) => a.addrtype === 'ipv4' || a.addrtype === 'ipv6');
  if (!ip || typeof ip.addr !== 'string') throw new NmapOutputError('a host without an IP address');
  const ports = (record(host.ports).port as Node[] | undefined) ?? [];
  return ports.map((port) => {
    const protocol = PROTOCOLS[String(port.protocol)];
    const number = Number(port.portid);
    const state = record(port.state);
    if (!protocol || !Number.isInteger(number) || typeof state.state !== 'string') {
      throw new NmapOutputError(`an unreadable port entry: ${JSON.stringify(port)}`);
    }
    return {
      address: ip.addr as string,
      port: number,
      protocol,
      state: state.state,
      reason: typeof state.reason === 'string' ? state.reason : 'unknown',
      reasonTtl: state.reason_ttl === undefined ? undefined : Number(state.reason_ttl),
    };
  });
}

/** Reads `nmap -oX -` output. Throws {@link NmapOutputError} for anything else. */
export function parseNmapXml(xml: string): ScanResult {
  let document: Node;
  try {
    document = parser.parse(xml) as Node;
  } catch (error) {
    throw new NmapOutputError(`not XML: ${String(error)}`);
  }
  const run = record(document.nmaprun);
  if (Object.keys(run).length === 0)
    throw new NmapOutputError('no <nmaprun> element: not nmap XML output');
  const finished = record(record(run.runstats).finished);
  if (Object.keys(finished).length === 0)
    throw new NmapOutputError('no <runstats><finished>: the scan did not complete');
  const hosts = (run.host as Node[] | undefined) ?? [];
  return {
    ports: hosts.flatMap(hostPorts),
    elapsedSeconds: finished.elapsed === undefined ? undefined : Number(finished.elapsed),
    summary: typeof finished.summary === 'string' ? finished.summary : '',
    error:
      finished.exit === 'error'
        ? typeof finished.errormsg === 'string'
          ? finished.errormsg
          : 'nmap reported an error'
        : undefined,
  };
}
