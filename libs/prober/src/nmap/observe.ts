import type { PortResult } from './parse.js';

export type Reachability = 'reachable' | 'blocked' | 'inconclusive';

export interface Observation {
  readonly reachability: Reachability;
  /** Why, in words: "open (syn-ack)", "rejected: closed (reset) but a listener is known"… */
  readonly basis: string;
}

const ADMIN_REASONS = new Set(['admin-prohibited', 'host-prohibited', 'net-prohibited']);

/**
 * DESIGN's verdict model for one probed port. `listenerKnown` says the destination is
 * known to answer on this port (a lab listener, a DNS server, a confirmed listener): only
 * then does UDP silence mean blocked, and a TCP RST or ICMP port-unreachable mean that
 * the network rejected the probe rather than the port being closed.
 */
export function observe(
  result: Pick<PortResult, 'protocol' | 'state' | 'reason'>,
  listenerKnown: boolean,
): Observation {
  const { state, reason } = result;
  const nmapSaid = `${state} (${reason})`;
  switch (state) {
    case 'open':
      return { reachability: 'reachable', basis: nmapSaid };
    case 'closed':
      return listenerKnown
        ? { reachability: 'blocked', basis: `rejected: ${nmapSaid} although a listener is known` }
        : { reachability: 'reachable', basis: `${nmapSaid}: the destination itself answered` };
    case 'filtered':
      return ADMIN_REASONS.has(reason)
        ? { reachability: 'blocked', basis: `administratively prohibited: ${nmapSaid}` }
        : { reachability: 'blocked', basis: `dropped: ${nmapSaid}` };
    case 'open|filtered':
      return listenerKnown
        ? {
            reachability: 'blocked',
            basis: `silent: ${nmapSaid} although a listener that answers is known`,
          }
        : {
            reachability: 'inconclusive',
            basis: `silent: ${nmapSaid}, and nothing is known to answer there`,
          };
    default:
      return { reachability: 'inconclusive', basis: `nmap could not tell: ${nmapSaid}` };
  }
}
