import { createHash, randomBytes } from 'node:crypto';
import { ApiError } from '../api/errors.js';
import { resourceByKind, type KubeObject, type ResourceType } from '../api/resources.js';
import type { ObjectStore, StoreEvent } from '../api/store.js';
import type { LabNode } from './kubelet.js';

interface PodTemplate {
  readonly metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  readonly spec?: Record<string, unknown> & { volumes?: unknown[] };
}

interface WorkloadSpec {
  readonly replicas?: number;
  readonly template?: PodTemplate;
  readonly serviceName?: string;
  readonly volumeClaimTemplates?: readonly { metadata?: { name?: string }; spec?: unknown }[];
}

type Log = (message: string, fields?: Record<string, unknown>) => void;

const WORKLOAD_KINDS = ['DaemonSet', 'Deployment', 'StatefulSet', 'Job'] as const;

function required(kind: string): ResourceType {
  const type = resourceByKind(kind);
  if (!type) throw new Error(`the ${kind} resource is not served`);
  return type;
}

/** A short, stable digest of a pod template: a changed template makes new pods. */
function templateHash(template: PodTemplate | undefined): string {
  return createHash('sha256')
    .update(JSON.stringify(template ?? {}))
    .digest('hex')
    .slice(0, 10);
}

const ownedBy = (pod: KubeObject, owner: KubeObject): boolean =>
  ((pod.metadata['ownerReferences'] ?? []) as { uid?: string }[]).some(
    (o) => o.uid === owner.metadata.uid,
  );

/**
 * The lab's workload controllers, as far as Lumen's chart and `lumen run` need them: a
 * DaemonSet gets one pod per node (`<name>-<node>`); a Deployment its replicas
 * (`<name>-<template hash>-<i>`, all replaced at once when the template changes); a
 * StatefulSet its ordinal pods (`<name>-<i>`) and, for each volume claim template, a
 * claim `<template>-<name>-<i>` that outlives it; a Job one pod, whose success or failure
 * becomes the Job's `Complete` or `Failed` condition. Pods go when their owner goes (the
 * garbage collector's part). There are no ReplicaSets, rollouts or disruption budgets.
 */
export class WorkloadController {
  private unsubscribe: (() => void) | undefined;
  private readonly pods = required('Pod');

  constructor(
    private readonly store: ObjectStore,
    private readonly nodes: readonly LabNode[],
    private readonly log: Log,
  ) {}

  start(): void {
    const kinds = new Set(WORKLOAD_KINDS.map(required));
    const jobs = required('Job');
    this.unsubscribe = this.store.subscribe((event) => {
      try {
        if (kinds.has(event.resource)) this.onWorkload(event);
        else if (event.resource === this.pods && event.type !== 'DELETED') this.onPod(event, jobs);
      } catch (error) {
        this.log('workload change failed', {
          kind: event.object.kind,
          name: `${event.object.metadata.namespace ?? ''}/${event.object.metadata.name}`,
          error: String(error),
        });
      }
    });
  }

  stop(): void {
    this.unsubscribe?.();
  }

  private onWorkload(event: StoreEvent): void {
    const workload = event.object;
    if (event.type === 'DELETED') {
      this.collect(workload, () => true);
      return;
    }
    const spec = (workload['spec'] ?? {}) as WorkloadSpec;
    switch (workload.kind) {
      case 'DaemonSet':
        for (const node of this.nodes)
          this.ensurePod(workload, `${workload.metadata.name}-${node.name}`, spec.template, {
            nodeName: node.name,
          });
        return;
      case 'Deployment': {
        const hash = templateHash(spec.template);
        const names = new Set(
          Array.from(
            { length: spec.replicas ?? 1 },
            (_, i) => `${workload.metadata.name}-${hash}-${i}`,
          ),
        );
        this.collect(workload, (pod) => !names.has(pod.metadata.name));
        for (const name of names)
          this.ensurePod(workload, name, spec.template, {
            labels: { 'pod-template-hash': hash },
          });
        this.setStatus(workload, {
          observedGeneration: workload.metadata.generation ?? 1,
          replicas: names.size,
          updatedReplicas: names.size,
          readyReplicas: names.size,
          availableReplicas: names.size,
        });
        return;
      }
      case 'StatefulSet':
        this.reconcileStatefulSet(workload, spec);
        return;
      case 'Job': {
        const existing = this.store
          .list(this.pods, workload.metadata.namespace)
          .items.some((pod) => ownedBy(pod, workload));
        if (existing || (workload['status'] as { startTime?: string } | undefined)?.startTime)
          return;
        const name = `${workload.metadata.name}-${randomBytes(3).toString('hex').slice(0, 5)}`;
        this.ensurePod(workload, name, spec.template, {
          labels: { 'job-name': workload.metadata.name },
        });
        this.setStatus(workload, { active: 1, startTime: new Date().toISOString() });
        return;
      }
      default:
        return;
    }
  }

