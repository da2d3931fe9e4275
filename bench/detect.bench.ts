/**
 * npm run bench:detect [-- --record] [-- --only SUBSTRING]   (root)
 *
 * How much breakage Lumen catches. For every scenario (the shared conformance scenarios
 * and generated clusters) and every deterministic fault mode of the lab's enforcer:
 *
 * - the truth: nmap from inside every pod to every declared port of every other pod (the
 *   prober's own executor, with the real nsenter and nmap), compared with what the
 *   policies say; a connection the network handles otherwise is broken. The probes are
 *   the truth; the engine only says what should happen.
 * - Lumen: one sweep of the pipeline (planner, scheduler, a prober per node, reporter)
 *   with its default coverage, after the fault is set.
 *
 * It counts faults that broke a connection and were caught (a case failed) in that sweep,
 * broken connections whose matrix cell failed, false alarms (failed cases whose probed
 * connection was not broken), and the probes Lumen spent.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { stringify } from 'yaml';
import type { ProbeBatch, Reachability } from '#lumen/contracts';
import { kernelSupportsSctp, run } from '#lumen/host';
import {
  DETERMINISTIC_FAULTS,
  SERVICE_PATH_FAULTS,
  LabNames,
  labDown,
  labFault,
  labUp,
  type LabStatus,
} from '#lumen/lab';
import { startPrivateNatsServer } from '#lumen/messaging';
import { CoreV1Api } from '@kubernetes/client-node';
import { loadKubeConfig } from '#lumen/kube';
import { caseIdOf, familyCaseId, type PlannedCase } from '#lumen/planner';
import {
  PolicyEngine,
  addressIn,
  clusterInFamily,
  familiesOf,
  parseCidr,
  type Cidr,
  type Cluster,
  type IpFamily,
  type Pod,
} from '#lumen/policy';
import { defaultProberSettings, executeBatch, hostProbeHost } from '#lumen/prober';
import {
  backendsOf,
  conformanceDir,
  loadScenarioFile,
  scenarioFiles,
  type Scenario,
} from '#lumen/scenario';
import { LAB_POD_CIDR, startLabPipeline } from '../cli/src/pipeline/lab-verify.js';
import type { LocalPipeline } from '../cli/src/pipeline/local-pipeline.js';
import { lumenRepository } from '../cli/src/paths.js';
import { measureMachine, recordSection } from './report.js';

const FAULTS = DETERMINISTIC_FAULTS;
// The Service-path faults break only connections through a Service: elsewhere they change nothing.
const SERVICE_FAULTS = new Set<string>(SERVICE_PATH_FAULTS);
// ignore-ipv6 breaks only connections over a dual-stack pod's IPv6 address.
const FAMILY_FAULTS = new Set<string>(['ignore-ipv6']);
const TIER_FAULTS = new Set<string>([
  'pass-as-accept',
  'ignore-admin-tier',
  'priority-reversed',
  'baseline-over-networkpolicy',
]);
const labRoot = '/run/lumen/bench-labs';
const sctp = kernelSupportsSctp();
// Scenarios with ipBlocks fix their pods' IPs outside the lab's default range.
// Dual-stack scenarios give their pods unique local IPv6 addresses beside them.
const podCidrs = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fd00::/8'].map(
  (c) => parseCidr(c) as Cidr,
);

interface Connection {
  readonly from: Pod;
  readonly to: Pod;
  readonly port: number;
  readonly protocol: 'TCP' | 'UDP' | 'SCTP';
  /** The destination declares this port: its listener answers (false: a port Lumen chose). */
  readonly declared?: boolean;
  /** Over a dual-stack pod's second family (unset: the primary). */
  readonly family?: IpFamily;
}

const key = (c: Connection): string =>
  `${c.from.namespace}/${c.from.name}>${c.to.namespace}/${c.to.name}:${c.port}/${c.protocol}${c.family ? `/v${c.family}` : ''}`;

