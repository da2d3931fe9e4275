/**
 * npm run bench:coverage [-- --record]   (root)
 * npm run bench:lab-scale [-- --record]  (root)
 *
 * The time to full coverage of a multi-tenant cluster in the lab. bench:coverage: 202 pods
 * in 20 tenant namespaces and an ingress namespace, 100 policies (five per tenant), about
 * 20,000 class-level connections, on 4 lab nodes. `lumen run --once` runs as a user runs
 * it, as a process with its probers in the process (one per node), first with `--coverage
 * full` (the whole matrix), then with the default budget; lab start-up is excluded.
 *
 * bench:lab-scale (`--tenants 25 --pods-per-tenant 20 --nodes 10 --baseline`): 502 pods on
 * 10 nodes, `--coverage full` only, then the same cases once more with one nmap process
 * per case (the way a probe-per-pair tool works), as many at once as Lumen's probers run
 * nmaps (PROBE_CONCURRENCY per node), in the same lab: Lumen's speed-up is its batching.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { kernelSupportsSctp, run, runChecked } from '#lumen/host';
import { LabNames, type LabStatus } from '#lumen/lab';
import { defaultProberSettings, nmapArguments, observe, parseNmapXml } from '#lumen/prober';
import { LAB_POD_CIDR } from '../cli/src/pipeline/lab-verify.js';
import { lumenRepository } from '../cli/src/paths.js';
import { measureMachine, recordSection } from './report.js';

const option = (name: string, fallback: number): number => {
  const at = process.argv.indexOf(`--${name}`);
  const value = at > 0 ? Number(process.argv[at + 1]) : fallback;
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} takes a positive integer`);
  return value;
};
const TENANTS = option('tenants', 20);
/** Pods per tenant: the four apps in two zones, in the proportions 3:3:2:2. */
const PODS_PER_TENANT = option('pods-per-tenant', 10);
const NODES = option('nodes', 4);
const BASELINE = process.argv.includes('--baseline');
/**
 * Cases the baseline probes: a fixed-seed sample, its time scaled to all cases. One nmap
 * process per case costs ~0.25 s of CPU to start, so all 30,000 cases of the 502-pod
 * cluster take about an hour on two cores; the sample's rate is what is compared.
 */
const BASELINE_SAMPLE = option('baseline-sample', 3000);
/** `--baseline-only REPORT`: the baseline alone, on the lab left up and a saved run report. */
const baselineOnly = process.argv.includes('--baseline-only')
  ? process.argv[process.argv.indexOf('--baseline-only') + 1]
  : undefined;
/** nmaps each lab node's prober runs at once: the prober's default. */
const PROBE_CONCURRENCY = 4;
const PODS = TENANTS * PODS_PER_TENANT + 2;
const labRoot = '/run/lumen/bench-labs';
const labName = `coverage-${PODS}`;

const policy = (namespace: string, name: string, spec: object) => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { namespace, name },
  spec,
});

/** Tenants of pods in two zones (frontend, api, db, worker), and two ingress pods. */
function cluster(): object {
  const tenants = Array.from({ length: TENANTS }, (_, t) => `tenant-${t}`);
  const replicas = (share: number): number[] =>
    Array.from({ length: Math.max(2, Math.round((PODS_PER_TENANT * share) / 10)) }, (_, i) => i);
  const apps = [
    { app: 'frontend', share: 3, ports: [{ name: 'http', containerPort: 80 }] },
    { app: 'api', share: 3, ports: [{ name: 'api', containerPort: 8080 }] },
    { app: 'db', share: 2, ports: [{ name: 'postgres', containerPort: 5432 }] },
    { app: 'worker', share: 2, ports: [] },
  ];
  const pods = tenants.flatMap((namespace) =>
    apps.flatMap(({ app, share, ports }) =>
      replicas(share).map((i) => ({
        namespace,
        name: `${app}-${i}`,
        labels: { app, zone: i % 2 === 0 ? 'a' : 'b' },
        // A copy each: YAML would write a shared array once and alias it, and scenario
        // files are read with aliases refused.
        ports: ports.map((p) => ({ ...p })),
      })),
    ),
  );
  const policies = tenants.flatMap((namespace) => [
    policy(namespace, 'default-deny', { podSelector: {}, policyTypes: ['Ingress'] }),
    policy(namespace, 'frontend-from-ingress', {
      podSelector: { matchLabels: { app: 'frontend' } },
      ingress: [
        {
          from: [
            {
              namespaceSelector: { matchLabels: { role: 'ingress' } },
              podSelector: { matchLabels: { app: 'gateway' } },
            },
          ],
          ports: [{ port: 80 }],
        },
      ],
    }),
    policy(namespace, 'api-from-frontend', {
      podSelector: { matchLabels: { app: 'api' } },
      ingress: [
        { from: [{ podSelector: { matchLabels: { app: 'frontend' } } }], ports: [{ port: 'api' }] },
      ],
    }),
    policy(namespace, 'db-from-api', {
      podSelector: { matchLabels: { app: 'db' } },
      ingress: [
        {
          from: [
            {
              podSelector: {
                matchExpressions: [{ key: 'app', operator: 'In', values: ['api', 'worker'] }],
              },
            },
          ],
          ports: [{ port: 'postgres' }],
        },
      ],
    }),
    policy(namespace, 'worker-egress', {
      podSelector: { matchLabels: { app: 'worker' } },
      policyTypes: ['Egress'],
      egress: [{ to: [{ podSelector: { matchLabels: { app: 'db' } } }], ports: [{ port: 5432 }] }],
    }),
  ]);
  return {
    name: labName,
    description: 'generated for bench:coverage',
    namespaces: [
      ...tenants.map((name) => ({ name, labels: { role: 'tenant' } })),
      { name: 'ingress', labels: { role: 'ingress' } },
    ],
    pods: [
      ...pods,
      ...[0, 1].map((i) => ({
        namespace: 'ingress',
        name: `gateway-${i}`,
        labels: { app: 'gateway' },
        ports: [{ name: 'https', containerPort: 443 }],
      })),
    ],
    policies,
    expect: [],
  };
}

