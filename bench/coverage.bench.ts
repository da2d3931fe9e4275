/**
 * npm run bench:coverage [-- --record]   (root)
 *
 * The time to full coverage of a multi-tenant cluster in the lab: 202 pods in 20 tenant
 * namespaces and an ingress namespace, 100 policies (five per tenant), about 20,000
 * class-level connections, on 4 lab nodes. `lumen run --once` runs as a user runs it, as
 * a process with its probers in the process (one per node), first with `--coverage full`
 * (the whole matrix), then with the default budget; lab start-up is excluded.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { run } from '#lumen/host';
import { LabNames } from '#lumen/lab';
import { LAB_POD_CIDR } from '../cli/src/pipeline/lab-verify.js';
import { lumenRepository } from '../cli/src/paths.js';
import { measureMachine, recordSection } from './report.js';

const TENANTS = 20;
const NODES = 4;
const labRoot = '/run/lumen/bench-labs';
const labName = 'coverage-202';

const policy = (namespace: string, name: string, spec: object) => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { namespace, name },
  spec,
});

/** 20 tenants of 10 pods in two zones (frontend, api, db, worker), and two ingress pods. */
function cluster(): object {
  const tenants = Array.from({ length: TENANTS }, (_, t) => `tenant-${t}`);
  const pods = tenants.flatMap((namespace) => [
    ...[0, 1, 2].map((i) => ({
      namespace,
      name: `frontend-${i}`,
      labels: { app: 'frontend', zone: i % 2 === 0 ? 'a' : 'b' },
      ports: [{ name: 'http', containerPort: 80 }],
    })),
    ...[0, 1, 2].map((i) => ({
      namespace,
      name: `api-${i}`,
      labels: { app: 'api', zone: i % 2 === 0 ? 'a' : 'b' },
      ports: [{ name: 'api', containerPort: 8080 }],
    })),
    ...[0, 1].map((i) => ({
      namespace,
      name: `db-${i}`,
      labels: { app: 'db', zone: i === 0 ? 'a' : 'b' },
      ports: [{ name: 'postgres', containerPort: 5432 }],
    })),
    ...[0, 1].map((i) => ({
      namespace,
      name: `worker-${i}`,
      labels: { app: 'worker', zone: i === 0 ? 'a' : 'b' },
      ports: [],
    })),
  ]);
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
    name: 'coverage-202',
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
  cases: { attempts: number; outcome: string }[];
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

// --scenario-out FILE: only write the generated scenario there (to try it with lumen lab).
const out = process.argv.indexOf('--scenario-out');
if (out > 0 && process.argv[out + 1]) {
  writeFileSync(process.argv[out + 1]!, stringify(cluster()));
  process.exit(0);
}
const scratch = mkdtempSync(join(tmpdir(), 'lumen-bench-coverage-'));
try {
  const file = join(scratch, 'coverage-202.yaml');
  writeFileSync(file, stringify(cluster()));
  const upStarted = performance.now();
  await lumen(['lab', 'up', '--name', labName, '--scenario', file, '--nodes', String(NODES)]);
  const upSeconds = (performance.now() - upStarted) / 1000;
  try {
    const kubeconfig = new LabNames(labName, labRoot).kubeconfig;
    const lines: string[] = [
      `cluster: 202 pods (${TENANTS} tenants of 10, 2 gateways), 100 policies, ${NODES} lab nodes; lab up ${upSeconds.toFixed(0)} s (excluded)`,
    ];
    for (const coverage of ['full', 'budget'] as const) {
      const { seconds, report } = await runOnce(kubeconfig, scratch, coverage);
      const probes = report.cases.reduce((n, c) => n + c.attempts, 0);
      const outcomes = new Map<string, number>();
      for (const c of report.cases) outcomes.set(c.outcome, (outcomes.get(c.outcome) ?? 0) + 1);
      lines.push(
        `--coverage ${coverage}: ${seconds.toFixed(1)} s, ${report.cases.length} cases (${[...outcomes].map(([o, n]) => `${n} ${o}`).join(', ')}), ${report.coverage.cellsVerified} of ${report.coverage.cells} cells verified, ${report.coverage.rulesCovered} of ${report.coverage.rules} rules covered, runs per rotation ${report.coverage.runsPerRotation ?? 'never'}`,
        `  probes: ${probes}, ${(probes / seconds).toFixed(0)}/s in all, ${(probes / seconds / NODES).toFixed(1)}/s per node`,
      );
      process.stderr.write(`${lines.at(-2)}\n${lines.at(-1)}\n`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    if (process.argv.includes('--record'))
      recordSection('coverage', 'npm run bench:coverage', measureMachine(), lines);
  } finally {
    await lumen(['lab', 'down', '--name', labName]);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