/** The models the truth is judged by: the primary one, and one per further IP family. */
interface Models {
  readonly primary: PolicyEngine;
  readonly families: ReadonlyMap<IpFamily, PolicyEngine>;
}

const modelOf = (models: Models, c: Connection): PolicyEngine =>
  (c.family && models.families.get(c.family)) || models.primary;

/** The connections again over each further family, between pods addressed in it. */
function familyConnections(all: readonly Connection[], models: Models): Connection[] {
  return [...models.families.keys()].flatMap((family) =>
    all
      .filter((c) => addressIn(c.from, family) && addressIn(c.to, family))
      .map((c) => ({ ...c, family })),
  );
}

/** Every pod to every declared port of every other pod (a pod to itself is left out). */
function connections(cluster: Cluster): Connection[] {
  const pods = cluster.pods.filter((p) => !p.hostNetwork);
  return pods.flatMap((from) =>
    pods
      .filter((to) => to !== from)
      .flatMap((to) =>
        to.ports
          .filter((p) => p.protocol !== 'SCTP' || sctp)
          .map((p) => ({ from, to, port: p.port, protocol: p.protocol })),
      ),
  );
}

/** The connections the network handles otherwise than the policies say, probed for real. */
async function truth(
  status: LabStatus,
  models: Models,
  all: readonly Connection[],
): Promise<{ broken: Set<string>; unknown: number }> {
  const broken = new Set<string>();
  let unknown = 0;
  const bySource = new Map<Pod, Connection[]>();
  for (const c of all) bySource.set(c.from, [...(bySource.get(c.from) ?? []), c]);
  const host = hostProbeHost(120_000);
  await Promise.all(
    [...bySource].map(async ([source, group]) => {
      const pod = status.pods.find(
        (p) => p.namespace === source.namespace && p.name === source.name,
      );
      if (!pod) throw new Error(`no lab pod ${source.namespace}/${source.name}`);
      const ipOf = (p: Pod, family: IpFamily | undefined): string => {
        const lab = status.pods.find((s) => s.namespace === p.namespace && s.name === p.name);
        return (
          (family ? lab?.ips.find((a) => (a.includes(':') ? 6 : 4) === family) : lab?.ip) ?? ''
        );
      };
      const batch: ProbeBatch = {
        batchId: `truth-${source.namespace}-${source.name}`,
        node: pod.node,
        attempt: 1,
        source: { namespace: pod.namespace, name: pod.name, uid: pod.uid },
        targets: group.map((c, i) => ({
          caseId: i.toString(16).padStart(16, '0'),
          round: 0,
          destination: { namespace: c.to.namespace, name: c.to.name },
          ip: ipOf(c.to, c.family),
          port: c.port,
          protocol: c.protocol,
          listenerKnown: c.declared !== false,
        })),
        issuedAt: new Date().toISOString(),
      };
      const result = await executeBatch(
        batch,
        defaultProberSettings(pod.node, podCidrs, sctp),
        host,
      );
      result.observations.forEach((o, i) => {
        const c = group[i]!;
        const allowed = modelOf(models, c).verdict({
          from: c.from,
          to: c.to,
          port: c.port,
          protocol: c.protocol,
        }).allowed;
        const seen: Reachability = o.reachability;
        if (seen === 'inconclusive') unknown += 1;
        else if ((seen === 'reachable') !== allowed) broken.add(key(c));
      });
    }),
  );
  return { broken, unknown };
}

/** A pod's connection through a Service port whose backends the policies all decide alike. */
interface ServiceConnection {
  readonly from: Pod;
  readonly namespace: string;
  readonly name: string;
  readonly clusterIP: string;
  readonly port: number;
  readonly allowed: boolean;
}

const serviceKey = (from: string, c: { namespace: string; name: string; port: number }): string =>
  `${from}>svc ${c.namespace}/${c.name}:${c.port}`;
const serviceKeyOf = (c: ServiceConnection): string =>
  serviceKey(`${c.from.namespace}/${c.from.name}`, c);

