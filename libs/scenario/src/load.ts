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
  type IpFamily,
} from '#lumen/policy';
import { InputError } from './errors.js';
import { clusterInFamily, familiesOf, speaks } from '#lumen/policy';
import { issuePath, scenarioSchema, type ScenarioDocument } from './schema.js';
import { backendsOf, parseService, type Service } from './services.js';

export interface Expectation {
  readonly from: PodRef;
  readonly to: PodRef;
  readonly port: number;
  readonly protocol: Protocol;
  readonly allowed: boolean;
  readonly loopback: boolean;
  /** Set when the row names one family; else it holds for each family both ends have. */
  readonly family?: IpFamily;
}

/** A connection to a Service's ClusterIP: its verdict is the one every ready backend gives. */
export interface ServiceExpectation {
  readonly from: PodRef;
  readonly service: { readonly namespace: string; readonly name: string };
  readonly port: number;
  readonly protocol: Protocol;
  readonly allowed: boolean;
  readonly loopback: boolean;
  readonly family?: IpFamily;
}

/** The scenario in one IP family: its pods at their addresses of it, and the rows that hold in it. */
export interface FamilyView {
  readonly family: IpFamily;
  readonly cluster: Cluster;
  readonly expectations: readonly Expectation[];
  readonly serviceExpectations: readonly ServiceExpectation[];
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  readonly origin: string;
  readonly tags: readonly string[];
  readonly file: string;
  /** The cluster in its primary family (a dual-stack pod's `ip` is its first address). */
  readonly cluster: Cluster;
  /** The pod-to-pod rows of the primary family. */
  readonly expectations: readonly Expectation[];
  readonly services: readonly Service[];
  /** The rows through Services, of the primary family. */
  readonly serviceExpectations: readonly ServiceExpectation[];
  /** Every family the pods have addresses in, primary first, each with its rows. */
  readonly families: readonly FamilyView[];
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
  const pods: Pod[] = doc.pods.map((p) => {
    const ip = p.ip ?? p.ips?.[0];
    return {
      namespace: p.namespace,
      name: p.name,
      labels: p.labels,
      hostNetwork: p.hostNetwork,
      ...(ip === undefined ? {} : { ip }),
      ...(p.ips === undefined ? {} : { ips: p.ips }),
      ports: p.ports.map((port) => ({
        ...(port.name === undefined ? {} : { name: port.name }),
        port: port.containerPort,
        protocol: port.protocol,
      })),
    };
  });
  uniquePods(file, pods, (i) => `scenario ${doc.name} pods[${i}]`);
  const services = doc.services.map((raw, i) =>
    parseService(raw, file, `scenario ${doc.name} services[${i}] (${describeObject(raw, i)})`),
  );
  const { policies, clusterPolicies } = policiesByKind(doc.policies, file, doc.name);
  const cluster: Cluster = {
    namespaces: completeNamespaces(doc.namespaces, pods, policies),
    pods,
    policies,
    ...(clusterPolicies.length > 0 ? { clusterPolicies } : {}),
  };
  const families = familyViews(doc, file, cluster, services);
  const primary = families[0];
  return {
    name: doc.name,
    description: doc.description?.trim() ?? '',
    origin: doc.origin ?? '',
    tags: doc.tags,
    file,
    cluster,
    expectations: primary?.expectations ?? [],
    services,
    serviceExpectations: primary?.serviceExpectations ?? [],
    families,
  };
}

const FAMILY_NAME: Record<IpFamily, string> = { 4: 'IPv4', 6: 'IPv6' };

/**
 * Each expect row checked against the scenario's pods and Services, then placed in the
 * families it holds for: the one it names, or each family both its ends have addresses in
 * (a Service's ends are its backends).
 */
function familyViews(
  doc: ScenarioDocument,
  file: string,
  cluster: Cluster,
  services: readonly Service[],
): FamilyView[] {
  const podsByKey = new Map(cluster.pods.map((p) => [`${p.namespace}/${p.name}`, p]));
  const servicesByKey = new Map(services.map((s) => [`${s.namespace}/${s.name}`, s]));
  const families = familiesOf(cluster);
  const [primary = 4] = families;
  const rows = doc.expect.map((row, i) => {
    const where = `scenario ${doc.name} expect[${i}]`;
    const podOf = (ref: string): Pod => {
      const pod = podsByKey.get(ref);
      if (!pod) throw new InputError(file, where, `no pod ${ref} in the scenario`);
      return pod;
    };
    const source = podOf(row.from);
    let ends: Pod[];
    let service: Service | undefined;
    if (row.service !== undefined) {
      service = servicesByKey.get(row.service);
      if (!service) throw new InputError(file, where, `no service ${row.service} in the scenario`);
      if (service.headless)
        throw new InputError(
          file,
          where,
          `service ${row.service} is headless (clusterIP: None): it has no ClusterIP to connect to`,
        );
      const backends = backendsOf(service, row.port, row.protocol, cluster.pods);
      if (backends === undefined)
        throw new InputError(
          file,
          where,
          `service ${row.service} has no port ${row.port}/${row.protocol}`,
        );
      if (backends.length === 0)
        throw new InputError(
          file,
          where,
          `service ${row.service} has no backend for port ${row.port}/${row.protocol}: no pod gives a verdict`,
        );
      ends = backends.map((b) => b.pod);
    } else ends = [podOf(row.to ?? '')];
    const holdsIn = families.filter(
      (f) =>
        (row.family === undefined || row.family === f) &&
        speaks(source, f, primary) &&
        ends.some((end) => speaks(end, f, primary)),
    );
    if (row.family !== undefined && holdsIn.length === 0)
      throw new InputError(
        file,
        where,
        `a connection over ${FAMILY_NAME[row.family]} needs ${row.from} and ${row.to ?? row.service ?? ''} to have ${FAMILY_NAME[row.family]} addresses`,
      );
    if (holdsIn.length === 0)
      throw new InputError(
        file,
        where,
        `${row.from} and ${row.to ?? row.service ?? ''} have no IP family in common`,
      );
    return { row, holdsIn, service };
  });
  return families.map((family) => {
    const inFamily = rows.filter((r) => r.holdsIn.includes(family));
    const familyField = (row: (typeof inFamily)[number]['row']) =>
      row.family === undefined ? {} : { family: row.family };
    return {
      family,
      cluster:
        families.length === 1 && !cluster.pods.some((p) => p.ips)
          ? cluster
          : clusterInFamily(cluster, family),
      expectations: inFamily
        .filter((r) => r.row.to !== undefined)
        .map(({ row }) => ({
          from: refOf(row.from),
          to: refOf(row.to ?? ''),
          port: row.port,
          protocol: row.protocol,
          allowed: row.allowed,
          loopback: row.loopback,
          ...familyField(row),
        })),
      serviceExpectations: inFamily
        .filter((r) => r.service !== undefined)
        .map(({ row, service }) => ({
          from: refOf(row.from),
          service: { namespace: service?.namespace ?? '', name: service?.name ?? '' },
          port: row.port,
          protocol: row.protocol,
          allowed: row.allowed,
          loopback: row.loopback,
          ...familyField(row),
        })),
    };
  });
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
