import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { bundledNatsServer } from '#lumen/messaging';
import { dirname, join } from 'node:path';
import type { Protocol } from '#lumen/policy';
import { ApiError } from '../api/errors.js';
import { resourceByKind, type KubeObject } from '../api/resources.js';
import type { ObjectStore, StoreEvent } from '../api/store.js';
import type { LabNames } from '../naming.js';
import { addProcess, podCgroupPath, processesIn, removeTree } from './cgroups.js';
import { closeListeners, listenable, openListeners, type Listener } from './listeners.js';
import { createPodNetwork, deleteNetns, ensureNeighbourCapacity, netnsPath } from './network.js';
import { lumenProcess, processLog, resolveEnv } from './lumen-image.js';
import { mountVolumes, mountedArgs, mountedPaths, type MountView } from './volumes.js';
import {
  HostPorts,
  HOST_PORTS_ANNOTATION,
  natsConfigOnHost,
  serviceAddresses,
} from './host-network.js';

/** NATS's image, by its name: `nats:<tag>`, `…/nats@sha256:…`. */
const NATS_IMAGE = /(^|\/)nats([:@]|$)/;

/**
 * Annotation by which a lab pod asks for fixed IPs (scenario files give some): one, or one
 * per family, comma-separated, for a dual-stack pod (`status.podIPs`, primary first).
 */
export const POD_IP_ANNOTATION = 'lab.lumen.dev/pod-ip';

export interface LabNode {
  readonly name: string;
  /** The node's pod range, a /24. */
  readonly podCidr: string;
  /** The node's own address: the first of its range; hostNetwork pods use it. */
  readonly ip: string;
}

export interface RunningPod {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly node: string;
  /** Its primary address: `status.podIP`. */
  readonly ip: string;
  /** Every address, primary first (`status.podIPs`): two for a dual-stack pod. */
  readonly ips: readonly string[];
  readonly hostNetwork: boolean;
  /** Absent for hostNetwork pods, which live in the host's namespace. */
  readonly netns: string | undefined;
  readonly pid: number;
  readonly cgroup: string;
  readonly containerId: string;
  readonly listeners: readonly Listener[];
}

export interface KubeletOptions {
  readonly store: ObjectStore;
  readonly names: LabNames;
  readonly nodes: readonly LabNode[];
  readonly cgroupRoot: string;
  readonly log: (message: string, fields?: Record<string, unknown>) => void;
  /** Called after a pod started or stopped. */
  readonly onChange: () => void;
  /** A TokenRequest's token, for a pod's projected ServiceAccount token volume. */
  readonly serviceAccountToken?: (
    namespace: string,
    serviceAccount: string,
    body: object,
  ) => string;
}

interface PodSpecView {
  readonly nodeName?: string;
  readonly hostNetwork?: boolean;
  readonly serviceAccountName?: string;
  readonly restartPolicy?: 'Always' | 'OnFailure' | 'Never';
  readonly volumes?: Parameters<typeof mountVolumes>[0]['volumes'];
  readonly containers?: readonly {
    image?: string;
    command?: string[];
    args?: string[];
    env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath?: string } } }[];
    ports?: readonly { name?: string; containerPort: number; protocol?: Protocol }[];
    volumeMounts?: readonly MountView[];
  }[];
}

function specOf(pod: KubeObject): PodSpecView {
  return pod.spec ?? {};
}

function nodeAddresses(node: LabNode): { prefix: string; first: number } {
  const base = node.podCidr.split('/')[0] ?? '';
  return { prefix: base.split('.').slice(0, 3).join('.'), first: 2 };
}

/**
 * The lab's kubelet and scheduler in one: it binds new pods to the node with the fewest
 * pods, starts them (network namespace, veth, IP, listeners, a sleeper in a kubelet-shaped
 * cgroup), reports their status through the API, and tears them down when deleted.
 */