/** The ClusterIPs the lab's API server gave the scenario's Services, by `namespace/name`. */
async function labClusterIps(labName: string): Promise<Map<string, string>> {
  const api = loadKubeConfig(new LabNames(labName, labRoot).kubeconfig).makeApiClient(CoreV1Api);
  const list = await api.listServiceForAllNamespaces();
  return new Map(
    list.items.flatMap((s) =>
      s.spec?.clusterIP && s.spec.clusterIP !== 'None'
        ? [[`${s.metadata?.namespace}/${s.metadata?.name}`, s.spec.clusterIP] as const]
        : [],
    ),
  );
}

/** Every pod through every TCP Service port, where the backends' verdicts agree. */
function serviceConnections(
  scenario: Scenario,
  cluster: Cluster,
  engine: PolicyEngine,
  clusterIps: ReadonlyMap<string, string>,
): ServiceConnection[] {
  const pods = cluster.pods.filter((p) => !p.hostNetwork);
  return scenario.services.flatMap((service) => {
    const clusterIP = clusterIps.get(`${service.namespace}/${service.name}`);
    if (!clusterIP || clusterIP.includes(':')) return [];
    return service.ports
      .filter((p) => p.protocol === 'TCP')
      .flatMap((port) => {
        const backends = backendsOf(service, port.port, 'TCP', cluster.pods) ?? [];
        if (backends.length === 0) return [];
        return pods.flatMap((from): ServiceConnection[] => {
          const verdicts = new Set(
            backends.map(
              (b) => engine.verdict({ from, to: b.pod, port: b.port, protocol: 'TCP' }).allowed,
            ),
          );
          if (verdicts.size !== 1) return [];
          const [allowed = false] = verdicts;
          const { namespace, name } = service;
          return [{ from, namespace, name, clusterIP, port: port.port, allowed }];
        });
      });
  });
}

/** The connections through Services the network handles otherwise than the policies say. */
async function serviceTruth(
  status: LabStatus,
  all: readonly ServiceConnection[],
): Promise<{ broken: Set<string>; unknown: number }> {
  const broken = new Set<string>();
  let unknown = 0;
  const host = hostProbeHost(120_000);
  const bySource = new Map<Pod, ServiceConnection[]>();
  for (const c of all) bySource.set(c.from, [...(bySource.get(c.from) ?? []), c]);
  await Promise.all(
    [...bySource].map(async ([source, group]) => {
      const pod = status.pods.find(
        (p) => p.namespace === source.namespace && p.name === source.name,
      );
      if (!pod) throw new Error(`no lab pod ${source.namespace}/${source.name}`);
      const result = await executeBatch(
        {
          batchId: `truth-svc-${source.namespace}-${source.name}`,
          node: pod.node,
          attempt: 1,
          source: { namespace: pod.namespace, name: pod.name, uid: pod.uid },
          targets: group.map((c, i) => ({
            caseId: i.toString(16).padStart(16, '0'),
            round: 0,
            service: { namespace: c.namespace, name: c.name },
            ip: c.clusterIP,
            port: c.port,
            protocol: 'TCP' as const,
            listenerKnown: true,
          })),
          issuedAt: new Date().toISOString(),
        },
        defaultProberSettings(pod.node, podCidrs, sctp),
        host,
      );
      result.observations.forEach((o, i) => {
        const c = group[i]!;
        if (o.reachability === 'inconclusive') unknown += 1;
        else if ((o.reachability === 'reachable') !== c.allowed) broken.add(serviceKeyOf(c));
      });
    }),
  );
  return { broken, unknown };
}

interface Round {
  readonly scenario: string;
  readonly fault: string;
  readonly connections: number;
  readonly broken: number;
  readonly unknown: number;
  readonly caught: boolean;
  readonly brokenFailed: number;
  readonly falseAlarms: number;
  readonly cases: number;
  readonly inconclusive: number;
  readonly probes: number;
  readonly fitsBudget: boolean;
}

