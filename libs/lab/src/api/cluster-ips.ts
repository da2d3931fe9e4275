import type { KubeObject } from './resources.js';

/** The lab's Service range, as kubeadm's default (`--service-cluster-ip-range`). */
export const SERVICE_CIDR = '10.96.0.0/16';
const BASE = (10 << 24) | (96 << 16);
const SIZE = 1 << 16;

function toText(value: number): string {
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 255).join('.');
}

function toNumber(text: string): number | undefined {
  const parts = text.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255))
    return undefined;
  return parts.reduce((n, p) => n * 256 + p, 0);
}

type ServiceSpec = { clusterIP?: string; clusterIPs?: string[]; type?: string };

/**
 * A Service as the API server stores it: a ClusterIP from SERVICE_CIDR unless it names one
 * or is headless (`None`), in `clusterIP` and `clusterIPs`; an update keeps the address it
 * had, since the field is immutable. `taken` holds the addresses in use.
 */
export function withClusterIp(
  service: KubeObject,
  taken: ReadonlySet<string>,
  previous?: KubeObject,
): KubeObject {
  const spec = { ...((service.spec ?? {}) as ServiceSpec) };
  const kept = (previous?.spec as ServiceSpec | undefined)?.clusterIP;
  if (!spec.clusterIP && kept) spec.clusterIP = kept;
  if (!spec.clusterIP && spec.clusterIPs?.[0]) spec.clusterIP = spec.clusterIPs[0];
  if (!spec.clusterIP) {
    // .1 is the kubernetes Service's on a real cluster; start after it.
    for (let offset = 10; offset < SIZE - 1; offset++) {
      const candidate = toText(BASE + offset);
      if (!taken.has(candidate)) {
        spec.clusterIP = candidate;
        break;
      }
    }
  }
  if (spec.clusterIP && !spec.clusterIPs) spec.clusterIPs = [spec.clusterIP];
  spec.type ??= 'ClusterIP';
  return { ...service, spec };
}

/** Whether a ClusterIP lies in the lab's Service range (where kube-proxy's rules apply). */
export function inServiceRange(address: string): boolean {
  const value = toNumber(address);
  return value !== undefined && value >= BASE && value < BASE + SIZE;
}
