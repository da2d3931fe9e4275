import type { AttemptEvidence, Reachability } from '#lumen/contracts';

/** How this cluster's CNI treats a connection its policies deny. */
export type DenyStyle = 'drop' | 'reject' | 'unknown';

export interface ObservedProbe {
  readonly reachability: Reachability;
  readonly basis: string;
  readonly evidence: Pick<AttemptEvidence, 'state'> | null;
}

/**
 * Learns whether the CNI drops or rejects denied connections, from probes to ports where
 * the destination is known to listen: there a RST (or ICMP port-unreachable) can only be
 * the network's reject, and silence its drop. A CNI that rejects even once makes a RST
 * from a port with no listener ambiguous: a reject and a closed port look the same.
 */
export class DenyBehaviour {
  private rejects = 0;
  private drops = 0;

  get style(): DenyStyle {
    if (this.rejects > 0) return 'reject';
    return this.drops > 0 ? 'drop' : 'unknown';
  }

  /** Counts a probe to a known listener that was blocked: by a reject, or by a drop. */
  learn(listenerKnown: boolean, probe: ObservedProbe): void {
    if (!listenerKnown || probe.reachability !== 'blocked') return;
    if (probe.evidence?.state === 'closed') this.rejects += 1;
    else if (probe.evidence?.state === 'filtered' || probe.evidence?.state === 'open|filtered')
      this.drops += 1;
  }

  /**
   * What a probe shows, given what is known of the CNI: a RST from a port with no listener
   * is the destination's own answer only where the CNI is known to drop. Where it rejects,
   * the probe is inconclusive, with the reason, and never a failure; while that is not yet
   * known, a probe that would fail a deny check is inconclusive too (and re-probed).
   */
  interpret<P extends ObservedProbe>(
    probe: P,
    facts: { readonly listenerKnown: boolean; readonly expected: 'allow' | 'deny' },
  ): P {
    if (facts.listenerKnown || probe.evidence?.state !== 'closed') return probe;
    const style = this.style;
    if (style === 'reject')
      return {
        ...probe,
        reachability: 'inconclusive',
        basis: `${probe.basis}; but this cluster's CNI rejects denied connections (seen on ${this.rejects} probe${this.rejects === 1 ? '' : 's'} to known listeners), so a reset from a port with no listener cannot tell a reject from a closed port`,
      };
    if (style === 'unknown' && facts.expected === 'deny')
      return {
        ...probe,
        reachability: 'inconclusive',
        basis: `${probe.basis}; but it is not known yet whether this cluster's CNI drops or rejects denied connections, and a reject would look the same`,
      };
    return probe;
  }
}
