import { z } from 'zod';
import {
  PROTOCOLS,
  type Cluster,
  type Connection,
  type IpFamily,
  type Labels,
  type Pod,
  type PodRef,
  type Protocol,
  type Verdict,
} from '#lumen/policy';
import { familiesOf, speaks } from '#lumen/policy';
import { InputError } from './errors.js';
import { issuePath } from './schema.js';

/** One port of a Service: clients connect to `port`, backends are reached on `targetPort`. */
export interface ServicePort {
  readonly name?: string;
  readonly port: number;
  /** A number, or the name of a container port of each backend. */
  readonly targetPort: number | string;
  readonly protocol: Protocol;
}

/** A v1 Service as Lumen reads it: which pods back it, on which ports, at which addresses. */
export interface Service {
  readonly namespace: string;
  readonly name: string;
  /** null: a Service without a selector, whose endpoints someone else manages. */
  readonly selector: Labels | null;
  /** spec.clusterIPs (or clusterIP); empty when the cluster assigns them, "None" excluded. */
  readonly clusterIPs: readonly string[];
  /** A headless Service (clusterIP: None) has no address of its own to connect to. */
  readonly headless: boolean;
  readonly ports: readonly ServicePort[];
}

export const SERVICE_API_VERSION = 'v1';

const port = z.number().int().min(1).max(65535);
const ipAddress = z.union([z.ipv4(), z.ipv6()]);

const serviceManifest = z.looseObject({
  apiVersion: z.literal(SERVICE_API_VERSION, { message: 'a Service is apiVersion v1' }).optional(),
  kind: z.literal('Service', { message: 'must be kind Service' }),
  metadata: z.looseObject({
    name: z.string().min(1).max(63),
    namespace: z.string().min(1).max(63).optional(),
  }),
  spec: z.looseObject({
    type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer']).optional(),
    selector: z.record(z.string(), z.string()).nullish(),
    clusterIP: z.union([ipAddress, z.literal('None'), z.literal('')]).optional(),
    clusterIPs: z
      .array(z.union([ipAddress, z.literal('None')]))
      .max(2)
      .optional(),
    ports: z
      .array(
        z.looseObject({
          name: z.string().min(1).max(63).optional(),
          port,
          targetPort: z.union([port, z.string().min(1).max(15)]).optional(),
          protocol: z.enum(PROTOCOLS).optional(),
        }),
      )
      .min(1, 'a Service needs at least one port'),
  }),
});

/** Reads a scenario's `services:` entry; an object that is not a v1 Service is refused by name. */
export function parseService(raw: unknown, file: string, where: string): Service {
  const parsed = serviceManifest.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InputError(
      file,
      where,
      `${issuePath(issue?.path ?? []) || 'value'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  const { metadata, spec } = parsed.data;
  const addresses = spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : []);
  return {
    namespace: metadata.namespace ?? 'default',
    name: metadata.name,
    selector: spec.selector ?? null,
    clusterIPs: addresses.filter((a) => a !== 'None'),
    headless: addresses.includes('None'),
    ports: spec.ports.map((p) => ({
      ...(p.name === undefined ? {} : { name: p.name }),
      port: p.port,
      targetPort: p.targetPort ?? p.port,
      protocol: p.protocol ?? 'TCP',
    })),
  };
}

/** A ready backend of a Service port: the pod, and the port a connection to the Service reaches on it. */
export interface Backend {
  readonly pod: Pod;
  readonly port: number;
}

/**
 * The backends a connection to `service:port/protocol` may reach: the pods of its
 * namespace its selector selects, each on the target port (a named target port is each
 * pod's container port of that name and protocol; a pod without it is not an endpoint of
 * the port, as the EndpointSlice controller leaves it out). Undefined when the Service has
 * no such port.
 */
export function backendsOf(
  service: Service,
  servicePort: number,
  protocol: Protocol,
  pods: readonly Pod[],
): Backend[] | undefined {
  const entry = service.ports.find((p) => p.port === servicePort && p.protocol === protocol);
  if (!entry) return undefined;
  const selector = service.selector;
  if (selector === null || Object.keys(selector).length === 0) return [];
  return pods
    .filter(
      (pod) =>
        pod.namespace === service.namespace &&
        Object.entries(selector).every(([key, value]) => pod.labels[key] === value),
    )
    .flatMap((pod): Backend[] => {
      if (typeof entry.targetPort === 'number') return [{ pod, port: entry.targetPort }];
      const named = pod.ports.find((p) => p.name === entry.targetPort && p.protocol === protocol);
      return named ? [{ pod, port: named.port }] : [];
    });
}

/** What one backend's policies say of a connection through its Service. */
export interface BackendVerdict {
  readonly pod: Pod;
  /** The backend's port the Service translates to. */
  readonly port: number;
  readonly verdict: Verdict;
}

/**
 * A connection through a Service as each ready backend decides it, in one family's view:
 * policies apply after the Service's address translation, so each is the pod-to-pod
 * verdict from the source to that backend on its target port.
 */
export function serviceRowVerdicts(
  evaluator: { verdict(connection: Connection): Verdict },
  view: { readonly family: IpFamily; readonly cluster: Cluster },
  services: readonly Service[],
  row: {
    readonly from: PodRef;
    readonly service: { readonly namespace: string; readonly name: string };
    readonly port: number;
    readonly protocol: Protocol;
  },
): BackendVerdict[] {
  const service = services.find(
    (s) => s.namespace === row.service.namespace && s.name === row.service.name,
  );
  if (!service) throw new Error(`no service ${row.service.namespace}/${row.service.name}`);
  const primary = familiesOf(view.cluster)[0] ?? 4;
  return (backendsOf(service, row.port, row.protocol, view.cluster.pods) ?? [])
    .filter((b) => speaks(b.pod, view.family, primary))
    .map((b) => ({
      pod: b.pod,
      port: b.port,
      verdict: evaluator.verdict({
        from: row.from,
        to: b.pod,
        port: b.port,
        protocol: row.protocol,
      }),
    }));
}
