/**
 * npm run bench:policy [-- --record]
 *
 * Builds the compiled model of a 20,000-pod / 1,000-namespace / 5,000-policy cluster,
 * answers its full class matrix, re-plans after single policy changes, and compares the
 * reference evaluator on a sample. --record writes the result into docs/benchmarks.md.
 */
import {
  PolicyEngine,
  ReferenceEvaluator,
  type Connection,
  type NetworkPolicy,
} from '#lumen/policy';
import { MAX_CELLS_PER_BLOCK, PLANNER_DEFAULTS, planCases, probeBudget } from '#lumen/planner';
import { measureMachine, recordSection, timed } from './report.js';
import { syntheticCluster } from './synthetic-cluster.js';

const size = { namespaces: 1000, podsPerNamespace: 20, policiesPerNamespace: 5 };
const cluster = syntheticCluster(size);

const builds = [0, 1, 2].map(() => timed(() => new PolicyEngine(cluster)));
const engine = builds[builds.length - 1]!.value;
if (engine.errors.length > 0)
  throw new Error(`synthetic policies invalid: ${engine.errors[0]?.message ?? ''}`);

const matrix = timed(() => {
  let rows = 0;
  let allowedClassPairs = 0;
  for (const destination of engine.podClasses) {
    for (const { port, protocol } of destination.ports) {
      allowedClassPairs += engine.allowedSources(destination, port, protocol).count();
      rows += 1;
    }
  }
  return { rows, allowedClassPairs };
});

// Incremental re-plans: flip the selector of a db-from-api policy, in 20 namespaces.
const changes = cluster.policies.filter((p) => p.metadata.name === 'db-from-api').slice(0, 20);
const incremental = changes.map((original) => {
  const changed: NetworkPolicy = {
    ...original,
    spec: {
      ...original.spec,
      ingress: [
        { from: [{ podSelector: { matchLabels: { app: 'worker' } } }], ports: [{ port: 'pg' }] },
      ],
    },
  };
  const result = timed(() => engine.setPolicy(changed));
  engine.setPolicy(original);
  return result;
});
incremental.sort((a, b) => a.ms - b.ms);

// Churn: a rolling update gives a pod a new pod-template-hash, and so a new class; and a
// namespace moves to another tenant (the tenant label, which every tenant's
// namespaceSelector reads: its classes leave one tenant's peers and join another's). Each
// is undone after, so the model stays the cluster's.
const churnPods = cluster.pods.filter((_, i) => i % 997 === 5).slice(0, 20);
const newClass = churnPods.map((pod) => {
  const result = timed(() =>
    engine.setPod({ ...pod, labels: { ...pod.labels, 'pod-template-hash': 'def456' } }),
  );
  engine.setPod(pod);
  return result;
});
const relabelled = cluster.namespaces.slice(10, 30).map((namespace) => {
  const tenant = namespace.labels.tenant === 't0' ? 't1' : 't0';
  const result = timed(() =>
    engine.setNamespace({ name: namespace.name, labels: { ...namespace.labels, tenant } }),
  );
  engine.setNamespace(namespace);
  return result;
});
const spread = (runs: readonly { ms: number; value: { reclassified: boolean } }[]) => {
  const sorted = runs.map((r) => r.ms).sort((a, b) => a - b);
  const rebuilds = runs.filter((r) => r.value.reclassified).length;
  return `median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(2)} ms, worst ${sorted.at(-1)!.toFixed(2)} ms over ${sorted.length}, ${rebuilds} rebuilds (budget 50 ms)`;
};

// The reference evaluator on a deterministic sample of pod pairs.
const sample: Connection[] = [];
for (let i = 0; sample.length < 300; i++) {
  const from = cluster.pods[(i * 7919) % cluster.pods.length]!;
  const to = cluster.pods[(i * 104729 + 13) % cluster.pods.length]!;
  const port = to.ports[0]?.port ?? 80;
  sample.push({ from, to, port, protocol: to.ports[0]?.protocol ?? 'TCP' });
}
const reference = new ReferenceEvaluator(cluster);
const referenceRun = timed(() => sample.map((c) => reference.verdict(c).allowed));
const compiledRun = timed(() => sample.map((c) => engine.verdict(c).allowed));
const disagreements = sample.filter(
  (_, i) => referenceRun.value[i] !== compiledRun.value[i],
).length;