/** The cyclonus shape: 3 namespaces × pods a, b, c, TCP and UDP on 80 and 81, fixed IPs. */
function cyclonus(name: string, policies: Cluster['policies']): object {
  return {
    name,
    description: 'generated for bench:detect',
    namespaces: ['x', 'y', 'z'].map((n) => ({ name: n, labels: { ns: n } })),
    pods: ['x', 'y', 'z'].flatMap((namespace, n) =>
      ['a', 'b', 'c'].map((pod, i) => ({
        namespace,
        name: pod,
        labels: { pod },
        ip: `10.244.${200 + n}.${10 + i}`,
        ports: [
          { name: 'serve-80-tcp', containerPort: 80, protocol: 'TCP' },
          { name: 'serve-81-tcp', containerPort: 81, protocol: 'TCP' },
          { name: 'serve-80-udp', containerPort: 80, protocol: 'UDP' },
          { name: 'serve-81-udp', containerPort: 81, protocol: 'UDP' },
        ],
      })),
    ),
    policies,
    expect: [],
  };
}

const policy = (namespace: string, name: string, spec: object) => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { namespace, name },
  spec,
});

function generatedScenarios(dir: string): string[] {
  const scenarios = [
    cyclonus('generated-egress-and-peer', [
      // The issue's missed fault: egress to pod=a pods of namespace y, in one peer.
      policy('x', 'a-to-y-a', {
        podSelector: { matchLabels: { pod: 'a' } },
        policyTypes: ['Egress'],
        egress: [
          {
            to: [
              {
                namespaceSelector: { matchLabels: { ns: 'y' } },
                podSelector: { matchLabels: { pod: 'a' } },
              },
            ],
          },
        ],
      }),
    ]),
    cyclonus('generated-ports-and-blocks', [
      policy('y', 'b-from-x-b', {
        podSelector: { matchLabels: { pod: 'b' } },
        ingress: [
          {
            from: [
              {
                namespaceSelector: { matchLabels: { ns: 'x' } },
                podSelector: { matchLabels: { pod: 'b' } },
              },
            ],
          },
        ],
      }),
      policy('z', 'c-named-81', {
        podSelector: { matchLabels: { pod: 'c' } },
        ingress: [{ ports: [{ port: 'serve-81-tcp', protocol: 'TCP' }] }],
      }),
      policy('x', 'c-range-from-z', {
        podSelector: { matchLabels: { pod: 'c' } },
        ingress: [
          {
            from: [{ namespaceSelector: { matchLabels: { ns: 'z' } } }],
            ports: [{ port: 80, endPort: 81, protocol: 'TCP' }],
          },
        ],
      }),
      policy('y', 'c-from-x-block', {
        podSelector: { matchLabels: { pod: 'c' } },
        ingress: [
          { from: [{ ipBlock: { cidr: '10.244.200.0/24', except: ['10.244.200.12/32'] } }] },
        ],
      }),
    ]),
  ];
  return scenarios.map((s) => {
    const file = join(dir, `${(s as { name: string }).name}.yaml`);
    writeFileSync(file, stringify(s));
    return file;
  });
}

/**
 * The speed budget: `lumen run --once --coverage full` as a user runs it, as a process,
 * against a running lab (its start-up excluded), with its probers in the process.
 */
async function timedRunOnce(labName: string): Promise<{ seconds: number; summary: string }> {
  const started = performance.now();
  const result = await run(
    process.execPath,
    [
      join(lumenRepository(), 'bin', 'lumen.mjs'),
      'run',
      '--once',
      '--coverage',
      'full',
      '--probers',
      'local',
      '--pod-cidrs',
      LAB_POD_CIDR,
      '--kubeconfig',
      new LabNames(labName, labRoot).kubeconfig,
    ],
    { timeoutMs: 300_000 },
  );
  const seconds = (performance.now() - started) / 1000;
  if (result.code !== 0) throw new Error(`lumen run --once failed: ${result.stderr.slice(0, 500)}`);
  const summary = /^Coverage .*$/m.exec(result.stdout)?.[0] ?? 'no coverage line';
  return { seconds, summary };
}

