import { randomUUID } from 'node:crypto';
import {
  isClusterPolicyKind,
  validateClusterPolicy,
  validatePolicy,
  type ClusterPolicyManifest,
  type NetworkPolicy,
} from '#lumen/policy';
import { withClusterIp } from './cluster-ips.js';
import { ApiError } from './errors.js';
import { apiVersionOf, type KubeObject, type ResourceType } from './resources.js';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  readonly type: EventType;
  readonly resource: ResourceType;
  readonly object: KubeObject;
  /** The object before a modification, so watchers can tell a selector match starting or ending. */
  readonly previous?: KubeObject;
  readonly resourceVersion: number;
}

export interface StoreOptions {
  /** How many events are kept for watches that resume from a resourceVersion. */
  readonly historyLimit?: number;
  readonly now?: () => Date;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function keyOf(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

function randomSuffix(): string {
  return Math.random().toString(36).slice(2, 7).padEnd(5, 'x');
}

/**
 * The emulator's state: objects per resource type, one global resourceVersion counter,
 * and a bounded event history for watches. A test double of etcd plus the API server's
 * watch cache: no persistence, no admission beyond what Lumen relies on.
 */
export class ObjectStore {
  private version = 0;
  private readonly objects = new Map<ResourceType, Map<string, KubeObject>>();
  private history: StoreEvent[] = [];
  /** Watches may resume from any resourceVersion ≥ this one. */
  private oldestResumable = 0;
  private readonly listeners = new Set<(event: StoreEvent) => void>();
  private readonly historyLimit: number;
  private readonly now: () => Date;

  constructor(options: StoreOptions = {}) {
    this.historyLimit = options.historyLimit ?? 10_000;
    this.now = options.now ?? ((): Date => new Date());
  }

  get resourceVersion(): number {
    return this.version;
  }

  private bucket(type: ResourceType): Map<string, KubeObject> {
    let bucket = this.objects.get(type);
    if (!bucket) {
      bucket = new Map();
      this.objects.set(type, bucket);
    }
    return bucket;
  }

  list(type: ResourceType, namespace?: string): { items: KubeObject[]; resourceVersion: number } {
    const items = [...this.bucket(type).values()]
      .filter((o) => namespace === undefined || o.metadata.namespace === namespace)
      .sort((a, b) =>
        keyOf(a.metadata.namespace, a.metadata.name).localeCompare(
          keyOf(b.metadata.namespace, b.metadata.name),
        ),
      );
    return { items: items.map((o) => structuredClone(o)), resourceVersion: this.version };
  }

  /** The object, or undefined where there is none. */
  find(type: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    const object = this.bucket(type).get(keyOf(namespace, name));
    return object ? structuredClone(object) : undefined;
  }

  get(type: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const object = this.bucket(type).get(keyOf(namespace, name));
    if (!object) throw ApiError.notFound(type.kind, type.group, type.plural, name);
    return structuredClone(object);
  }

  private requireNamespace(type: ResourceType, namespace: string | undefined): void {
    if (!type.namespaced) return;
    const namespaces = [...this.objects.entries()].find(([t]) => t.kind === 'Namespace')?.[1];
    if (!namespace || !namespaces?.has(keyOf(undefined, namespace))) {
      throw new ApiError(404, 'NotFound', `namespaces "${namespace ?? ''}" not found`, {
        name: namespace,
        kind: 'namespaces',
      });
    }
  }

  /** The ClusterIPs of every stored Service. */
  private clusterIps(): Set<string> {
    const services = [...this.objects].find(([type]) => type.kind === 'Service')?.[1];
    return new Set(
      [...(services?.values() ?? [])].flatMap(
        (s) => (s.spec as { clusterIPs?: string[] } | undefined)?.clusterIPs ?? [],
      ),
    );
  }

  private validate(type: ResourceType, object: KubeObject): void {
    const { name } = object.metadata;
    const nameOk =
      type.kind === 'Namespace'
        ? DNS_LABEL.test(name) && name.length <= 63
        : DNS_SUBDOMAIN.test(name) && name.length <= 253;
    if (!nameOk) {
      throw ApiError.invalid(type.kind, type.group, name, [
        {
          field: 'metadata.name',
          message: `Invalid value: "${name}": a lowercase RFC 1123 name must consist of lower case alphanumeric characters, '-' or '.'`,
        },
      ]);
    }
    if (type.kind === 'NetworkPolicy') {
      const result = validatePolicy(object as unknown as NetworkPolicy);
      if (!result.ok) throw ApiError.invalid(type.kind, type.group, name, result.errors);
    }
    if (isClusterPolicyKind(type.kind)) {
      // What the CRD's schema and CEL rules would refuse.
      const result = validateClusterPolicy({
        ...(object as unknown as ClusterPolicyManifest),
        kind: type.kind,
      });
      if (!result.ok) throw ApiError.invalid(type.kind, type.group, name, result.errors);
    }
    if (type.kind === 'Pod') {
      const containers = (object.spec as { containers?: unknown } | undefined)?.containers;
      if (!Array.isArray(containers) || containers.length === 0) {
        throw ApiError.invalid(type.kind, type.group, name, [
          { field: 'spec.containers', message: 'Required value' },
        ]);
      }
    }
  }

  private checkIdentity(type: ResourceType, namespace: string | undefined, body: KubeObject): void {
    if (typeof body !== 'object' || typeof body.metadata !== 'object') {
      throw ApiError.badRequest('the object has no metadata');
    }
    if (body.kind && body.kind !== type.kind) {
      throw ApiError.badRequest(
        `the kind of the object (${body.kind}) does not match the resource (${type.kind})`,
      );
    }
    if (type.namespaced && body.metadata.namespace && body.metadata.namespace !== namespace) {
      throw ApiError.badRequest(
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    }
  }

  create(type: ResourceType, namespace: string | undefined, body: KubeObject): KubeObject {
    this.checkIdentity(type, namespace, body);
    const metadata = { ...body.metadata };
    if (!metadata.name && metadata.generateName)
      metadata.name = `${metadata.generateName}${randomSuffix()}`;
    if (!metadata.name)
      throw ApiError.invalid(type.kind, type.group, '', [
        { field: 'metadata.name', message: 'Required value: name or generateName is required' },
      ]);
    this.requireNamespace(type, namespace);
    const bucket = this.bucket(type);
    if (bucket.has(keyOf(namespace, metadata.name)))
      throw ApiError.alreadyExists(type.group, type.plural, metadata.name);
    const object: KubeObject = {
      ...structuredClone(body),
      apiVersion: apiVersionOf(type),
      kind: type.kind,
      metadata: {
        ...metadata,
        ...(type.namespaced ? { namespace } : {}),
        uid: randomUUID(),
        creationTimestamp: this.now()
          .toISOString()
          .replace(/\.\d{3}Z$/, 'Z'),
        generation: 1,
      },
    };
    if (type.kind === 'Namespace') {
      object.metadata.labels = {
        ...object.metadata.labels,
        'kubernetes.io/metadata.name': metadata.name,
      };
      object.status = { phase: 'Active' };
    }
    if (type.kind === 'Pod')
      object.status = { phase: 'Pending', ...(object.status as object | undefined) };
    if (type.kind === 'Secret') foldStringData(object);
    const stored = type.kind === 'Service' ? withClusterIp(object, this.clusterIps()) : object;
    this.validate(type, stored);
    return this.commit('ADDED', type, stored);
  }

  /** Replaces an object (or, with `subresource: 'status'`, only its status). */
  update(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    body: KubeObject,
    subresource?: string,
  ): KubeObject {
    this.checkIdentity(type, namespace, body);
    if (body.metadata.name && body.metadata.name !== name)
      throw ApiError.badRequest('the name of the object does not match the name on the URL');
    const current = this.get(type, namespace, name);
    const requested = body.metadata.resourceVersion;
    if (requested && requested !== current.metadata.resourceVersion)
      throw ApiError.conflict(type.group, type.plural, name);
    let next: KubeObject;
    if (subresource === 'status') {
      next = { ...current, status: structuredClone(body.status) };
    } else {
      next = {
        ...structuredClone(body),
        apiVersion: current.apiVersion,
        kind: current.kind,
        metadata: {
          ...body.metadata,
          name,
          ...(type.namespaced ? { namespace } : {}),
          uid: current.metadata.uid,
          creationTimestamp: current.metadata.creationTimestamp,
          generation:
            (current.metadata.generation ?? 1) +
            (JSON.stringify(body.spec) === JSON.stringify(current.spec) ? 0 : 1),
        },
      };
      if (type.subresources.includes('status')) next.status = current.status;
      if (type.kind === 'Namespace')
        next.metadata.labels = { ...next.metadata.labels, 'kubernetes.io/metadata.name': name };
      if (type.kind === 'Secret') foldStringData(next);
      if (type.kind === 'Service') next = withClusterIp(next, this.clusterIps(), current);
    }
    this.validate(type, next);
    return this.commit('MODIFIED', type, next, current);
  }

  delete(type: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const current = this.get(type, namespace, name);
    if (type.kind === 'Namespace') {
      // Namespace deletion takes everything in it along, as the namespace controller would.
      for (const [otherType, bucket] of this.objects) {
        if (!otherType.namespaced) continue;
        for (const object of [...bucket.values()]) {
          if (object.metadata.namespace === name) this.commit('DELETED', otherType, object, object);
        }
      }
    }
    const deleted = this.commit('DELETED', type, current, current);
    this.collectDependents(current);
    return deleted;
  }

  /** What the garbage collector does in the background: objects owned by a deleted one go. */
  private collectDependents(owner: KubeObject): void {
    for (const [dependentType, bucket] of this.objects) {
      for (const object of [...bucket.values()]) {
        const owners = (object.metadata['ownerReferences'] ?? []) as { uid?: string }[];
        if (!owners.some((o) => o.uid === owner.metadata.uid)) continue;
        if (!bucket.has(keyOf(object.metadata.namespace, object.metadata.name))) continue;
        this.delete(dependentType, object.metadata.namespace, object.metadata.name);
      }
    }
  }

  private commit(
    type: EventType,
    resource: ResourceType,
    object: KubeObject,
    previous?: KubeObject,
  ): KubeObject {
    this.version += 1;
    const stored: KubeObject = {
      ...object,
      metadata: { ...object.metadata, resourceVersion: String(this.version) },
    };
    const bucket = this.bucket(resource);
    const key = keyOf(stored.metadata.namespace, stored.metadata.name);
    if (type === 'DELETED') bucket.delete(key);
    else bucket.set(key, stored);
    const event: StoreEvent = {
      type,
      resource,
      object: stored,
      ...(previous ? { previous } : {}),
      resourceVersion: this.version,
    };
    this.history.push(event);
    if (this.history.length > this.historyLimit) {
      const dropped = this.history.splice(0, this.history.length - this.historyLimit);
      this.oldestResumable = dropped[dropped.length - 1]?.resourceVersion ?? this.oldestResumable;
    }
    for (const listener of this.listeners) listener(event);
    return structuredClone(stored);
  }

  /**
   * The events after `resourceVersion`, or `undefined` when they are no longer known
   * (the watch must then fail with 410 Gone and the client relist).
   */
  eventsSince(resourceVersion: number): StoreEvent[] | undefined {
    if (resourceVersion < this.oldestResumable) return undefined;
    return this.history.filter((e) => e.resourceVersion > resourceVersion);
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Forgets the event history, as etcd compaction does: older watches get 410 Gone. */
  compact(): void {
    this.history = [];
    this.oldestResumable = this.version;
  }
}

/** As the API server does: a Secret's `stringData` is written into `data`, base64. */
function foldStringData(secret: KubeObject): void {
  const stringData = secret['stringData'] as Record<string, string> | undefined;
  if (!stringData) return;
  const data = { ...((secret['data'] as Record<string, string> | undefined) ?? {}) };
  for (const [key, value] of Object.entries(stringData))
    data[key] = Buffer.from(value, 'utf8').toString('base64');
  secret['data'] = data;
  delete secret['stringData'];
}
