import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ObjectStore } from './api/store.js';
import type { ApiServer } from './api/server.js';
import { resourceByKind } from './api/resources.js';
import type { Enforcer, EnforcerStatus } from './enforcer/enforcer.js';
import { parseFault, type Fault } from './enforcer/faults.js';
import type { Kubelet, LabNode } from './runtime/kubelet.js';
import { netnsPath } from './runtime/network.js';

export interface LabPodStatus {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly ip: string;
  /** Every address, primary first: two for a dual-stack pod. */
  readonly ips: readonly string[];
  readonly node: string;
  readonly pid: number;
  /** A path usable with `nsenter --net=`. */
  readonly netns: string;
  readonly hostNetwork: boolean;
  readonly cgroup: string;
}

export interface LabStatus {
  readonly name: string;
  readonly kubeconfig: string;
  readonly apiServer: string;
  readonly resourceVersion: number;
  readonly faults: readonly string[];
  readonly nodes: readonly LabNode[];
  readonly pods: readonly LabPodStatus[];
  readonly policies: readonly string[];
  readonly enforcer: EnforcerStatus;
}

interface ControlContext {
  readonly name: string;
  readonly kubeconfig: string;
  readonly apiServer: () => string;
  readonly store: ObjectStore;
  readonly server: () => ApiServer;
  readonly kubelet: Kubelet;
  readonly enforcer: Enforcer;
  readonly nodes: readonly LabNode[];
}

export function labStatus(context: ControlContext): LabStatus {
  const policyType = resourceByKind('NetworkPolicy');
  return {
    name: context.name,
    kubeconfig: context.kubeconfig,
    apiServer: context.apiServer(),
    resourceVersion: context.store.resourceVersion,
    faults: context.enforcer.status().faults,
    nodes: context.nodes,
    pods: context.kubelet
      .pods()
      .map((p) => ({
        namespace: p.namespace,
        name: p.name,
        uid: p.uid,
        ip: p.ip,
        ips: p.ips,
        node: p.node,
        pid: p.pid,
        netns: p.netns ? netnsPath(p.netns) : `/proc/${p.pid}/ns/net`,
        hostNetwork: p.hostNetwork,
        cgroup: p.cgroup,
      }))
      .sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`)),
    policies: policyType
      ? context.store
          .list(policyType)
          .items.map((p) => `${p.metadata.namespace ?? ''}/${p.metadata.name}`)
      : [],
    enforcer: context.enforcer.status(),
  };
}

async function body(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return chunks.length === 0
    ? {}
    : (JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>);
}

function reply(response: ServerResponse, code: number, value: unknown): true {
  response.writeHead(code, { 'Content-Type': 'application/json' });
  response.end(JSON.stringify(value));
  return true;
}

/** The lab's own control API, beside the emulated Kubernetes API: `/lab/v1/…`. */
export function controlRoutes(context: ControlContext) {
  return async (request: IncomingMessage, response: ServerResponse, url: URL): Promise<boolean> => {
    if (!url.pathname.startsWith('/lab/v1/')) return false;
    const path = url.pathname.slice('/lab/v1/'.length);
    if (request.method === 'GET' && path === 'status')
      return reply(response, 200, labStatus(context));
    if (request.method === 'POST' && path === 'faults') {
      let fault: Fault;
      try {
        fault = parseFault(String((await body(request)).fault));
      } catch (error) {
        return reply(response, 400, { error: (error as Error).message });
      }
      context.enforcer.setFault(fault);
      return reply(response, 200, { faults: context.enforcer.status().faults });
    }
    if (request.method === 'DELETE' && (path === 'faults' || path.startsWith('faults/'))) {
      const kind = path.slice('faults/'.length) || undefined;
      context.enforcer.clearFaults(kind?.split('=')[0] as Fault['kind'] | undefined);
      return reply(response, 200, { faults: context.enforcer.status().faults });
    }
    if (request.method === 'POST' && path === 'compact') {
      context.store.compact();
      context.server().dropWatches();
      return reply(response, 200, { resourceVersion: context.store.resourceVersion });
    }
    return reply(response, 404, {
      error: `no lab control route ${request.method ?? ''} ${url.pathname}`,
    });
  };
}