interface ScenarioRun {
  readonly scenario: string;
  readonly status: LabStatus;
  readonly cluster: Cluster;
  readonly engine: PolicyEngine;
  readonly models: Models;
  readonly all: readonly Connection[];
  readonly throughServices: readonly ServiceConnection[];
  readonly pipeline: LocalPipeline;
}

/** One sweep under one fault: the truth, Lumen's verdicts, and how they compare. */
async function measureRound(ctx: ScenarioRun, fault: string): Promise<Round> {
  const { status, cluster, engine, models, all, throughServices, pipeline } = ctx;
  // The enforcer reprograms within a second of a change.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const real = await truth(status, models, all);
  const realThrough = await serviceTruth(status, throughServices);
  const published = await pipeline.sweep();
  const generation = published?.generation ?? 0;
  await pipeline.untilJudged(180_000, generation);
  const plan = pipeline.planner.plan!;
  const outcomes = plan.cases.map((c) => ({
    planned: c,
    final: pipeline.finalOutcomes.get(c.caseId),
  }));
  const failed = outcomes.filter(
    (o) => o.final?.outcome === 'fail' || o.final?.outcome === 'flaky',
  );
  const failedCells = new Set(failed.filter((o) => !o.planned.via).map((o) => o.planned.caseId));
  const brokenFailed = all.filter((c) => {
    if (!real.broken.has(key(c))) return false;
    const model = modelOf(models, c);
    const from = model.classOf(c.from);
    const to = model.classOf(c.to);
    if (!from || !to) return false;
    const cell = caseIdOf(from.key, to.key, c.port, c.protocol);
    return failedCells.has(c.family ? familyCaseId(cell, c.family) : cell);
  }).length;
  // A path through a Service is its source class's, to the Service port.
  const pathOf = (
    sourceClass: string,
    via: Pick<NonNullable<PlannedCase['via']>, 'namespace' | 'name' | 'port'>,
  ): string => `${sourceClass}|${serviceKey('', via)}`;
  const failedPaths = new Set(
    failed.flatMap((o) => (o.planned.via ? [pathOf(o.planned.source.key, o.planned.via)] : [])),
  );
  const brokenThroughFailed = throughServices.filter((c) => {
    const from = engine.classOf(c.from);
    return realThrough.broken.has(serviceKeyOf(c)) && from && failedPaths.has(pathOf(from.key, c));
  }).length;
  // A failed case on a port no pod declares (an unlisted port) is outside the truth
  // set: its own connection is probed for real too, before it can count as a false alarm.
  const probedOf = (o: (typeof failed)[number]): Connection | undefined => {
    const pod = (ref: string | undefined): Pod | undefined =>
      cluster.pods.find((p) => `${p.namespace}/${p.name}` === ref);
    const from = pod(o.final?.sourcePod);
    const to = pod(o.final?.destinationPod);
    return from && to
      ? {
          from,
          to,
          port: o.planned.port,
          protocol: o.planned.protocol,
          declared: o.planned.listenerKnown,
          ...(o.planned.family ? { family: o.planned.family } : {}),
        }
      : undefined;
  };
  const brokenDeclared = real.broken.size;
  const podFailed = failed.filter((o) => !o.planned.via);
  const outside = podFailed
    .map(probedOf)
    .filter((c): c is Connection => c !== undefined && !all.some((a) => key(a) === key(c)));
  if (outside.length > 0)
    for (const k of (await truth(status, models, outside)).broken) real.broken.add(k);
  const falseAlarms =
    podFailed.filter((o) => {
      const probed = probedOf(o);
      return !probed || !real.broken.has(key(probed));
    }).length +
    failed.filter(
      (o) =>
        o.planned.via &&
        !realThrough.broken.has(serviceKey(o.final?.sourcePod ?? '', o.planned.via)),
    ).length;
  return {
    scenario: ctx.scenario,
    fault,
    connections: all.length + throughServices.length,
    broken: brokenDeclared + realThrough.broken.size,
    unknown: real.unknown + realThrough.unknown,
    caught: failed.length > 0,
    brokenFailed: brokenFailed + brokenThroughFailed,
    falseAlarms,
    cases: plan.cases.length,
    inconclusive: outcomes.filter((o) => o.final?.outcome === 'inconclusive').length,
    probes: outcomes.reduce((n, o) => n + (o.final?.attempts ?? 0), 0),
    fitsBudget: plan.coverage.sweepsPerRotation === 1,
  };
}

