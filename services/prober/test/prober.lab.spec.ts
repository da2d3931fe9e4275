import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ProbeBatchContract,
  ProbeResultContract,
  PROBE_RESULT_SUBJECTS,
  probeBatchSubject,
  type ProbeResult,
} from '#lumen/contracts';
import {
  ManagedProberRegistry,
  MessageBus,
  ProberRegistry,
  startPrivateNatsServer,
  type PrivateNatsServer,
} from '#lumen/messaging';
import { podKey } from '#lumen/policy';
import { PROBER_CONSUMER_SETTINGS } from '#lumen/scheduler';
import { freePort } from '#lumen/host';
import {
  TEST_LAB_ROOT,
  conformanceScenarioFiles,
  repositoryRoot,
  eventually,
} from '#lumen/testing';
import { LabNames } from '#lumen/lab';
import { podOf, scenario, upLab, type TestLab } from '../../../libs/lab/test/support.js';

const file = conformanceScenarioFiles().find((f) =>
  f.endsWith('07-allow-traffic-from-some-pods-in-another-namespace.yaml'),
)!;
const entry = join(repositoryRoot, 'dist', 'services', 'prober', 'src', 'main.js');
let lab: TestLab | undefined;
let nats: PrivateNatsServer | undefined;
const probers: ChildProcess[] = [];

