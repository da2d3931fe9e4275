import { parseIp, type IpFamily } from './ip.js';
import type { Cluster, Pod } from './types.js';

/** A pod's addresses: `ips` of a dual-stack pod, else its one `ip`, else none (the lab assigns). */
export function addressesOf(pod: Pick<Pod, 'ip' | 'ips'>): readonly string[] {
  return pod.ips ?? (pod.ip === undefined ? [] : [pod.ip]);
}

export function familyOf(address: string): IpFamily | undefined {
  return parseIp(address)?.family;
}

/** The pod's address of a family; undefined when it has none of it. */
export function addressIn(pod: Pick<Pod, 'ip' | 'ips'>, family: IpFamily): string | undefined {
  return addressesOf(pod).find((a) => familyOf(a) === family);
}

/**
 * Whether a pod can be reached over a family: a pod with addresses has to have one of it; a
 * pod without any (an address the lab will assign) is taken to have the primary family.
 */
export function speaks(pod: Pick<Pod, 'ip' | 'ips'>, family: IpFamily, primary: IpFamily): boolean {
  return addressesOf(pod).length === 0 ? family === primary : addressIn(pod, family) !== undefined;
}

/** The families a cluster's pods have addresses in, primary (the first pod's first) first. */
export function familiesOf(cluster: Pick<Cluster, 'pods'>): IpFamily[] {
  const families: IpFamily[] = [];
  for (const pod of cluster.pods)
    for (const address of addressesOf(pod)) {
      const family = familyOf(address);
      if (family !== undefined && !families.includes(family)) families.push(family);
    }
  return families.length === 0 ? [4] : families;
}

/**
 * The cluster as one family sees it: each dual-stack pod's `ip` is its address of that
 * family, so ipBlocks match per family, as the spec says. A pod without an address of the
 * family keeps none: no ipBlock can select it there.
 */
export function clusterInFamily(cluster: Cluster, family: IpFamily): Cluster {
  return {
    ...cluster,
    pods: cluster.pods.map((pod) => {
      if (addressesOf(pod).length === 0) return pod;
      const address = addressIn(pod, family);
      const { namespace, name, labels, hostNetwork, ports, ips } = pod;
      return {
        namespace,
        name,
        labels,
        hostNetwork,
        ports,
        ...(ips === undefined ? {} : { ips }),
        ...(address === undefined ? {} : { ip: address }),
      };
    }),
  };
}
