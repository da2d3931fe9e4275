/**
 * npm run bench:lab [-- --record]   (root)
 *
 * Brings up a 100-pod lab (10 namespaces of 10 pods, default-deny plus allow rules),
 * then changes policies and reads the enforcer's own propagation time, which runs from
 * the API event to the rules programmed in every affected pod's namespace.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { LabNames, labDown, labStatus, labUp, requireLab, waitUntilSettled } from '#lumen/lab';
import { measureMachine, recordSection } from './report.js';

const root = '/run/lumen/bench-labs';
const name = 'bench';
const namespaces = Array.from({ length: 10 }, (_, i) => ({
  name: `tenant-${i}`,
  labels: { tenant: `t${i % 3}` },
}));
const apps = ['web', 'api', 'db', 'cache', 'worker'];
const pods = namespaces.flatMap((ns) =>
  Array.from({ length: 10 }, (_, j) => ({
    namespace: ns.name,
    name: `${apps[j % apps.length]}-${j}`,
    labels: { app: apps[j % apps.length] },
    ports: [
      { name: 'http', containerPort: 8080, protocol: 'TCP' },
      { containerPort: 9090, protocol: 'TCP' },
    ],
  })),
);
const policies = namespaces.flatMap((ns) => [
  {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'default-deny', namespace: ns.name },
    spec: { podSelector: {}, ingress: [] },
  },
  {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'api-from-web', namespace: ns.name },
    spec: {
      podSelector: { matchLabels: { app: 'api' } },
      ingress: [
        { from: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: [{ port: 'http' }] },
      ],
    },
  },
  {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'metrics-from-tenant', namespace: ns.name },
    spec: {
      podSelector: {},
      ingress: [
        {
          from: [{ namespaceSelector: { matchLabels: { tenant: ns.labels.tenant } } }],
          ports: [{ port: 9090 }],
        },
      ],
    },
  },
]);
const file = join(mkdtempSync(join(tmpdir(), 'lumen-bench-')), 'lab-100.yaml');
writeFileSync(file, stringify({ name: 'bench-100-pods', namespaces, pods, policies }));

await labDown(name, root);
const started = performance.now();
const status = await labUp({
  name,
  root,
  scenario: file,
  nodes: 2,
  faults: [],
  podCidr: '10.244.0.0/16',
  readyTimeoutMs: 300_000,
});
const upMs = performance.now() - started;

// Policy changes, one at a time: each touches the ten pods of one namespace.
const { client } = requireLab(new LabNames(name, root));
const changes: number[] = [];
for (const ns of namespaces.slice(0, 5)) {
  const path = `/apis/networking.k8s.io/v1/namespaces/${ns.name}/networkpolicies/api-from-web`;
  const current = await client.send<
    Record<string, unknown> & { metadata: Record<string, unknown> }
  >('GET', path);
  await client.send('PUT', path, {
    ...current,
    spec: {
      podSelector: { matchLabels: { app: 'api' } },
      ingress: [{ from: [{ podSelector: { matchLabels: { app: 'worker' } } }] }],
    },
  });
  await waitUntilSettled(client);
  changes.push((await labStatus(name, root)).enforcer.propagation.lastMs ?? NaN);
}
await labDown(name, root);
changes.sort((a, b) => a - b);

const lines = [
  `lab: ${status.pods.length} pods in ${namespaces.length} namespaces on ${status.nodes.length} nodes, ${policies.length} policies`,
  `lab up (daemon, API, pods, listeners, first rules): ${(upMs / 1000).toFixed(1)} s`,
  `enforcer propagation after one policy change: median ${changes[2]?.toFixed(0)} ms, min ${changes[0]?.toFixed(0)} ms, max ${changes[4]?.toFixed(0)} ms over ${changes.length} changes`,
];
process.stdout.write(`${lines.join('\n')}\n`);
if (process.argv.includes('--record'))
  recordSection('lab', 'npm run bench:lab', measureMachine(), lines);