function startProber(env: Record<string, string>): {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: string | null }>;
} {
  const child = spawn(process.execPath, [entry], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  probers.push(child);
  let output = '';
  const collect = (chunk: Buffer): void => {
    output += chunk.toString();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  return {
    child,
    output: () => output,
    // 'close' comes after the output pipes are drained, so output() is complete by then.
    exited: new Promise((resolve) => {
      child.once('close', (code, signal) => {
        resolve({ code, signal });
      });
    }),
  };
}

beforeAll(async () => {
  nats = await startPrivateNatsServer({
    storeDir: mkdtempSync(join(tmpdir(), 'lumen-prober-nats-')),
  });
  lab = await upLab('prober-svc', file);
});

afterAll(async () => {
  for (const child of probers) if (child.exitCode === null) child.kill('SIGKILL');
  await nats?.stop();
  await lab?.down();
});

it('refuses a bad configuration at boot, naming every bad variable', async () => {
  const prober = startProber({
    NODE_NAME: 'Node_1',
    NATS_URL: 'http://x',
    POD_CIDRS: '10.0.0.0/33',
    PROBE_PORTS: '70000',
  });
  expect(await prober.exited).toEqual({ code: 2, signal: null });
  for (const variable of ['NODE_NAME', 'NATS_URL', 'POD_CIDRS', 'PROBE_PORTS'])
    expect(prober.output()).toContain(variable);
});

it('needs pod CIDRs or node discovery, and says so at boot', async () => {
  const prober = startProber({ NODE_NAME: 'lab-node-1', NATS_URL: nats!.url });
  expect(await prober.exited).toEqual({ code: 2, signal: null });
  expect(prober.output()).toContain(
    'POD_CIDRS: give the pod CIDRs, or set NODE_DISCOVERY=true to read them from the nodes',
  );
});

it('with NODE_DISCOVERY and SOURCE_CHECK, aims at the nodes’ pod CIDRs, refuses every node’s address, and enters only the batch’s own pod', async () => {
  const status = lab!.status;
  const source = podOf(status, { namespace: 'default', name: 'client' });
  const to = scenario(file).expectations.find((r) => podKey(r.from) === 'default/client')?.to;
  const server = podOf(status, to ?? { namespace: '', name: '' });
  const nodes = await lab!.client.send<{
    items: {
      metadata: { name: string };
      status: { addresses: { type: string; address: string }[] };
    }[];
  }>('GET', '/api/v1/nodes');
  // Another node's address, where there is one: this prober's own is refused as well.
  const otherNode = nodes.items.find((n) => n.metadata.name !== source.node) ?? nodes.items[0];
  const otherNodeIp = otherNode?.status.addresses.find((a) => a.type === 'InternalIP')?.address;
  expect(otherNodeIp).toBeDefined();
  const port = await freePort();
  const prober = startProber({
    NODE_NAME: source.node,
    NATS_URL: nats!.url,
    NODE_DISCOVERY: 'true',
    SOURCE_CHECK: 'true',
    KUBECONFIG: new LabNames('prober-svc', TEST_LAB_ROOT).kubeconfig,
    HTTP_PORT: String(port),
  });
  const bus = await MessageBus.connect({ url: nats!.url, service: 'test-scheduler' });
  try {
    const registry = new ManagedProberRegistry(
      await ProberRegistry.open(bus, 15_000),
      bus,
      PROBER_CONSUMER_SETTINGS,
    );
    await eventually(
      async () => ((await registry.live()).has(source.node) ? true : undefined),
      'the prober’s heartbeat',
    );
    expect(prober.output()).toMatch(
      /"message":"targets from the nodes","nodes":\d+,"podCidrs":"10\.244\./,
    );
    const results: ProbeResult[] = [];
    const consumer = await bus.consume({
      contract: ProbeResultContract,
      durable: 'test-results-discovery',
      filterSubject: PROBE_RESULT_SUBJECTS,
      handle: async (r) => void results.push(r),
    });
    const target = (caseId: string, ip: string) => ({
      caseId,
      round: 1,
      destination: { namespace: server.namespace, name: server.name },
      ip,
      port: 80,
      protocol: 'TCP' as const,
      listenerKnown: true,
    });
    await bus.publish(probeBatchSubject(source.node), ProbeBatchContract, {
      batchId: 'discovery-1',
      node: source.node,
      attempt: 1,
      source: { namespace: source.namespace, name: source.name, uid: source.uid },
      targets: [
        target('00000000000000d1', server.ip),
        target('00000000000000d2', otherNodeIp ?? ''),
        target('00000000000000d3', '192.0.2.10'),
      ],
      issuedAt: new Date().toISOString(),
    });
    // The same source's name with another pod's UID: what a forged batch would name.
    await bus.publish(probeBatchSubject(source.node), ProbeBatchContract, {
      batchId: 'discovery-2',
      node: source.node,
      attempt: 1,
      source: { namespace: source.namespace, name: source.name, uid: server.uid },
      targets: [target('00000000000000d4', server.ip)],
      issuedAt: new Date().toISOString(),
    });
    const result = await eventually(
      () => results.find((r) => r.batchId === 'discovery-1'),
      'the probe result',
    );
    const forged = await eventually(
      () => results.find((r) => r.batchId === 'discovery-2'),
      'the forged batch’s result',
    );
    await consumer.stop();
    expect(forged.observations.map((o) => [o.reachability, o.basis])).toEqual([
      [
        'inconclusive',
        `refused: source pod ${source.namespace}/${source.name} has UID ${source.uid}, not the batch's ${server.uid}`,
      ],
    ]);
    expect(forged.command).toBeUndefined();
    expect(result.observations.map((o) => [o.caseId, o.reachability, o.basis])).toEqual([
      ['00000000000000d1', expect.stringMatching(/^(reachable|blocked)$/), expect.any(String)],
      ['00000000000000d2', 'inconclusive', `refused: ${otherNodeIp} is an address of a node`],
      ['00000000000000d3', 'inconclusive', 'refused: 192.0.2.10 is outside the pod CIDRs'],
    ]);
  } finally {
    await bus.close();
    prober.child.kill('SIGTERM');
    await prober.exited;
  }
});

it('takes a batch for its node from JetStream, probes inside the source pod, and publishes the result', async () => {
  const { expectations } = scenario(file);
  const status = lab!.status;
  const source = podOf(status, { namespace: 'default', name: 'client' });
  const rows = expectations.filter((r) => podKey(r.from) === 'default/client');
  const port = await freePort();
  const prober = startProber({
    NODE_NAME: source.node,
    NATS_URL: nats!.url,
    POD_CIDRS: '10.244.0.0/16',
    HTTP_PORT: String(port),
    PROBE_PROTOCOLS: 'TCP,UDP',
  });
  // This test plays the scheduler: it makes the heartbeat bucket and, once the prober is
  // seen alive, the node's consumer, which the prober may only bind to (ADR 0014).
  const bus = await MessageBus.connect({ url: nats!.url, service: 'test-scheduler' });
  const probers = new ManagedProberRegistry(
    await ProberRegistry.open(bus, 15_000),
    bus,
    PROBER_CONSUMER_SETTINGS,
  );
  await eventually(
    async () => ((await probers.live()).has(source.node) ? true : undefined),
    'the prober’s heartbeat',
  );
  await eventually(
    async () =>
      (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200
        ? true
        : undefined,
    'readiness',
  );
  expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);

  const results: ProbeResult[] = [];
  const consumer = await bus.consume({
    contract: ProbeResultContract,
    durable: 'test-results',
    filterSubject: PROBE_RESULT_SUBJECTS,
    handle: async (r) => void results.push(r),
  });
  await bus.publish(
    probeBatchSubject(source.node),
    ProbeBatchContract,
    {
      batchId: 'svc-1',
      node: source.node,
      attempt: 1,
      source: { namespace: source.namespace, name: source.name, uid: source.uid },
      targets: rows.map((row, i) => ({
        caseId: `${i}`.padStart(16, '0'),
        round: 1,
        destination: row.to,
        ip: podOf(status, row.to).ip,
        port: row.port,
        protocol: row.protocol,
        listenerKnown: true,
      })),
      issuedAt: new Date().toISOString(),
    },
    { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
  );
  const result = await eventually(
    () => results.find((r) => r.batchId === 'svc-1'),
    'the probe result',
  );
  // On its own node's subject, naming the batch's place in the stream.
  expect(result.node).toBe(source.node);
  expect(result.batchSequence).toBeGreaterThan(0);
  expect(result.observations.map((o) => o.reachability)).toEqual(
    rows.map((r) => (r.allowed ? 'reachable' : 'blocked')),
  );
  // The prober logs after it published: the line may reach us just after the result.
  await eventually(
    () => /"message":"batch probed","batchId":"svc-1"/.test(prober.output()),
    'the prober to log the batch',
  );
  await consumer.stop();
  await bus.close();

  // Nest runs the shutdown hooks, then re-raises the signal: the consumer stops first.
  prober.child.kill('SIGTERM');
  expect(await prober.exited).toEqual({ code: null, signal: 'SIGTERM' });
  expect(prober.output()).toContain('"message":"stopped consuming probe batches"');
});
