/**
 * npm run bench:prober [-- --record]   (root)
 *
 * DESIGN's prober budget: one nmap per source pod and batch, never one per case, for at
 * least 10x the throughput of per-case nmap. A lab of 40 destination pods (two open
 * ports each, half of them behind a default-deny, so that a share of the probes wait for
 * silence) and one source pod; the same 80 targets probed as one batch and then as 80
 * one-target batches, one after another, through the prober's own executeBatch.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { ProbeBatch } from '#lumen/contracts';
import { labDown, labUp } from '#lumen/lab';
import { parseCidr, type Cidr } from '#lumen/policy';
import { kernelSupportsSctp } from '#lumen/host';
import { defaultProberSettings, executeBatch, hostProbeHost } from '#lumen/prober';
import { measureMachine, recordSection } from './report.js';

const root = '/run/lumen/bench-labs';
const name = 'bench-prober';
const destinations = Array.from({ length: 40 }, (_, i) => ({
  namespace: i % 2 === 0 ? 'open' : 'closed',
  name: `dest-${i}`,
  labels: { app: 'dest' },
  ports: [
    { containerPort: 8080, protocol: 'TCP' },
    { containerPort: 9090, protocol: 'TCP' },
  ],
}));
const scenario = {
  name: 'bench-prober',
  namespaces: [{ name: 'open' }, { name: 'closed' }, { name: 'probe' }],
  pods: [{ namespace: 'probe', name: 'source', labels: { app: 'source' } }, ...destinations],
  policies: [
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'default-deny', namespace: 'closed' },
      spec: { podSelector: {}, ingress: [] },
    },
  ],
};
const file = join(mkdtempSync(join(tmpdir(), 'lumen-bench-')), 'prober.yaml');
writeFileSync(file, stringify(scenario));

await labDown(name, root);
const status = await labUp({
  name,
  root,
  scenario: file,
  nodes: 1,
  faults: [],
  podCidr: '10.244.0.0/16',
});
try {
  const source = status.pods.find((p) => p.name === 'source')!;
  const settings = defaultProberSettings(
    source.node,
    [parseCidr('10.244.0.0/16') as Cidr],
    kernelSupportsSctp(),
  );
  const ports = hostProbeHost(120_000);
  const targets: ProbeBatch['targets'] = status.pods
    .filter((p) => p.name.startsWith('dest-'))
    .flatMap((p) =>
      [8080, 9090].map((port, k) => ({
        caseId: `${p.name.slice(5).padStart(12, '0')}000${k}`.slice(-16),
        round: 1,
        destination: { namespace: p.namespace, name: p.name },
        ip: p.ip,
        port,
        protocol: 'TCP' as const,
        listenerKnown: true,
      })),
    );
  const batch = (list: ProbeBatch['targets'], id: string): ProbeBatch => ({
    batchId: id,
    node: source.node,
    attempt: 1,
    source: { namespace: 'probe', name: 'source', uid: source.uid },
    targets: list,
    issuedAt: new Date().toISOString(),
  });
  const t0 = performance.now();
  const batched = await executeBatch(batch(targets, 'all'), settings, ports);
  const batchedMs = performance.now() - t0;
  const t1 = performance.now();
  const single = [];
  for (const [i, t] of targets.entries())
    single.push(await executeBatch(batch([t], `one-${i}`), settings, ports));
  const singleMs = performance.now() - t1;
  const agree = single.every(
    (r, i) => r.observations[0]?.reachability === batched.observations[i]?.reachability,
  );
  const rate = (ms: number): string => ((targets.length / ms) * 1000).toFixed(1);
  const lines = [
    `targets: ${targets.length} (40 pods x 2 ports; half behind a default-deny), one source pod`,
    `one nmap for the batch:   ${(batchedMs / 1000).toFixed(2)} s, ${rate(batchedMs)} probes/s`,
    `one nmap per case:        ${(singleMs / 1000).toFixed(2)} s, ${rate(singleMs)} probes/s`,
    `batched / per-case throughput: ${(singleMs / batchedMs).toFixed(1)}x (budget >= 10x); observations agree: ${agree}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (process.argv.includes('--record'))
    recordSection('prober', 'npm run bench:prober', measureMachine(), lines);
} finally {
  await labDown(name, root);
}
