import { parseCidr, type Cidr } from '#lumen/policy';

/** What a prober may aim at: addresses in the pod CIDRs, except the refused ones. */
export interface TargetScope {
  readonly podCidrs: readonly Cidr[];
  /** Never probed, even inside the pod CIDRs: every node's own addresses (its kubelet). */
  readonly refusedAddresses: readonly string[];
}

/** The parts of a Node the scope is made of (spec.podCIDRs, status.addresses). */
export interface NodeAddressing {
  readonly spec?: { readonly podCIDR?: string; readonly podCIDRs?: readonly string[] };
  readonly status?: {
    readonly addresses?: readonly { readonly type: string; readonly address: string }[];
  };
}

/** Address types of a node that reach the node itself. */
const NODE_ADDRESS_TYPES = new Set(['InternalIP', 'ExternalIP']);

/**
 * The scope from the cluster's nodes: the pod CIDRs the nodes were given (unless an
 * override names them: a CNI with its own IPAM leaves spec.podCIDRs empty), and every
 * node's internal and external addresses refused, beside the ones always refused.
 */
export function targetScopeFromNodes(
  nodes: readonly NodeAddressing[],
  options: { readonly podCidrs?: readonly Cidr[]; readonly refused?: readonly string[] },
): TargetScope {
  const fromNodes = new Map<string, Cidr>();
  for (const node of nodes)
    for (const text of node.spec?.podCIDRs ?? (node.spec?.podCIDR ? [node.spec.podCIDR] : [])) {
      const cidr = parseCidr(text);
      if (cidr) fromNodes.set(text, cidr);
    }
  const refused = new Set(options.refused ?? []);
  for (const node of nodes)
    for (const address of node.status?.addresses ?? [])
      if (NODE_ADDRESS_TYPES.has(address.type)) refused.add(address.address);
  return {
    podCidrs: options.podCidrs ?? [...fromNodes.values()],
    refusedAddresses: [...refused].sort(),
  };
}