const plan = timed(() => planCases(engine, { probeBudget: 0 }));
// The chart's defaults: a sweep every 5 minutes; the synthetic cluster spreads over 500 nodes.
const SWEEP_NODES = 500;
const SWEEP_SECONDS = 300;
const sweepBudget = probeBudget(
  { probeBudget: 0, sweepIntervalMs: SWEEP_SECONDS * 1000 },
  SWEEP_NODES,
);
const sweepsPerRotation = Math.ceil(
  (plan.value.coverage.cells - plan.value.coverage.obligationCells) /
    Math.max(1, sweepBudget - plan.value.coverage.obligations),
);

// The rotation in cell blocks (ADR 0013), as a sweep at the derived budget plans it: every
// plan of one whole rotation, each continuing where the last stopped.
const blockPlans: { ms: number; cells: number; blocks: number; unjudged: number }[] = [];
let blockCursor: string | undefined;
for (let sweep = 0; sweep < sweepsPerRotation; sweep += 1) {
  const { ms, value } = timed(() =>
    planCases(engine, {
      probeBudget: sweepBudget,
      blocksAbove: PLANNER_DEFAULTS.rotationBlocksAbove,
      ...(blockCursor === undefined ? {} : { rotationCursor: blockCursor }),
    }),
  );
  const rotation = value.rotationBlocks;
  blockPlans.push({
    ms,
    cells: rotation?.cells ?? 0,
    blocks: rotation?.blocks.length ?? 0,
    unjudged: rotation?.unjudged ?? 0,
  });
  blockCursor = value.coverage.rotationCursor;
}
const blockCells = blockPlans.reduce((n, p) => n + p.cells, 0);
const blockMs = blockPlans.reduce((n, p) => n + p.ms, 0);
const blockWorst = Math.max(...blockPlans.map((p) => p.ms));

const peakRssMb = process.resourceUsage().maxRSS / 1024;
const median = incremental[Math.floor(incremental.length / 2)]!.ms;
const worst = incremental[incremental.length - 1]!.ms;
const machine = measureMachine();

const lines = [
  `cluster: ${cluster.pods.length} pods, ${cluster.namespaces.length} namespaces, ${cluster.policies.length} policies -> ${engine.podClasses.length} pod classes`,
  `build model:             ${builds.map((b) => b.ms.toFixed(0)).join(' / ')} ms (three builds; budget 3000 ms)`,
  `full class matrix:       ${matrix.ms.toFixed(0)} ms for ${matrix.value.rows} destination ports x ${engine.podClasses.length} source classes (${matrix.value.allowedClassPairs} allowed)`,
  `one policy change:       median ${median.toFixed(2)} ms, worst ${worst.toFixed(2)} ms over ${incremental.length} changes (budget 50 ms)`,
  `new pod class:           ${spread(newClass)}`,
  `namespace relabel:       ${spread(relabelled)}`,
  `plan obligations:        ${plan.ms.toFixed(0)} ms for ${plan.value.cases.length} cases (rules, near misses on both sides, isolation), ${plan.value.notGenerated.length} not generated`,
  `class matrix:            ${plan.value.coverage.cells} cells (${plan.value.coverage.obligationCells} probed by obligations); at the derived budget of ${SWEEP_NODES} nodes and a ${SWEEP_SECONDS} s sweep (${sweepBudget} probes) a full rotation takes ${sweepsPerRotation} sweeps`,
  `rotation in blocks:      ${blockPlans.length} plans at that budget for one whole rotation: ${blockCells} cells in ${blockPlans.reduce((n, p) => n + p.blocks, 0)} blocks of at most ${MAX_CELLS_PER_BLOCK}, ${(blockMs / 1000).toFixed(1)} s of planning in all (worst plan ${(blockWorst / 1000).toFixed(1)} s, ${((blockCells / blockMs) * 1000).toFixed(0)} cells/s), ${blockPlans.reduce((n, p) => n + p.unjudged, 0)} cells without an expected verdict`,
  `peak RSS:                ${peakRssMb.toFixed(0)} MB (budget 1536 MB)`,
  `reference vs compiled:   ${referenceRun.ms.toFixed(0)} ms vs ${compiledRun.ms.toFixed(2)} ms for ${sample.length} connections, ratio ${(referenceRun.ms / compiledRun.ms).toFixed(0)}x, ${disagreements} disagreements`,
];
process.stdout.write(`${lines.join('\n')}\n`);
if (disagreements > 0) process.exitCode = 1;
if (process.argv.includes('--record'))
  recordSection('policy', 'npm run bench:policy', machine, lines);