export class Kubelet {
  private readonly running = new Map<string, RunningPod>();
  private readonly queues = new Map<string, Promise<void>>();
  private readonly usedIps = new Set<string>();
  private readonly hostPorts = new HostPorts();
  /** Pods being started, and the exit codes of processes that ended meanwhile. */
  private readonly starting = new Set<string>();
  private readonly exits = new Map<string, number | null>();
  private nextIndex = 1;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly options: KubeletOptions) {}

  start(): void {
    const podType = resourceByKind('Pod');
    if (!podType) throw new Error('the Pod resource is not served');
    this.unsubscribe = this.options.store.subscribe((event) => {
      if (event.resource === podType) this.enqueue(event);
    });
    for (const pod of this.options.store.list(podType).items) {
      this.enqueue({ type: 'ADDED', resource: podType, object: pod, resourceVersion: 0 });
    }
  }

  pods(): RunningPod[] {
    return [...this.running.values()];
  }

  /** Waits until every queued pod change has been carried out. */
  async idle(): Promise<void> {
    while (this.queues.size > 0) await Promise.all([...this.queues.values()]);
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    await this.idle();
    await Promise.all([...this.running.values()].map((pod) => this.stopPod(pod)));
  }

  private enqueue(event: StoreEvent): void {
    const uid = event.object.metadata.uid ?? '';
    const previous = this.queues.get(uid) ?? Promise.resolve();
    const next = previous
      .then(() => this.handle(event))
      .catch((error: unknown) => {
        this.options.log('pod change failed', {
          pod: `${event.object.metadata.namespace ?? ''}/${event.object.metadata.name}`,
          error: String(error),
        });
      })
      .finally(() => {
        if (this.queues.get(uid) === next) this.queues.delete(uid);
      });
    this.queues.set(uid, next);
  }

  private async handle(event: StoreEvent): Promise<void> {
    const pod = event.object;
    const uid = pod.metadata.uid ?? '';
    const running = this.running.get(uid);
    if (event.type === 'DELETED') {
      if (running) await this.stopPod(running);
      return;
    }
    if (running) return;
    const nodeName = specOf(pod).nodeName;
    if (!nodeName) {
      this.bind(pod);
      return;
    }
    const node = this.options.nodes.find((n) => n.name === nodeName);
    if (!node) {
      this.options.log('pod bound to an unknown node', { pod: pod.metadata.name, node: nodeName });
      return;
    }
    await this.startPod(pod, node);
  }

  /** Binds a pod to the node with the fewest pods bound to it, as a spreading scheduler would. */
  private bind(pod: KubeObject): void {
    const podType = resourceByKind('Pod');
    if (!podType) return;
    const load = new Map(this.options.nodes.map((n) => [n.name, 0]));
    for (const other of this.options.store.list(podType).items) {
      const node = specOf(other).nodeName;
      if (node !== undefined) load.set(node, (load.get(node) ?? 0) + 1);
    }
    const [target] = [...load.entries()].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]));
    if (!target) return;
    this.update(() => {
      const current = this.options.store.get(podType, pod.metadata.namespace, pod.metadata.name);
      const spec = { ...(current.spec as object), nodeName: target[0] };
      this.options.store.update(podType, pod.metadata.namespace, pod.metadata.name, {
        ...current,
        spec,
      });
    });
  }

  /** Runs an API write that may race with the pod's deletion, which is not an error. */
  private update(write: () => void): void {
    try {
      write();
    } catch (error) {
      if (!(error instanceof ApiError && error.code === 404)) throw error;
    }
  }

  /**
   * The pod's addresses: those it asks for (at most one per family), else one free IPv4
   * address of its node's range. All or none are taken.
   */
  private allocateIps(node: LabNode, requested: string | undefined): string[] {
    if (requested) {
      const ips = requested
        .split(',')
        .map((ip) => ip.trim())
        .filter((ip) => ip !== '');
      const families = new Set(ips.map((ip) => (ip.includes(':') ? 6 : 4)));
      if (ips.length > 2 || families.size !== ips.length)
        throw new Error(
          `${POD_IP_ANNOTATION} ${requested}: at most one address of each family is allowed`,
        );
      const taken = ips.find((ip) => this.usedIps.has(ip));
      if (taken) throw new Error(`IP ${taken} is already in use`);
      for (const ip of ips) this.usedIps.add(ip);
      return ips;
    }
    const { prefix, first } = nodeAddresses(node);
    for (let host = first; host < 255; host++) {
      const ip = `${prefix}.${host}`;
      if (!this.usedIps.has(ip)) {
        this.usedIps.add(ip);
        return [ip];
      }
    }
    throw new Error(`node ${node.name} has no free pod IP in ${node.podCidr}`);
  }

  private async startPod(pod: KubeObject, node: LabNode): Promise<void> {
    const { names, cgroupRoot } = this.options;
    const uid = pod.metadata.uid ?? '';
    const spec = specOf(pod);
    const hostNetwork = spec.hostNetwork === true;
    const index = this.nextIndex++;
    const containerId = randomBytes(32).toString('hex');
    const cgroup = podCgroupPath(cgroupRoot, names.cgroupDir, uid, containerId);
    const ips = hostNetwork
      ? [node.ip]
      : this.allocateIps(node, pod.metadata.annotations?.[POD_IP_ANNOTATION]);
    const ip = ips[0] as string;
    const netns = hostNetwork ? undefined : names.podNetns(index);
    let pid = 0;
    let listeners: Listener[] = [];
    const record = (): RunningPod => ({
      uid,
      namespace: pod.metadata.namespace ?? '',
      name: pod.metadata.name,
      node: node.name,
      ip,
      ips,
      hostNetwork,
      netns,
      pid,
      cgroup,
      containerId,
      listeners,
    });
    this.starting.add(uid);
    try {
      if (netns) {
        ensureNeighbourCapacity(this.running.size + 1, (message) => {
          this.options.log(message);
        });
        await createPodNetwork(names, index, ips);
      }
      const sleeper = await this.startContainer(pod, spec, node, netns);
      sleeper.unref();
      pid = sleeper.pid ?? 0;
      await addProcess(cgroup, pid);
      const ports = (spec.containers ?? []).flatMap((c) =>
        (c.ports ?? []).map((p) => ({ port: p.containerPort, protocol: p.protocol ?? 'TCP' })),
      );
      if (netns) listeners = await openListeners(netnsPath(netns), listenable(ports));
    } catch (error) {
      this.starting.delete(uid);
      this.exits.delete(uid);
      await this.release(record());
      this.setStatus(pod, { phase: 'Failed', reason: 'LabStartError', message: String(error) });
      throw error;
    }
    const running = record();
    this.running.set(uid, running);
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const conditions = ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].map((type) => ({
      type,
      status: 'True',
      lastTransitionTime: now,
    }));
    this.setStatus(pod, {
      phase: 'Running',
      hostIP: node.ip,
      podIP: ip,
      podIPs: ips.map((address) => ({ ip: address })),
      startTime: now,
      conditions,
      containerStatuses: [
        {
          name: 'lab',
          ready: true,
          started: true,
          restartCount: 0,
          image: 'lumen-lab',
          imageID: 'lumen-lab',
          containerID: `containerd://${containerId}`,
          state: { running: { startedAt: now } },
        },
      ],
    });
    this.options.log('pod started', {
      pod: `${running.namespace}/${running.name}`,
      ips,
      node: node.name,
      netns,
    });
    this.annotateHostPorts(pod);
    this.starting.delete(uid);
    if (this.exits.has(uid)) {
      this.ended(pod, this.exits.get(uid) ?? null);
      this.exits.delete(uid);
    }
    this.options.onChange();
  }

  /**
   * The pod's process: Lumen's entrypoint for a pod of Lumen's image, nats-server for
   * NATS's, a sleeper for any other, in the pod's network namespace (the host's for
   * hostNetwork pods, and for Lumen's and NATS's, which run on the host: see HostPorts).
   */
  private async startContainer(
    pod: KubeObject,
    spec: PodSpecView,
    node: LabNode,
    netns: string | undefined,
  ): Promise<ChildProcess> {
    const launch = this.hostProcess(pod, spec, node);
    if (!launch) {
      const [command = 'sleep', ...args] = netns
        ? ['nsenter', `--net=${netnsPath(netns)}`, 'sleep', 'infinity']
        : ['sleep', 'infinity'];
      return spawn(command, args, { detached: true, stdio: 'ignore' });
    }
    const child = await this.spawnHostProcess(pod, launch);
    this.supervise(pod, spec, launch, child, 0);
    return child;
  }

  /** What runs a pod of Lumen's or NATS's image on the host; undefined for other images. */
  private hostProcess(
    pod: KubeObject,
    spec: PodSpecView,
    node: LabNode,
  ): (() => Promise<{ argv: string[]; env: Record<string, string> }>) | undefined {
    const namespace = pod.metadata.namespace ?? '';
    const where = { nodeName: node.name, namespace, name: pod.metadata.name };
    const secret = (ns: string, name: string) => this.secretData(ns, name);
    const container = spec.containers?.[0];
    const ports = this.hostPorts;
    const hostPort = (containerPort: number) =>
      ports.of(namespace, pod.metadata.name, containerPort);
    if (container?.image && NATS_IMAGE.test(container.image)) {
      return async () => {
        const hostPaths = this.volumes(pod, spec);
        const [, configFile] = mountedArgs(container.args ?? [], hostPaths);
        if (!configFile)
          throw new Error(`the NATS container of ${pod.metadata.name} names no --config`);
        const config = join(this.volumesDir(pod.metadata.uid ?? ''), 'nats-on-host.conf');
        writeFileSync(
          config,
          await natsConfigOnHost(readFileSync(configFile, 'utf8'), hostPort, hostPaths),
          { mode: 0o600 },
        );
        return {
          argv: [bundledNatsServer() ?? 'nats-server', '-a', '127.0.0.1', '--config', config],
          env: {
            PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
            ...resolveEnv(container.env ?? [], where, secret),
          },
        };
      };
    }
    const lumen = lumenProcess(spec.containers, where, secret);
    if (!lumen) return undefined;
    return async () => {
      const env = mountedPaths(lumen.env, this.volumes(pod, spec));
      const http = (container?.ports ?? []).find((p) => p.name === 'http')?.containerPort;
      return {
        argv: [...lumen.argv],
        env: {
          // In-cluster, a pod reaches the API with its ServiceAccount's token; in the
          // lab it uses the lab's kubeconfig (the emulator enforces no RBAC).
          KUBECONFIG: this.options.names.kubeconfig,
          ...(await serviceAddresses(env, namespace, this.options.store, ports)),
          HTTP_PORT: String(await hostPort(http ?? Number(env['HTTP_PORT'] ?? 8080))),
        },
      };
    };
  }

  private async spawnHostProcess(
    pod: KubeObject,
    launch: () => Promise<{ argv: string[]; env: Record<string, string> }>,
  ): Promise<ChildProcess> {
    const { argv, env } = await launch();
    const output = processLog(
      this.options.names.stateDir,
      pod.metadata.namespace ?? '',
      pod.metadata.name,
    );
    try {
      const [command = 'false', ...args] = argv;
      return spawn(command, args, { detached: true, stdio: ['ignore', output, output], env });
    } finally {
      // The child holds its own copy of the log descriptor.
      closeSync(output);
    }
  }

  /**
   * A host process that ends: restarted as its pod's restartPolicy says (Always by default,
   * OnFailure on a non-zero exit; after 0.5 s, doubling up to 10 s), or it ends its pod
   * (Succeeded on exit 0, Failed otherwise), as a Job's does.
   */
  private supervise(
    pod: KubeObject,
    spec: PodSpecView,
    launch: () => Promise<{ argv: string[]; env: Record<string, string> }>,
    child: ChildProcess,
    restarts: number,
  ): void {
    child.once('exit', (code) => {
      const uid = pod.metadata.uid ?? '';
      const policy = spec.restartPolicy ?? 'Always';
      const restart = policy === 'Always' || (policy === 'OnFailure' && code !== 0);
      const alive = this.running.has(uid) || this.starting.has(uid);
      if (!restart || !alive) {
        this.ended(pod, code);
        return;
      }
      const delay = Math.min(10_000, 500 * 2 ** restarts);
      setTimeout(() => {
        const running = this.running.get(uid);
        if (!running) return;
        void this.spawnHostProcess(pod, launch)
          .then(async (next) => {
            next.unref();
            await addProcess(running.cgroup, next.pid ?? 0);
            this.options.log('container restarted', {
              pod: `${running.namespace}/${running.name}`,
              restarts: restarts + 1,
              exitCode: code,
            });
            this.supervise(pod, spec, launch, next, restarts + 1);
          })
          .catch((error: unknown) => {
            this.options.log('container restart failed', {
              pod: running.name,
              error: String(error),
            });
          });
      }, delay).unref();
    });
  }

  /** A host-run container's volumes made on the host: mount path → host path. */
  private volumes(pod: KubeObject, spec: PodSpecView): Map<string, string> {
    const namespace = pod.metadata.namespace ?? '';
    const mounts = spec.containers?.[0]?.volumeMounts ?? [];
    if (mounts.length === 0) return new Map();
    return mountVolumes(
      { namespace, ...(spec.volumes ? { volumes: spec.volumes } : {}) },
      mounts,
      {
        podDir: this.volumesDir(pod.metadata.uid ?? ''),
        claimsDir: join(this.options.names.stateDir, 'claims'),
      },
      {
        secret: (ns, name) => this.secretData(ns, name),
        configMap: (ns, name) => this.configMapData(ns, name),
        token: (audience, expirationSeconds) => {
          if (!this.options.serviceAccountToken)
            throw new Error('this lab mints no ServiceAccount tokens for projected volumes');
          return this.options.serviceAccountToken(namespace, spec.serviceAccountName ?? 'default', {
            spec: {
              ...(audience ? { audiences: [audience] } : {}),
              ...(expirationSeconds ? { expirationSeconds } : {}),
              boundObjectRef: { kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid },
            },
          });
        },
      },
    );
  }

  /** Where a host-run pod's ports are on the host, for whoever must reach it (a test). */
  private annotateHostPorts(pod: KubeObject): void {
    const ports = this.hostPorts.ofPod(pod.metadata.namespace ?? '', pod.metadata.name);
    const podType = resourceByKind('Pod');
    if (!podType || Object.keys(ports).length === 0) return;
    this.update(() => {
      const current = this.options.store.get(podType, pod.metadata.namespace, pod.metadata.name);
      this.options.store.update(podType, pod.metadata.namespace, pod.metadata.name, {
        ...current,
        metadata: {
          ...current.metadata,
          annotations: {
            ...current.metadata.annotations,
            [HOST_PORTS_ANNOTATION]: JSON.stringify(ports),
          },
        },
      });
    });
  }

  private volumesDir(uid: string): string {
    return join(this.options.names.stateDir, 'volumes', uid);
  }

  private configMapData(namespace: string, name: string): Record<string, string> | undefined {
    const type = resourceByKind('ConfigMap');
    if (!type) return undefined;
    const found = this.options.store.find(type, namespace, name);
    return found ? ((found['data'] ?? {}) as Record<string, string>) : undefined;
  }

  private ended(pod: KubeObject, code: number | null): void {
    const uid = pod.metadata.uid ?? '';
    if (!this.running.has(uid)) {
      // It ended before its pod was reported Running (a quick Job): reported after that.
      if (this.starting.has(uid)) this.exits.set(uid, code);
      return;
    }
    const podType = resourceByKind('Pod');
    if (!podType) return;
    const phase = code === 0 ? 'Succeeded' : 'Failed';
    this.update(() => {
      const current = this.options.store.get(podType, pod.metadata.namespace, pod.metadata.name);
      const status = (current['status'] ?? {}) as Record<string, unknown>;
      const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
      this.options.store.update(
        podType,
        pod.metadata.namespace,
        pod.metadata.name,
        {
          ...current,
          status: {
            ...status,
            phase,
            conditions: ((status['conditions'] ?? []) as { type: string }[]).map((c) =>
              c.type === 'Ready' || c.type === 'ContainersReady' ? { ...c, status: 'False' } : c,
            ),
            containerStatuses: [
              {
                name: 'lab',
                ready: false,
                started: false,
                restartCount: 0,
                image: 'lumen-lab',
                imageID: 'lumen-lab',
                state: { terminated: { exitCode: code ?? 137, finishedAt: now } },
              },
            ],
          },
        },
        'status',
      );
    });
    this.options.log('pod process ended', {
      pod: `${pod.metadata.namespace ?? ''}/${pod.metadata.name}`,
      phase,
      code,
    });
  }

  private secretData(namespace: string, name: string): Record<string, string> | undefined {
    const secretType = resourceByKind('Secret');
    if (!secretType) return undefined;
    try {
      const secret = this.options.store.get(secretType, namespace, name);
      const data = (secret['data'] ?? {}) as Record<string, string>;
      return Object.fromEntries(
        Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
      );
    } catch (error) {
      if (error instanceof ApiError && error.code === 404) return undefined;
      throw error;
    }
  }

  private setStatus(pod: KubeObject, status: Record<string, unknown>): void {
    const podType = resourceByKind('Pod');
    if (!podType) return;
    this.update(() => {
      const current = this.options.store.get(podType, pod.metadata.namespace, pod.metadata.name);
      this.options.store.update(
        podType,
        pod.metadata.namespace,
        pod.metadata.name,
        { ...current, status },
        'status',
      );
    });
  }

  private async stopPod(pod: RunningPod): Promise<void> {
    this.running.delete(pod.uid);
    this.hostPorts.release(pod.namespace, pod.name);
    await this.release(pod);
    this.options.log('pod stopped', { pod: `${pod.namespace}/${pod.name}` });
    this.options.onChange();
  }

  private async release(pod: RunningPod): Promise<void> {
    closeListeners(pod.listeners);
    const podDir = dirname(pod.cgroup);
    for (const pid of new Set([pod.pid, ...(await processesIn(podDir))])) {
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }
    await waitForEmpty(podDir);
    await removeTree(podDir);
    rmSync(this.volumesDir(pod.uid), { recursive: true, force: true });
    if (pod.netns) await deleteNetns(pod.netns);
    if (!pod.hostNetwork) for (const ip of pod.ips) this.usedIps.delete(ip);
  }
}

/** A killed process leaves its cgroup a moment later; rmdir fails until it has. */
export async function waitForEmpty(dir: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await processesIn(dir)).length > 0) {
    if (Date.now() > deadline) throw new Error(`processes still in ${dir}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