interface RunJson {
  cases: {
    attempts: number;
    outcome: string;
    observed: string;
    port: number;
    protocol: 'TCP' | 'UDP' | 'SCTP';
    from: { namespace: string; pod: string };
    to: { namespace: string; pod: string };
  }[];
  coverage: {
    cells: number;
    cellsVerified: number;
    rulesCovered: number;
    rules: number;
    runsPerRotation: number | null;
  };
}

/** The lumen command as a user runs it, with the benchmark's lab root. */
async function lumen(args: readonly string[]): Promise<void> {
  const result = await run(
    process.execPath,
    [join(lumenRepository(), 'bin', 'lumen.mjs'), ...args],
    {
      timeoutMs: 600_000,
      env: { LUMEN_LAB_ROOT: labRoot },
    },
  );
  if (result.code !== 0) throw new Error(`lumen ${args.join(' ')}: ${result.stderr.slice(-800)}`);
}

async function runOnce(
  kubeconfig: string,
  scratch: string,
  coverage: 'full' | 'budget',
): Promise<{ seconds: number; report: RunJson }> {
  const json = join(scratch, `${coverage}.json`);
  const started = performance.now();
  const result = await run(
    process.execPath,
    [
      join(lumenRepository(), 'bin', 'lumen.mjs'),
      'run',
      '--once',
      '--coverage',
      coverage,
      '--probers',
      'local',
      '--pod-cidrs',
      LAB_POD_CIDR,
      '--timeout',
      '3600',
      '--kubeconfig',
      kubeconfig,
      '--json',
      json,
    ],
    { timeoutMs: 3_700_000, env: { NATS_URL: '', DATABASE_URL: '' } },
  );
  const seconds = (performance.now() - started) / 1000;
  if (result.code === 2) throw new Error(`lumen run --once failed: ${result.stderr.slice(-800)}`);
  return { seconds, report: JSON.parse(readFileSync(json, 'utf8')) as RunJson };
}

function countOutcomes(cases: readonly { outcome: string }[]): string {
  const outcomes = new Map<string, number>();
  for (const c of cases) outcomes.set(c.outcome, (outcomes.get(c.outcome) ?? 0) + 1);
  return [...outcomes].map(([o, n]) => `${n} ${o}`).join(', ');
}

/**
 * The baseline: every case of Lumen's run probed again by its own nmap process, from the
 * pod Lumen probed from to the pod it probed, with the prober's own arguments and reading
 * of nmap's answer, NODES × PROBE_CONCURRENCY processes at once.
 */
async function nmapPerCase(all: RunJson['cases']): Promise<{
  seconds: number;
  sampled: number;
  outcomes: string;
  agreeing: number;
  compared: number;
}> {
  // A fixed-seed shuffle (mulberry32), so every run samples the same cases.
  let seed = 20261201;
  const random = (): number => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const shuffled = [...all];
  for (let i = shuffled.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
  }
  const cases = shuffled.slice(0, Math.min(BASELINE_SAMPLE, all.length));
  const status = JSON.parse(
    (
      await runChecked(
        process.execPath,
        [join(lumenRepository(), 'bin', 'lumen.mjs'), 'lab', 'status', '--name', labName, '--json'],
        { timeoutMs: 60_000, env: { LUMEN_LAB_ROOT: labRoot } },
      )
    ).stdout,
  ) as LabStatus;
  const pods = new Map(status.pods.map((p) => [`${p.namespace}/${p.name}`, p]));
  const settings = defaultProberSettings('baseline', [], kernelSupportsSctp());
  const started = performance.now();
  let next = 0;
  let agreeing = 0;
  let compared = 0;
  const seen = new Map<string, number>();
  const worker = async (): Promise<void> => {
    for (let at = next++; at < cases.length; at = next++) {
      const c = cases[at]!;
      const from = pods.get(`${c.from.namespace}/${c.from.pod}`);
      const to = pods.get(`${c.to.namespace}/${c.to.pod}`);
      let observed = 'inconclusive';
      if (from && to) {
        const args = nmapArguments({
          targets: [to.ip],
          ports: { [c.protocol]: [c.port] },
          tcpScan: settings.tcpScan,
          maxRttTimeoutMs: settings.maxRttTimeoutMs,
          hostTimeoutMs: settings.hostTimeoutMs,
        });
        const result = await run('nsenter', [`--net=${from.netns}`, 'nmap', ...args], {
          timeoutMs: 60_000,
        });
        const port = parseNmapXml(result.stdout).ports[0];
        if (port) observed = observe(port, true).reachability;
      }
      seen.set(observed, (seen.get(observed) ?? 0) + 1);
      if (c.observed !== 'inconclusive' && observed !== 'inconclusive') {
        compared += 1;
        if (c.observed === observed) agreeing += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: NODES * PROBE_CONCURRENCY }, worker));
  return {
    seconds: (performance.now() - started) / 1000,
    sampled: cases.length,
    outcomes: [...seen].map(([o, n]) => `${n} ${o}`).join(', '),
    agreeing,
    compared,
  };
}