let runOnce: { scenario: string; seconds: number; summary: string } | undefined;

async function measureScenario(file: string, scratch: string, index: number): Promise<Round[]> {
  const scenario = loadScenarioFile(file);
  const labName = `detect-${index}`;
  const nats = await startPrivateNatsServer({ storeDir: join(scratch, `nats-${index}`) });
  const rounds: Round[] = [];
  try {
    const status = await labUp({
      name: labName,
      root: labRoot,
      scenario: file,
      nodes: 2,
      faults: [],
      podCidr: LAB_POD_CIDR,
    });
    // The policies over the pods as the lab runs them (ipBlocks match their real IPs).
    const cluster: Cluster = {
      ...scenario.cluster,
      pods: scenario.cluster.pods.map((p) => {
        const lab = status.pods.find((s) => s.namespace === p.namespace && s.name === p.name);
        return {
          ...p,
          ip: lab?.ip ?? p.ip,
          ...(lab && lab.ips.length > 1 ? { ips: lab.ips } : {}),
        };
      }),
    };
    const engine = new PolicyEngine(cluster);
    const models: Models = {
      primary: engine,
      families: new Map(
        familiesOf(cluster)
          .slice(1)
          .map((f) => [f, new PolicyEngine(clusterInFamily(cluster, f))] as const),
      ),
    };
    const primaryConnections = connections(cluster);
    const all = [...primaryConnections, ...familyConnections(primaryConnections, models)];
    const throughServices = serviceConnections(
      scenario,
      cluster,
      engine,
      await labClusterIps(labName),
    );
    if (scenario.name === 'generated-egress-and-peer')
      runOnce = { scenario: scenario.name, ...(await timedRunOnce(labName)) };
    const pipeline = await startLabPipeline({
      labName,
      labRoot,
      natsUrl: nats.url,
      scratch,
      podCidrs,
    });
    try {
      await pipeline.untilJudged(180_000);
      // The tier faults rewrite cluster-scoped policies only: elsewhere they change nothing.
      const tiered = (scenario.cluster.clusterPolicies ?? []).length > 0;
      const faults = FAULTS.filter(
        (f) =>
          (tiered || !TIER_FAULTS.has(f)) &&
          (throughServices.length > 0 || !SERVICE_FAULTS.has(f)) &&
          (models.families.size > 0 || !FAMILY_FAULTS.has(f)),
      );
      for (const fault of ['none', ...faults]) {
        if (fault !== 'none') await labFault(labName, labRoot, 'set', fault);
        rounds.push(
          await measureRound(
            {
              scenario: scenario.name,
              status,
              cluster,
              engine,
              models,
              all,
              throughServices,
              pipeline,
            },
            fault,
          ),
        );
        if (fault !== 'none') await labFault(labName, labRoot, 'clear', fault);
        process.stderr.write(`${scenario.name} ${fault}: ${JSON.stringify(rounds.at(-1))}\n`);
      }
    } finally {
      await pipeline.stop();
    }
  } finally {
    await labDown(labName, labRoot);
    await nats.stop();
  }
  return rounds;
}

const only = process.argv.includes('--only')
  ? process.argv[process.argv.indexOf('--only') + 1]
  : undefined;
