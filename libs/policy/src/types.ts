import type { ClusterPolicyManifest } from './tiers.js';

/**
 * The Kubernetes objects the policy engine reads, in the shape of their manifests
 * (networking.k8s.io/v1 NetworkPolicy), and the cluster model built from them.
 */

export const PROTOCOLS = ['TCP', 'UDP', 'SCTP'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export const SELECTOR_OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;
export type SelectorOperator = (typeof SELECTOR_OPERATORS)[number];

export type Labels = Readonly<Record<string, string>>;

/** The label every namespace carries (Kubernetes ≥ 1.21 sets it automatically). */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

export interface LabelSelectorRequirement {
  readonly key: string;
  readonly operator: string;
  readonly values?: readonly string[];
}

export interface LabelSelector {
  readonly matchLabels?: Labels;
  readonly matchExpressions?: readonly LabelSelectorRequirement[];
}

export interface IPBlock {
  readonly cidr: string;
  readonly except?: readonly string[];
}

export interface NetworkPolicyPeer {
  readonly podSelector?: LabelSelector;
  readonly namespaceSelector?: LabelSelector;
  readonly ipBlock?: IPBlock;
}

export interface NetworkPolicyPort {
  readonly protocol?: string;
  readonly port?: number | string;
  readonly endPort?: number;
}

export interface NetworkPolicyIngressRule {
  readonly from?: readonly NetworkPolicyPeer[];
  readonly ports?: readonly NetworkPolicyPort[];
}

export interface NetworkPolicyEgressRule {
  readonly to?: readonly NetworkPolicyPeer[];
  readonly ports?: readonly NetworkPolicyPort[];
}

export interface NetworkPolicySpec {
  readonly podSelector?: LabelSelector;
  readonly policyTypes?: readonly string[];
  readonly ingress?: readonly NetworkPolicyIngressRule[];
  readonly egress?: readonly NetworkPolicyEgressRule[];
}

export interface NetworkPolicy {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: { readonly name: string; readonly namespace: string };
  readonly spec: NetworkPolicySpec;
}

export interface Namespace {
  readonly name: string;
  /** Includes `kubernetes.io/metadata.name`; see {@link withNamespaceNameLabel}. */
  readonly labels: Labels;
}

export interface ContainerPort {
  readonly name?: string;
  readonly port: number;
  readonly protocol: Protocol;
}

export interface Pod {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  /** The pod IP (IPv4 or IPv6); absent while the pod has none yet. */
  readonly ip?: string;
  /**
   * Every address of a dual-stack pod (`status.podIPs`), one per family, `ip` first. The
   * engine reads `ip`; a view of the cluster in one family (`clusterInFamily`) sets `ip`
   * to the pod's address of that family.
   */
  readonly ips?: readonly string[];
  readonly hostNetwork: boolean;
  readonly ports: readonly ContainerPort[];
}

export interface Cluster {
  readonly namespaces: readonly Namespace[];
  readonly pods: readonly Pod[];
  readonly policies: readonly NetworkPolicy[];
  /**
   * ClusterNetworkPolicy, AdminNetworkPolicy and BaselineAdminNetworkPolicy manifests: the
   * Admin and Baseline tiers around the NetworkPolicies (see tiers.ts).
   */
  readonly clusterPolicies?: readonly ClusterPolicyManifest[];
  /**
   * The Services' ports with their ready backends (from EndpointSlices). Policies never
   * name a Service, so the engine does not read them; the planner probes through them.
   */
  readonly services?: readonly ServiceFrontend[];
}

/**
 * One port of a Service as clients reach it, with the pods behind it: what kube-proxy (or
 * the CNI in its place) translates a connection to `clusterIPs`:`port` into.
 */
export interface ServiceFrontend {
  readonly namespace: string;
  readonly name: string;
  /** One per IP family; empty while the cluster has assigned none. */
  readonly clusterIPs: readonly string[];
  readonly port: number;
  readonly protocol: Protocol;
  /** The ready backends, each with the port it is reached on (a named targetPort resolves per pod). */
  readonly backends: readonly { readonly pod: PodRef; readonly port: number }[];
}

export type Direction = 'ingress' | 'egress';

/** One connection attempt: from a pod, to a pod's IP, on a port and protocol. */
export interface Connection {
  readonly from: PodRef;
  readonly to: PodRef;
  readonly port: number;
  readonly protocol: Protocol;
}

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
}

export function podKey(pod: PodRef): string {
  return `${pod.namespace}/${pod.name}`;
}

export function policyKey(policy: NetworkPolicy): string {
  return `${policy.metadata.namespace}/${policy.metadata.name}`;
}

export function withNamespaceNameLabel(name: string, labels: Labels = {}): Namespace {
  return { name, labels: { ...labels, [NAMESPACE_NAME_LABEL]: name } };
}
