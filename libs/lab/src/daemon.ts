/**
 * The lab daemon: the API emulator, the kubelet and the enforcer of one lab, in one
 * process that `lumen lab up` starts in the background and `lumen lab down` ends.
 * Usage: node daemon.js STATE_DIR (which holds config.json).
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiServer } from './api/server.js';
import { ObjectStore } from './api/store.js';
import { resourceByKind } from './api/resources.js';
import { selfSignedCertificate } from './api/certificate.js';
import { controlRoutes } from './control.js';
import { Enforcer } from './enforcer/enforcer.js';
import { parseFault } from './enforcer/faults.js';
import { renderKubeconfig } from './kubeconfig.js';
import { LabNames } from './naming.js';
import { cgroupRoot } from './runtime/cgroups.js';
import { Kubelet, type LabNode } from './runtime/kubelet.js';
import { EndpointSliceController } from './runtime/endpoint-slices.js';
import { WorkloadController } from './runtime/workloads.js';
import { createFabric } from './runtime/network.js';
import { readJson, writeJson, type DaemonConfig, type LabState } from './state.js';

function log(message: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(
    `${JSON.stringify({ time: new Date().toISOString(), component: 'lab-daemon', message, ...fields })}\n`,
  );
}

function labNodes(count: number, podCidr: string): LabNode[] {
  const [first = '10', second = '244'] = (podCidr.split('/')[0] ?? '').split('.');
  return Array.from({ length: count }, (_, i) => ({
    name: `lab-node-${i + 1}`,
    podCidr: `${first}.${second}.${i + 1}.0/24`,
    ip: `${first}.${second}.${i + 1}.1`,
  }));
}

function seed(store: ObjectStore, nodes: readonly LabNode[]): void {
  const namespace = resourceByKind('Namespace');
  const node = resourceByKind('Node');
  if (!namespace || !node) throw new Error('core resources are not served');
  for (const name of ['default', 'kube-system', 'kube-public'])
    store.create(namespace, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  for (const n of nodes) {
    store.create(node, undefined, {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: n.name,
        labels: { 'kubernetes.io/hostname': n.name, 'kubernetes.io/os': 'linux' },
      },
      spec: { podCIDR: n.podCidr, podCIDRs: [n.podCidr] },
      status: {
        addresses: [
          { type: 'InternalIP', address: n.ip },
          { type: 'Hostname', address: n.name },
        ],
        conditions: [{ type: 'Ready', status: 'True' }],
      },
    });
  }
}

async function main(stateDir: string): Promise<void> {
  const config = readJson(join(stateDir, 'config.json')) as DaemonConfig | undefined;
  if (!config) throw new Error(`no config.json in ${stateDir}`);
  const names = new LabNames(config.name, config.root);
  const nodes = labNodes(config.nodes, config.podCidr);
  await createFabric(names);
  const store = new ObjectStore();
  seed(store, nodes);
  // Each needs the other: the enforcer programs the kubelet's pods, the kubelet reports starts and stops.
  const enforcer: Enforcer = new Enforcer({ store, pods: () => kubelet.pods(), log });
  // Services' EndpointSlices follow the pods the kubelet runs, as in a cluster.
  const slices = new EndpointSliceController(store, () => kubelet.pods(), log);
  const kubelet: Kubelet = new Kubelet({
    store,
    names,
    nodes,
    cgroupRoot: cgroupRoot(),
    log,
    onChange: () => {
      enforcer.changed();
      slices.changed();
    },
    // The API server below mints them; the kubelet asks only once pods run.
    serviceAccountToken: (namespace, serviceAccount, body) =>
      server.mintServiceAccountToken(namespace, serviceAccount, body),
  });
  for (const fault of config.faults) enforcer.setFault(parseFault(fault));
  const tls = await selfSignedCertificate(stateDir);
  const token = randomBytes(24).toString('base64url');
  const readerToken = randomBytes(24).toString('base64url');
  let apiServer = '';
  const server: ApiServer = new ApiServer({
    store,
    tls,
    token,
    readerToken,
    extraRoutes: controlRoutes({
      name: config.name,
      kubeconfig: names.kubeconfig,
      apiServer: () => apiServer,
      store,
      server: () => server,
      kubelet,
      enforcer,
      nodes,
    }),
  });
  apiServer = await server.listen();
  writeFileSync(names.kubeconfig, renderKubeconfig(config.name, apiServer, token, tls.cert), {
    mode: 0o600,
  });
  writeFileSync(
    names.readerKubeconfig,
    renderKubeconfig(config.name, apiServer, readerToken, tls.cert),
    { mode: 0o600 },
  );
  const workloads = new WorkloadController(store, nodes, log);
  kubelet.start();
  workloads.start();
  slices.start();
  enforcer.start();
  const state: LabState = {
    name: config.name,
    id: names.id,
    apiServer,
    token,
    caCertificate: tls.cert,
    kubeconfig: names.kubeconfig,
    daemonPid: process.pid,
    nodes: config.nodes,
    podCidr: config.podCidr,
    startedAt: new Date().toISOString(),
  };
  writeJson(names.stateFile, state);
  log('lab ready', { apiServer, nodes: nodes.length });

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log('stopping', { signal });
    workloads.stop();
    slices.stop();
    await enforcer.stop();
    await kubelet.stop();
    await server.close();
    log('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main(process.argv[2] ?? '').catch((error: unknown) => {
  log('lab daemon failed', {
    error: error instanceof Error ? (error.stack ?? error.message) : String(error),
  });
  process.exit(1);
});