const scratch = mkdtempSync(join(tmpdir(), 'lumen-bench-detect-'));
try {
  // The generated clusters first: the timed lumen run --once runs on the first of them.
  const files = [
    ...generatedScenarios(scratch),
    ...scenarioFiles(conformanceDir(lumenRepository())),
    // The repository's own scenarios of the cluster-scoped tiers. The 13 upstream
    // conformance states below them (examples/tiers/upstream) are walked in the lab by
    // upstream-tiers.lab.spec.ts; here they would cost 13 more labs under 12 fault modes.
    ...scenarioFiles(join(lumenRepository(), 'examples', 'tiers')).filter(
      (f) => !f.includes(`${sep}upstream${sep}`),
    ),
    // The repository's own scenarios with Services and dual-stack pods: the Service-path
    // faults and ignore-ipv6 need them.
    ...scenarioFiles(join(lumenRepository(), 'examples', 'services')),
    ...scenarioFiles(join(lumenRepository(), 'examples', 'dual-stack')),
  ].filter((f) => !only || f.includes(only));
  const started = performance.now();
  const rounds: Round[] = [];
  for (const [i, file] of files.entries())
    rounds.push(...(await measureScenario(file, scratch, i)));
  const faulty = rounds.filter((r) => r.fault !== 'none' && r.broken > 0);
  const caught = faulty.filter((r) => r.caught);
  const fitting = faulty.filter((r) => r.fitsBudget);
  const sum = (rs: readonly Round[], f: (r: Round) => number): number =>
    rs.reduce((n, r) => n + f(r), 0);
  const pct = (n: number, of: number): string =>
    of === 0 ? '-' : `${((100 * n) / of).toFixed(1)}%`;
  const missed = faulty.filter((r) => !r.caught).map((r) => `${r.scenario}/${r.fault}`);
  const alarms = rounds
    .filter((r) => r.falseAlarms > 0)
    .map((r) => `${r.scenario}/${r.fault} (${r.falseAlarms})`);
  const lines = [
    `scenarios: ${files.length} (the shared conformance ones, 2 generated, 2 of the tiers, 2 with Services, 1 dual-stack), fault modes: ${FAULTS.length} + healthy (the ${TIER_FAULTS.size} tier faults on the tier scenarios, the ${SERVICE_FAULTS.size} Service-path faults where Services are, ignore-ipv6 where pods are dual-stack); ${((performance.now() - started) / 60_000).toFixed(1)} min`,
    `connections probed for the truth: ${sum(
      rounds.filter((r) => r.fault === 'none'),
      (r) => r.connections,
    )} per round; truth inconclusive: ${sum(rounds, (r) => r.unknown)}`,
    `faults that broke a connection: ${faulty.length}; caught in the first sweep: ${caught.length} (${pct(caught.length, faulty.length)})${missed.length > 0 ? `; missed: ${missed.join(', ')}` : ''}`,
    `broken connections failed within the sweep: ${sum(faulty, (r) => r.brokenFailed)} of ${sum(faulty, (r) => r.broken)} (${pct(
      sum(faulty, (r) => r.brokenFailed),
      sum(faulty, (r) => r.broken),
    )}); where the matrix fits the budget: ${pct(
      sum(fitting, (r) => r.brokenFailed),
      sum(fitting, (r) => r.broken),
    )} (budget >= 95%)`,
    `false alarms: ${sum(rounds, (r) => r.falseAlarms)}${alarms.length > 0 ? ` (${alarms.join(', ')})` : ''} (budget 0); inconclusive cases: ${sum(rounds, (r) => r.inconclusive)}`,
    `probes spent: ${sum(rounds, (r) => r.probes)} over ${rounds.length} sweeps (${(sum(rounds, (r) => r.probes) / Math.max(1, rounds.length)).toFixed(0)} per sweep)`,
    ...(runOnce
      ? [
          `lumen run --once --coverage full on ${runOnce.scenario} (9 pods, TCP and UDP on 80 and 81), lab up excluded: ${runOnce.seconds.toFixed(1)} s (budget 10 s)`,
          `  ${runOnce.summary}`,
        ]
      : []),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (process.argv.includes('--record'))
    recordSection('detect', 'npm run bench:detect', measureMachine(), lines);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