  private reconcileStatefulSet(workload: KubeObject, spec: WorkloadSpec): void {
    const claims = required('PersistentVolumeClaim');
    const namespace = workload.metadata.namespace ?? 'default';
    const replicas = spec.replicas ?? 1;
    const names = Array.from({ length: replicas }, (_, i) => `${workload.metadata.name}-${i}`);
    this.collect(workload, (pod) => !names.includes(pod.metadata.name));
    for (const name of names) {
      const volumes = (spec.volumeClaimTemplates ?? []).map((template) => {
        const claimName = `${template.metadata?.name ?? 'data'}-${name}`;
        if (!this.store.find(claims, namespace, claimName))
          this.store.create(claims, namespace, {
            apiVersion: 'v1',
            kind: 'PersistentVolumeClaim',
            metadata: {
              name: claimName,
              namespace,
              labels: { ...(spec.template?.metadata?.labels ?? {}) },
            },
            spec: template.spec ?? {},
          });
        return { name: template.metadata?.name ?? 'data', persistentVolumeClaim: { claimName } };
      });
      const template = {
        ...spec.template,
        spec: {
          ...spec.template?.spec,
          hostname: name,
          ...(spec.serviceName ? { subdomain: spec.serviceName } : {}),
          volumes: [...(spec.template?.spec?.volumes ?? []), ...volumes],
        },
      };
      this.ensurePod(workload, name, template, {
        labels: { 'statefulset.kubernetes.io/pod-name': name },
      });
    }
    this.setStatus(workload, {
      observedGeneration: workload.metadata.generation ?? 1,
      replicas,
      readyReplicas: replicas,
      currentReplicas: replicas,
      updatedReplicas: replicas,
      availableReplicas: replicas,
    });
  }

  /** A Job's pod that ended makes the Job complete, or failed. */
  private onPod(event: StoreEvent, jobs: ResourceType): void {
    const pod = event.object;
    const phase = (pod['status'] as { phase?: string } | undefined)?.phase;
    if (phase !== 'Succeeded' && phase !== 'Failed') return;
    const owner = (
      (pod.metadata['ownerReferences'] ?? []) as { kind?: string; name?: string }[]
    ).find((o) => o.kind === 'Job');
    if (!owner?.name) return;
    const job = this.store.find(jobs, pod.metadata.namespace, owner.name);
    if (!job) return;
    const status = (job['status'] ?? {}) as { conditions?: unknown[] };
    if (status.conditions?.length) return;
    const now = new Date().toISOString();
    const condition = {
      type: phase === 'Succeeded' ? 'Complete' : 'Failed',
      status: 'True',
      lastProbeTime: now,
      lastTransitionTime: now,
      ...(phase === 'Failed' ? { reason: 'BackoffLimitExceeded', message: 'the pod failed' } : {}),
    };
    this.setStatus(job, {
      ...status,
      active: 0,
      ...(phase === 'Succeeded' ? { succeeded: 1, completionTime: now } : { failed: 1 }),
      conditions: [condition],
    });
    this.log('job ended', { job: `${job.metadata.namespace ?? ''}/${job.metadata.name}`, phase });
  }

  private ensurePod(
    owner: KubeObject,
    name: string,
    template: PodTemplate | undefined,
    extra: { readonly nodeName?: string; readonly labels?: Record<string, string> },
  ): void {
    const namespace = owner.metadata.namespace ?? 'default';
    const podName = name.slice(0, 63);
    if (this.store.find(this.pods, namespace, podName)) return;
    this.store.create(this.pods, namespace, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: podName,
        namespace,
        labels: { ...(template?.metadata?.labels ?? {}), ...extra.labels },
        annotations: { ...(template?.metadata?.annotations ?? {}) },
        ownerReferences: [
          {
            apiVersion: owner.apiVersion,
            kind: owner.kind,
            name: owner.metadata.name,
            uid: owner.metadata.uid,
            controller: true,
          },
        ],
      },
      spec: { ...(template?.spec ?? {}), ...(extra.nodeName ? { nodeName: extra.nodeName } : {}) },
    });
    this.log(`${owner.kind.toLowerCase()} pod created`, {
      pod: `${namespace}/${podName}`,
      ...(extra.nodeName ? { node: extra.nodeName } : {}),
    });
  }

  /** Deletes the owner's pods that `unwanted` names. */
  private collect(owner: KubeObject, unwanted: (pod: KubeObject) => boolean): void {
    const namespace = owner.metadata.namespace ?? 'default';
    for (const pod of this.store.list(this.pods, namespace).items) {
      if (!ownedBy(pod, owner) || !unwanted(pod)) continue;
      try {
        this.store.delete(this.pods, namespace, pod.metadata.name);
      } catch (error) {
        if (!(error instanceof ApiError && error.code === 404)) throw error;
      }
    }
  }

  private setStatus(workload: KubeObject, status: Record<string, unknown>): void {
    const type = required(workload.kind);
    if (JSON.stringify(workload['status'] ?? {}) === JSON.stringify(status)) return;
    try {
      const current = this.store.get(type, workload.metadata.namespace, workload.metadata.name);
      this.store.update(
        type,
        workload.metadata.namespace,
        workload.metadata.name,
        { ...current, status },
        'status',
      );
    } catch (error) {
      if (!(error instanceof ApiError && error.code === 404)) throw error;
    }
  }
}
