/**
 * The hollow 20,000-pod cluster of bench:scale and bench:rotation, as kubemark does it with
 * hollow nodes. Stand-ins, and said so: the lab's API emulator serves the bench:policy
 * cluster (20,005 pods, 1,003 namespaces, 5,000 policies) on 500 nodes whose pods do not
 * run; hollow probers heartbeat for every node, take the real probe batches from JetStream
 * and answer them from the reference semantics (the policy engine, checked against the
 * reference evaluator by the property tests), with a probe cost.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { freePort } from '#lumen/host';
import {
  PROBE_BATCH_SUBJECTS,
  probeResultSubject,
  ProbeBatchContract,
  ProbeResultContract,
  type ProbeBatch,
} from '#lumen/contracts';
import {
  ApiServer,
  ObjectStore,
  podManifest,
  renderKubeconfig,
  resourceByKind,
  selfSignedCertificate,
} from '#lumen/lab';
import {
  MessageBus,
  ProberRegistry,
  startPrivateNatsServer,
  type PrivateNatsServer,
} from '#lumen/messaging';
import { lumenRepository } from '../cli/src/paths.js';
import { PolicyEngine, podKey, type Pod } from '#lumen/policy';
import { syntheticCluster } from './synthetic-cluster.js';

export const NODES = 500;
export const HEARTBEAT_TTL_MS = 15_000;
export const POSTGRES = 'postgres://postgres@127.0.0.1:5432';
export const BATCH_MS = 20;
export const DROP_MS = 300;

export const cluster = syntheticCluster({
  namespaces: 1000,
  podsPerNamespace: 20,
  policiesPerNamespace: 5,
});
export const engine = new PolicyEngine(cluster);
export const podsByKey = new Map(cluster.pods.map((p) => [podKey(p), p] as const));
export const nodeOf = (index: number): string => `hollow-node-${(index % NODES) + 1}`;

/** The cluster as objects in the API emulator: nodes, namespaces, running pods, policies. */
export function seed(store: ObjectStore): void {
  for (let n = 1; n <= NODES; n += 1)
    store.create(kind('Node'), undefined, {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: `hollow-node-${n}`,
        labels: { 'kubernetes.io/hostname': `hollow-node-${n}` },
      },
      status: { conditions: [{ type: 'Ready', status: 'True' }] },
    });
  for (const namespace of cluster.namespaces)
    store.create(kind('Namespace'), undefined, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: namespace.name, labels: namespace.labels },
    });
  cluster.pods.forEach((pod: Pod, i) => {
    createPod(store, pod, nodeOf(i));
  });
  for (const policy of cluster.policies)
    store.create(kind('NetworkPolicy'), policy.metadata.namespace, {
      ...policy,
      metadata: { name: policy.metadata.name, namespace: policy.metadata.namespace },
    } as never);
}

export function kind(k: string): NonNullable<ReturnType<typeof resourceByKind>> {
  const type = resourceByKind(k);
  if (!type) throw new Error(`the emulator serves no ${k}`);
  return type;
}

