import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import {
  CLUSTER_POLICY_KINDS,
  isClusterPolicyKind,
  withNamespaceNameLabel,
  type Cluster,
  type ClusterPolicyManifest,
  type ContainerPort,
  type Namespace,
  type NetworkPolicy,
  type Pod,
  type PodRef,
  type Protocol,
} from '#lumen/policy';
import { InputError } from './errors.js';
import { issuePath, scenarioSchema } from './schema.js';

export interface Expectation {
  readonly from: PodRef;
  readonly to: PodRef;
  readonly port: number;
  readonly protocol: Protocol;
  readonly allowed: boolean;
  readonly loopback: boolean;
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  readonly origin: string;
  readonly tags: readonly string[];
  readonly file: string;
  readonly cluster: Cluster;
  readonly expectations: readonly Expectation[];
}

export type LoadedInput =
  | { readonly kind: 'scenario'; readonly file: string; readonly scenario: Scenario }
  | {
      readonly kind: 'manifests';
      readonly file: string;
      readonly cluster: Cluster;
      /** Every object of the file, Lists flattened, as written. */
      readonly objects: readonly Record<string, unknown>[];
      /** `Kind namespace/name` of objects that are not Namespaces, Pods or policies Lumen reads. */
      readonly ignored: readonly string[];
    };

function refOf(text: string): PodRef {
  const [namespace = '', name = ''] = text.split('/');
  return { namespace, name };
}

/** Namespaces declared, plus those the pods and policies live in, each with its name label. */
function completeNamespaces(
  declared: readonly Namespace[],
  pods: readonly Pod[],
  policies: readonly NetworkPolicy[],
): Namespace[] {
  const byName = new Map(declared.map((n) => [n.name, withNamespaceNameLabel(n.name, n.labels)]));
  for (const { namespace } of [...pods, ...policies.map((p) => p.metadata)]) {
    if (!byName.has(namespace)) byName.set(namespace, withNamespaceNameLabel(namespace));
  }
  return [...byName.values()];
}

const NETWORK_POLICY_VERSION = 'networking.k8s.io/v1';
const POLICY_KINDS = ['NetworkPolicy', ...Object.keys(CLUSTER_POLICY_KINDS)].join(', ');

/**
 * Sorts a scenario's `policies:` by kind: NetworkPolicies, and the cluster-scoped tiers.
 * An object of any other kind (or none) is an error that names it, never read as a
 * NetworkPolicy; so is a known kind under an API version Lumen does not read.
 */
function policiesByKind(
  raw: readonly Record<string, unknown>[],
  file: string,
  scenario: string,
): { policies: NetworkPolicy[]; clusterPolicies: ClusterPolicyManifest[] } {
  const policies: NetworkPolicy[] = [];
  const clusterPolicies: ClusterPolicyManifest[] = [];
  raw.forEach((object, i) => {
    const where = `scenario ${scenario} policies[${i}] (${describeObject(object, i)})`;
    const { kind, apiVersion } = object;
    if (kind === 'NetworkPolicy') {
      if (apiVersion !== undefined && apiVersion !== NETWORK_POLICY_VERSION)
        throw new InputError(
          file,
          where,
          `apiVersion ${JSON.stringify(apiVersion)}: NetworkPolicy is ${NETWORK_POLICY_VERSION}`,
        );
      policies.push(policyWithNamespace(object));
    } else if (isClusterPolicyKind(kind)) {
      if (apiVersion !== undefined && apiVersion !== CLUSTER_POLICY_KINDS[kind])
        throw new InputError(
          file,
          where,
          `apiVersion ${JSON.stringify(apiVersion)}: ${kind} is ${CLUSTER_POLICY_KINDS[kind]}`,
        );
      clusterPolicies.push(object as unknown as ClusterPolicyManifest);
    } else
      throw new InputError(
        file,
        where,
        kind === undefined
          ? `kind is required (one of ${POLICY_KINDS})`
          : `kind ${JSON.stringify(kind)} is not a policy kind Lumen reads (${POLICY_KINDS})`,
      );
  });
  return { policies, clusterPolicies };
}

function policyWithNamespace(raw: Record<string, unknown>): NetworkPolicy {
  const metadata = (raw.metadata ?? {}) as Record<string, unknown>;
  const namespace = typeof metadata.namespace === 'string' ? metadata.namespace : 'default';
  return { ...raw, metadata: { ...metadata, namespace } } as unknown as NetworkPolicy;
}

