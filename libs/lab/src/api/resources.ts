/** The Kubernetes resources the emulator serves: what Lumen and kubectl need. */
export interface ResourceType {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly singular: string;
  readonly kind: string;
  readonly namespaced: boolean;
  readonly shortNames: readonly string[];
  readonly subresources: readonly string[];
}

/** A resource stored as given, with the metadata every object gets, and nothing more. */
function stored(
  type: Omit<ResourceType, 'singular' | 'shortNames' | 'subresources'> &
    Partial<Pick<ResourceType, 'shortNames' | 'subresources'>>,
): ResourceType {
  return {
    singular: type.kind.toLowerCase(),
    shortNames: [],
    subresources: [],
    ...type,
  };
}

export const RESOURCE_TYPES: readonly ResourceType[] = [
  {
    group: '',
    version: 'v1',
    plural: 'namespaces',
    singular: 'namespace',
    kind: 'Namespace',
    namespaced: false,
    shortNames: ['ns'],
    subresources: ['status'],
  },
  {
    group: '',
    version: 'v1',
    plural: 'nodes',
    singular: 'node',
    kind: 'Node',
    namespaced: false,
    shortNames: ['no'],
    subresources: ['status'],
  },
  {
    group: '',
    version: 'v1',
    plural: 'pods',
    singular: 'pod',
    kind: 'Pod',
    namespaced: true,
    shortNames: ['po'],
    subresources: ['status'],
  },
  {
    group: '',
    version: 'v1',
    plural: 'configmaps',
    singular: 'configmap',
    kind: 'ConfigMap',
    namespaced: true,
    shortNames: ['cm'],
    subresources: [],
  },
  {
    group: '',
    version: 'v1',
    plural: 'events',
    singular: 'event',
    kind: 'Event',
    namespaced: true,
    shortNames: ['ev'],
    subresources: [],
  },
  {
    group: 'networking.k8s.io',
    version: 'v1',
    plural: 'networkpolicies',
    singular: 'networkpolicy',
    kind: 'NetworkPolicy',
    namespaced: true,
    shortNames: ['netpol'],
    subresources: [],
  },
  // The cluster-scoped policy tiers, as their CRDs serve them (kubernetes-sigs/network-policy-api).
  {
    group: 'policy.networking.k8s.io',
    version: 'v1alpha2',
    plural: 'clusternetworkpolicies',
    singular: 'clusternetworkpolicy',
    kind: 'ClusterNetworkPolicy',
    namespaced: false,
    shortNames: ['cnp'],
    subresources: ['status'],
  },
  {
    group: 'policy.networking.k8s.io',
    version: 'v1alpha1',
    plural: 'adminnetworkpolicies',
    singular: 'adminnetworkpolicy',
    kind: 'AdminNetworkPolicy',
    namespaced: false,
    shortNames: ['anp'],
    subresources: ['status'],
  },
  {
    group: 'policy.networking.k8s.io',
    version: 'v1alpha1',
    plural: 'baselineadminnetworkpolicies',
    singular: 'baselineadminnetworkpolicy',
    kind: 'BaselineAdminNetworkPolicy',
    namespaced: false,
    shortNames: ['banp'],
    subresources: ['status'],
  },
  // A CNI's own policy kind, served so the lab can show that Lumen finds what it does not
  // model (the enforcer ignores it, as a CNI without Cilium would).
  {
    group: 'cilium.io',
    version: 'v2',
    plural: 'ciliumnetworkpolicies',
    singular: 'ciliumnetworkpolicy',
    kind: 'CiliumNetworkPolicy',
    namespaced: true,
    shortNames: ['ciliumnp'],
    subresources: ['status'],
  },
  // Secrets: `lumen run` hands its probers their NATS password through one.
  {
    group: '',
    version: 'v1',
    plural: 'secrets',
    singular: 'secret',
    kind: 'Secret',
    namespaced: true,
    shortNames: [],
    subresources: [],
  },
  {
    group: 'coordination.k8s.io',
    version: 'v1',
    plural: 'leases',
    singular: 'lease',
    kind: 'Lease',
    namespaced: true,
    shortNames: [],
    subresources: [],
  },
  {
    group: 'apps',
    version: 'v1',
    plural: 'daemonsets',
    singular: 'daemonset',
    kind: 'DaemonSet',
    namespaced: true,
    shortNames: ['ds'],
    subresources: ['status'],
  },
  {
    // Stored as given; its `token` subresource is a TokenRequest (service-account-tokens.ts).
    group: '',
    version: 'v1',
    plural: 'serviceaccounts',
    singular: 'serviceaccount',
    kind: 'ServiceAccount',
    namespaced: true,
    shortNames: ['sa'],
    subresources: ['token'],
  },
  {
    // Create-only: reviews a ServiceAccount token, never stored.
    group: 'authentication.k8s.io',
    version: 'v1',
    plural: 'tokenreviews',
    singular: 'tokenreview',
    kind: 'TokenReview',
    namespaced: false,
    shortNames: [],
    subresources: [],
  },
  // What `helm install` of Lumen's chart creates (deploy/test/chart-install.lab.spec.ts).
  // Stored as given; the lab's controllers act on Deployments, StatefulSets and Jobs (pods,
  // claims, a Job's completion), and on DaemonSets above. The emulator enforces no RBAC:
  // Roles and bindings are kept, not applied. A Service gets no ClusterIP and no endpoints
  // (the lab has no kube-proxy); a PersistentVolumeClaim is bound to nothing; a
  // PodDisruptionBudget and a PriorityClass change nothing.
  stored({
    group: 'apps',
    version: 'v1',
    kind: 'Deployment',
    plural: 'deployments',
    namespaced: true,
    shortNames: ['deploy'],
    subresources: ['status', 'scale'],
  }),
  stored({
    group: 'apps',
    version: 'v1',
    kind: 'StatefulSet',
    plural: 'statefulsets',
    namespaced: true,
    shortNames: ['sts'],
    subresources: ['status', 'scale'],
  }),
  stored({
    group: 'batch',
    version: 'v1',
    kind: 'Job',
    plural: 'jobs',
    namespaced: true,
    subresources: ['status'],
  }),
  stored({
    group: '',
    version: 'v1',
    kind: 'Service',
    plural: 'services',
    namespaced: true,
    shortNames: ['svc'],
    subresources: ['status'],
  }),
  // Written by the lab's EndpointSlice controller (runtime/endpoint-slices.ts).
  stored({
    group: 'discovery.k8s.io',
    version: 'v1',
    kind: 'EndpointSlice',
    plural: 'endpointslices',
    namespaced: true,
  }),
  stored({
    group: '',
    version: 'v1',
    kind: 'PersistentVolumeClaim',
    plural: 'persistentvolumeclaims',
    namespaced: true,
    shortNames: ['pvc'],
    subresources: ['status'],
  }),
  stored({
    group: 'policy',
    version: 'v1',
    kind: 'PodDisruptionBudget',
    plural: 'poddisruptionbudgets',
    namespaced: true,
    shortNames: ['pdb'],
    subresources: ['status'],
  }),
  stored({
    group: 'scheduling.k8s.io',
    version: 'v1',
    kind: 'PriorityClass',
    plural: 'priorityclasses',
    namespaced: false,
    shortNames: ['pc'],
  }),
  stored({
    group: 'rbac.authorization.k8s.io',
    version: 'v1',
    kind: 'Role',
    plural: 'roles',
    namespaced: true,
  }),
  stored({
    group: 'rbac.authorization.k8s.io',
    version: 'v1',
    kind: 'RoleBinding',
    plural: 'rolebindings',
    namespaced: true,
  }),
  stored({
    group: 'rbac.authorization.k8s.io',
    version: 'v1',
    kind: 'ClusterRole',
    plural: 'clusterroles',
    namespaced: false,
  }),
  stored({
    group: 'rbac.authorization.k8s.io',
    version: 'v1',
    kind: 'ClusterRoleBinding',
    plural: 'clusterrolebindings',
    namespaced: false,
  }),
  {
    // Create-only: answered from the caller's rights, never stored.
    group: 'authorization.k8s.io',
    version: 'v1',
    plural: 'selfsubjectaccessreviews',
    singular: 'selfsubjectaccessreview',
    kind: 'SelfSubjectAccessReview',
    namespaced: false,
    shortNames: [],
    subresources: [],
  },
];

export function apiVersionOf(type: ResourceType): string {
  return type.group ? `${type.group}/${type.version}` : type.version;
}

export function resourceByPlural(
  group: string,
  version: string,
  plural: string,
): ResourceType | undefined {
  return RESOURCE_TYPES.find(
    (t) => t.group === group && t.version === version && t.plural === plural,
  );
}

export function resourceByKind(kind: string): ResourceType | undefined {
  return RESOURCE_TYPES.find((t) => t.kind === kind);
}

/** A stored object: any Kubernetes object with the metadata the emulator relies on. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  generateName?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [field: string]: unknown;
}