/** The baseline's lines: one nmap per case against Lumen's cases per second. */
async function baselineLines(report: RunJson, lumenSeconds: number): Promise<string[]> {
  const baseline = await nmapPerCase(report.cases);
  const rate = baseline.sampled / baseline.seconds;
  const lumenRate = report.cases.length / lumenSeconds;
  const lines = [
    `one nmap process per case, ${NODES * PROBE_CONCURRENCY} at once, on a fixed-seed sample of ${baseline.sampled} of the same ${report.cases.length} cases: ${baseline.seconds.toFixed(1)} s, ${rate.toFixed(1)} cases/s, so ${(report.cases.length / rate).toFixed(0)} s for all (${baseline.outcomes}); agrees with Lumen's observation on ${baseline.agreeing} of ${baseline.compared}`,
    `Lumen's throughput / one nmap per case: ${lumenRate.toFixed(1)} / ${rate.toFixed(1)} cases/s = ${(lumenRate / rate).toFixed(1)}x (budget >= 10x)`,
  ];
  process.stderr.write(`${lines.join('\n')}\n`);
  return lines;
}

// --scenario-out FILE: only write the generated scenario there (to try it with lumen lab).
const out = process.argv.indexOf('--scenario-out');
if (out > 0 && process.argv[out + 1]) {
  writeFileSync(process.argv[out + 1]!, stringify(cluster()));
  process.exit(0);
}
if (baselineOnly) {
  // --baseline-only REPORT --lumen-seconds S: the lab is up and Lumen's run is done.
  const report = JSON.parse(readFileSync(baselineOnly, 'utf8')) as RunJson;
  const at = process.argv.indexOf('--lumen-seconds');
  const lines = await baselineLines(report, Number(process.argv[at + 1]));
  process.stdout.write(`${lines.join('\n')}\n`);
  process.exit(0);
}
const scratch = mkdtempSync(join(tmpdir(), 'lumen-bench-coverage-'));
try {
  const file = join(scratch, `${labName}.yaml`);
  writeFileSync(file, stringify(cluster()));
  const upStarted = performance.now();
  await lumen(['lab', 'up', '--name', labName, '--scenario', file, '--nodes', String(NODES)]);
  const upSeconds = (performance.now() - upStarted) / 1000;
  try {
    const kubeconfig = new LabNames(labName, labRoot).kubeconfig;
    const lines: string[] = [
      `cluster: ${PODS} pods (${TENANTS} tenants of ${PODS_PER_TENANT}, 2 gateways), ${TENANTS * 5} policies, ${NODES} lab nodes; lab up ${upSeconds.toFixed(0)} s (excluded)`,
    ];
    for (const coverage of BASELINE ? (['full'] as const) : (['full', 'budget'] as const)) {
      const { seconds, report } = await runOnce(kubeconfig, scratch, coverage);
      const probes = report.cases.reduce((n, c) => n + c.attempts, 0);
      lines.push(
        `--coverage ${coverage}: ${seconds.toFixed(1)} s, ${report.cases.length} cases (${countOutcomes(report.cases)}), ${report.coverage.cellsVerified} of ${report.coverage.cells} cells verified, ${report.coverage.rulesCovered} of ${report.coverage.rules} rules covered, runs per rotation ${report.coverage.runsPerRotation ?? 'never'}`,
        `  probes: ${probes}, ${(probes / seconds).toFixed(0)}/s in all, ${(probes / seconds / NODES).toFixed(1)}/s per node`,
      );
      process.stderr.write(`${lines.at(-2)}\n${lines.at(-1)}\n`);
      if (BASELINE) lines.push(...(await baselineLines(report, seconds)));
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    if (process.argv.includes('--record'))
      recordSection(
        BASELINE ? 'lab-scale' : 'coverage',
        BASELINE ? 'npm run bench:lab-scale' : 'npm run bench:coverage',
        measureMachine(),
        lines,
      );
  } finally {
    await lumen(['lab', 'down', '--name', labName]);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
