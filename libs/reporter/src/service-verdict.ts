import type { Outcome, ServicePath } from '#lumen/contracts';

/** `namespace/name (clusterIP:port)`: the Service path as a failure names it. */
export function servicePathText(via: ServicePath): string {
  const address = via.clusterIP.includes(':') ? `[${via.clusterIP}]` : via.clusterIP;
  return `${via.namespace}/${via.name} (${address}:${via.port})`;
}

const HAIRPIN_NOTE =
  'hairpin, a pod reaching itself through its own Service, which the spec leaves to the implementation (docs/services.md)';

/**
 * The reason a verdict of a case probed through a Service gives (issue 19). A failure only
 * through the Service (the same connection, pod to pod, passed on its latest round) says so
 * plainly, since then the policies are right and the Service path is what is broken; any
 * other verdict keeps its reason, said to be through the Service. Hairpin cases say they are.
 */
export function servicePathReason(input: {
  readonly via: ServicePath;
  readonly outcome: Outcome;
  readonly expected: 'allow' | 'deny';
  readonly reason: string;
  /** The pod-to-pod case's latest outcome, when it has one. */
  readonly podOutcome: Outcome | undefined;
}): string {
  const path = servicePathText(input.via);
  const hairpin = input.via.hairpin ? ` (${HAIRPIN_NOTE})` : '';
  if (input.outcome === 'fail' && input.podOutcome === 'pass') {
    return input.expected === 'allow'
      ? `blocked through Service ${path} but allowed pod-to-pod: the CNI mishandles Service traffic${hairpin}`
      : `allowed through Service ${path} but blocked pod-to-pod: policies are not applied to Service traffic${hairpin}`;
  }
  return `through Service ${path}${hairpin}: ${input.reason}`;
}