function uniquePods(file: string, pods: readonly Pod[], objectOf: (i: number) => string): void {
  const seen = new Set<string>();
  pods.forEach((pod, i) => {
    const key = `${pod.namespace}/${pod.name}`;
    if (seen.has(key)) throw new InputError(file, objectOf(i), `duplicate pod ${key}`);
    seen.add(key);
  });
}

export function parseScenario(document: unknown, file: string): Scenario {
  const parsed = scenarioSchema.safeParse(document);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InputError(
      file,
      `scenario${issue?.path.length ? ` ${issuePath(issue.path)}` : ''}`,
      issue?.message ?? 'invalid',
    );
  }
  const doc = parsed.data;
  const pods: Pod[] = doc.pods.map((p) => ({
    namespace: p.namespace,
    name: p.name,
    labels: p.labels,
    hostNetwork: p.hostNetwork,
    ...(p.ip === undefined ? {} : { ip: p.ip }),
    ports: p.ports.map((port) => ({
      ...(port.name === undefined ? {} : { name: port.name }),
      port: port.containerPort,
      protocol: port.protocol,
    })),
  }));
  uniquePods(file, pods, (i) => `scenario ${doc.name} pods[${i}]`);
  const known = new Set(pods.map((p) => `${p.namespace}/${p.name}`));
  doc.expect.forEach((row, i) => {
    for (const end of [row.from, row.to]) {
      if (!known.has(end))
        throw new InputError(
          file,
          `scenario ${doc.name} expect[${i}]`,
          `no pod ${end} in the scenario`,
        );
    }
  });
  const { policies, clusterPolicies } = policiesByKind(doc.policies, file, doc.name);
  return {
    name: doc.name,
    description: doc.description?.trim() ?? '',
    origin: doc.origin ?? '',
    tags: doc.tags,
    file,
    cluster: {
      namespaces: completeNamespaces(doc.namespaces, pods, policies),
      pods,
      policies,
      ...(clusterPolicies.length > 0 ? { clusterPolicies } : {}),
    },
    expectations: doc.expect.map((row) => ({ ...row, from: refOf(row.from), to: refOf(row.to) })),
  };
}

const objectMeta = z.looseObject({
  name: z.string().min(1),
  namespace: z.string().min(1).optional(),
  labels: z.record(z.string(), z.string()).nullish(),
});

const podManifest = z.looseObject({
  metadata: objectMeta,
  spec: z
    .looseObject({
      hostNetwork: z.boolean().nullish(),
      containers: z
        .array(
          z.looseObject({
            ports: z
              .array(
                z.looseObject({
                  name: z.string().nullish(),
                  containerPort: z.number().int().min(1).max(65535),
                  protocol: z.enum(['TCP', 'UDP', 'SCTP']).nullish(),
                }),
              )
              .nullish(),
          }),
        )
        .nullish(),
    })
    .nullish(),
  status: z.looseObject({ podIP: z.string().nullish() }).nullish(),
});

function podFromManifest(raw: unknown, file: string, object: string): Pod {
  const parsed = podManifest.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InputError(
      file,
      object,
      `${issuePath(issue?.path ?? [])}: ${issue?.message ?? 'invalid'}`,
    );
  }
  const { metadata, spec, status } = parsed.data;
  const ports: ContainerPort[] = (spec?.containers ?? []).flatMap((c) =>
    (c.ports ?? []).map((p) => ({
      ...(p.name ? { name: p.name } : {}),
      port: p.containerPort,
      protocol: p.protocol ?? 'TCP',
    })),
  );
  return {
    namespace: metadata.namespace ?? 'default',
    name: metadata.name,
    labels: metadata.labels ?? {},
    hostNetwork: spec?.hostNetwork ?? false,
    ports,
    ...(status?.podIP ? { ip: status.podIP } : {}),
  };
}

function describeObject(raw: Record<string, unknown>, index: number): string {
  const metadata = (raw.metadata ?? {}) as Record<string, unknown>;
  const name = typeof metadata.name === 'string' ? metadata.name : `#${index}`;
  const namespace = typeof metadata.namespace === 'string' ? `${metadata.namespace}/` : '';
  return `${String(raw.kind)} ${namespace}${name}`;
}