/** A running pod on a hollow node: it has an IP and is Ready, and nothing runs. */
export function createPod(store: ObjectStore, pod: Pod, node: string): void {
  const manifest = podManifest(pod);
  store.create(kind('Pod'), pod.namespace, {
    ...manifest,
    spec: { ...manifest.spec, nodeName: node },
    status: {
      phase: 'Running',
      podIP: pod.ip,
      podIPs: [{ ip: pod.ip }],
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  });
}

/** What a hollow probe costs: by default 20 ms a batch and 300 ms more when a target is dropped. */
export interface HollowProbeCost {
  /** Instead: this long per target, one batch at a time per node (50 probes/s: 20 ms). */
  readonly perProbeMs?: number;
}

/** Every node's prober, hollow: heartbeats, and answers from the policies with a probe cost. */
export async function hollowProbers(
  natsUrl: string,
  options: HollowProbeCost = {},
): Promise<{ stop: () => Promise<void>; batches: () => number; probes: () => number }> {
  const bus = await MessageBus.connect({ url: natsUrl, service: 'hollow-probers' });
  const registry = await ProberRegistry.open(bus, HEARTBEAT_TTL_MS);
  const instance = randomUUID();
  const beat = async () => {
    for (let n = 1; n <= NODES; n += 1)
      await registry.announce({
        node: `hollow-node-${n}`,
        instance,
        version: 'hollow',
        at: new Date().toISOString(),
        inFlight: 0,
      });
  };
  await beat();
  const timer = setInterval(() => void beat(), HEARTBEAT_TTL_MS / 3);
  let batches = 0;
  let probes = 0;
  /** Per node, the end of its last batch: with perProbeMs, a node probes one batch at a time. */
  const busyUntil = new Map<string, number>();
  const consumer = await bus.consume({
    contract: ProbeBatchContract,
    durable: 'hollow-probers',
    filterSubject: PROBE_BATCH_SUBJECTS,
    concurrency: options.perProbeMs === undefined ? 512 : 8 * NODES,
    ackWaitMs: 600_000,
    handle: async (batch: ProbeBatch, delivery) => {
      const started = new Date();
      const source = podsByKey.get(`${batch.source.namespace}/${batch.source.name}`);
      const observations = batch.targets.map((t) => {
        const destination = t.destination
          ? podsByKey.get(`${t.destination.namespace}/${t.destination.name}`)
          : undefined;
        const allowed =
          source && destination
            ? engine.verdict({ from: source, to: destination, port: t.port, protocol: t.protocol })
                .allowed
            : false;
        return {
          caseId: t.caseId,
          round: t.round,
          destination: t.destination,
          ip: t.ip,
          port: t.port,
          protocol: t.protocol,
          ...(t.expected ? { expected: t.expected } : {}),
          reachability: allowed ? ('reachable' as const) : ('blocked' as const),
          basis: allowed ? 'open (syn-ack)' : 'dropped: filtered (no-response)',
          evidence: allowed
            ? { state: 'open', reason: 'syn-ack' }
            : { state: 'filtered', reason: 'no-response' },
        };
      });
      const dropped = observations.some((o) => o.reachability === 'blocked');
      const cost =
        options.perProbeMs === undefined
          ? BATCH_MS + (dropped ? DROP_MS : 0)
          : batch.targets.length * options.perProbeMs;
      // With perProbeMs a node's batches take turns: its probe rate never exceeds 1/perProbeMs.
      const now = Date.now();
      const begins =
        options.perProbeMs === undefined ? now : Math.max(now, busyUntil.get(batch.node) ?? 0);
      busyUntil.set(batch.node, begins + cost);
      await new Promise((resolve) => setTimeout(resolve, begins + cost - now));
      probes += batch.targets.length;
      await bus.publish(
        probeResultSubject(batch.node),
        ProbeResultContract,
        {
          batchId: batch.batchId,
          node: batch.node,
          attempt: batch.attempt,
          batchSequence: delivery.streamSequence,
          source: { namespace: batch.source.namespace, name: batch.source.name },
          ...(batch.blockId ? { blockId: batch.blockId } : {}),
          observations,
          startedAt: started.toISOString(),
          durationMs: Date.now() - started.getTime(),
        },
        { msgId: `${batch.batchId}/${batch.attempt}` },
      );
      batches += 1;
    },
  });
  return {
    batches: () => batches,
    probes: () => probes,
    stop: async () => {
      clearInterval(timer);
      await consumer.stop();
      await bus.close();
    },
  };
}

/** CPU seconds and peak RSS of a process, from /proc. */
export function usage(pid: number): { cpuSeconds: number; peakRssMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return { cpuSeconds: ticks / 100, peakRssMb: Number(hwm ?? 0) / 1024 };
}

export async function until<T>(
  check: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 900_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** What a benchmark body gets: the hollow cluster served, its probers, and the services' start. */
export interface HollowRun {
  readonly nats: PrivateNatsServer;
  /** The benchmark's own PostgreSQL database, for the reporter and for counting rows. */
  readonly db: DataSource;
  readonly databaseUrl: string;
  readonly kubeconfig: string;
  readonly objects: ObjectStore;
  readonly seedSeconds: number;
  readonly probers: Awaited<ReturnType<typeof hollowProbers>>;
  readonly children: ReadonlyMap<string, ChildProcess>;
  /** Starts a Lumen service from dist/ as a process of its own. */
  readonly start: (name: string, env: Record<string, string>) => Promise<void>;
}

/**
 * A private nats-server, a PostgreSQL database of its own, the API emulator seeded with the
 * hollow cluster and the hollow probers, around `body`; everything is stopped and removed
 * after it, however it ends.
 */
export async function withHollowCluster<T>(
  cost: HollowProbeCost,
  body: (run: HollowRun) => Promise<T>,
): Promise<T> {
  const scratch = mkdtempSync(join(tmpdir(), 'lumen-bench-hollow-'));
  const database = `lumen_bench_${randomBytes(4).toString('hex')}`;
  const admin = new DataSource({ type: 'postgres', url: `${POSTGRES}/test` });
  await admin.initialize();
  await admin.query(`CREATE DATABASE ${database}`);
  const children = new Map<string, ChildProcess>();
  const objects = new ObjectStore({ historyLimit: 200_000 });
  let api: ApiServer | undefined;
  let probers: HollowRun['probers'] | undefined;
  const nats = await startPrivateNatsServer({ storeDir: join(scratch, 'nats') });
  const databaseUrl = `${POSTGRES}/${database}`;
  const db = new DataSource({ type: 'postgres', url: databaseUrl });
  try {
    const seeded = performance.now();
    seed(objects);
    const seedSeconds = (performance.now() - seeded) / 1000;
    const tls = await selfSignedCertificate(scratch);
    const token = randomBytes(24).toString('base64url');
    api = new ApiServer({ store: objects, tls, token });
    const kubeconfig = join(scratch, 'kubeconfig');
    writeFileSync(kubeconfig, renderKubeconfig('hollow', await api.listen(), token, tls.cert), {
      mode: 0o600,
    });
    probers = await hollowProbers(nats.url, cost);
    const start = async (name: string, env: Record<string, string>): Promise<void> => {
      const child = spawn(
        process.execPath,
        [join(lumenRepository(), 'dist', 'services', name, 'src', 'main.js')],
        {
          env: {
            PATH: process.env.PATH ?? '',
            NATS_URL: nats.url,
            HTTP_PORT: String(await freePort()),
            LOG_LEVEL: 'warn',
            ...env,
          },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      child.stderr.on('data', () => undefined);
      children.set(name, child);
    };
    return await body({
      nats,
      db,
      databaseUrl,
      kubeconfig,
      objects,
      seedSeconds,
      probers,
      children,
      start,
    });
  } finally {
    for (const child of children.values()) child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await probers?.stop().catch(() => undefined);
    await api?.close();
    if (db.isInitialized) await db.destroy();
    await nats.stop();
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.destroy();
    rmSync(scratch, { recursive: true, force: true });
  }
}