/** Namespaces, Pods, NetworkPolicies and the cluster-scoped tiers from manifests (`List`s too). */
export function parseManifests(documents: readonly unknown[], file: string): LoadedInput {
  const objects: Record<string, unknown>[] = [];
  const flatten = (value: unknown): void => {
    if (typeof value !== 'object' || value === null) return;
    const object = value as Record<string, unknown>;
    if (
      typeof object.kind === 'string' &&
      object.kind.endsWith('List') &&
      Array.isArray(object.items)
    ) {
      object.items.forEach(flatten);
    } else objects.push(object);
  };
  documents.forEach(flatten);
  const namespaces: Namespace[] = [];
  const pods: Pod[] = [];
  const policies: NetworkPolicy[] = [];
  const clusterPolicies: ClusterPolicyManifest[] = [];
  const ignored: string[] = [];
  objects.forEach((object, i) => {
    const name = describeObject(object, i);
    const metadata = objectMeta.safeParse(object.metadata);
    if (!metadata.success) throw new InputError(file, name, 'metadata.name is required');
    if (object.kind === 'Namespace')
      namespaces.push({ name: metadata.data.name, labels: metadata.data.labels ?? {} });
    else if (object.kind === 'Pod') pods.push(podFromManifest(object, file, name));
    else if (object.kind === 'NetworkPolicy') policies.push(policyWithNamespace(object));
    else if (isClusterPolicyKind(object.kind))
      clusterPolicies.push(object as unknown as ClusterPolicyManifest);
    else ignored.push(name);
  });
  uniquePods(file, pods, (i) => `Pod ${pods[i]?.namespace ?? ''}/${pods[i]?.name ?? ''}`);
  return {
    kind: 'manifests',
    file,
    cluster: {
      namespaces: completeNamespaces(namespaces, pods, policies),
      pods,
      policies,
      ...(clusterPolicies.length > 0 ? { clusterPolicies } : {}),
    },
    objects,
    ignored,
  };
}

function isScenario(document: unknown): boolean {
  return (
    typeof document === 'object' && document !== null && !('kind' in document) && 'pods' in document
  );
}

/** Parses a scenario file or a file of Kubernetes manifests (YAML or JSON). */
export function parseInput(text: string, file: string): LoadedInput {
  const documents = parseAllDocuments(text);
  if (!Array.isArray(documents)) throw new InputError(file, 'document', 'empty or unreadable YAML');
  const values: unknown[] = [];
  documents.forEach((document, i) => {
    const error = document.errors[0];
    if (error)
      throw new InputError(
        file,
        `document ${i + 1}`,
        `YAML error: ${error.message.split('\n')[0] ?? ''}`,
      );
    let value: unknown;
    try {
      // Aliases resolve here: one that names no anchor, or too many (an alias bomb), throws.
      value = document.toJS();
    } catch (aliasError) {
      throw new InputError(
        file,
        `document ${i + 1}`,
        `YAML error: ${aliasError instanceof Error ? aliasError.message : String(aliasError)}`,
      );
    }
    if (value !== null && value !== undefined) values.push(value);
  });
  if (values.length === 1 && isScenario(values[0])) {
    return { kind: 'scenario', file, scenario: parseScenario(values[0], file) };
  }
  return parseManifests(values, file);
}

/** The file name that means standard input, as for kubectl. */
export const STANDARD_INPUT = '-';

/** Reads a scenario or manifest file, or standard input when the file is `-`. */
export function loadInputFile(file: string): LoadedInput {
  let text: string;
  try {
    // File descriptor 0 reads a pipe or a redirected file to its end.
    text = readFileSync(file === STANDARD_INPUT ? 0 : file, 'utf8');
  } catch (error) {
    throw new InputError(
      file,
      'file',
      (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String(error),
    );
  }
  return parseInput(text, file);
}

export function loadScenarioFile(file: string): Scenario {
  const input = loadInputFile(file);
  if (input.kind !== 'scenario') throw new InputError(file, 'file', 'is not a scenario file');
  return input.scenario;
}

/** Several manifest files make one cluster. */
export function mergeClusters(clusters: readonly Cluster[]): Cluster {
  const pods = clusters.flatMap((c) => c.pods);
  const policies = clusters.flatMap((c) => c.policies);
  const namespaces = new Map<string, Namespace>();
  for (const namespace of clusters.flatMap((c) => c.namespaces)) {
    const known = namespaces.get(namespace.name);
    namespaces.set(namespace.name, {
      name: namespace.name,
      labels: { ...known?.labels, ...namespace.labels },
    });
  }
  const clusterPolicies = clusters.flatMap((c) => c.clusterPolicies ?? []);
  return {
    namespaces: [...namespaces.values()],
    pods,
    policies,
    ...(clusterPolicies.length > 0 ? { clusterPolicies } : {}),
  };
}
