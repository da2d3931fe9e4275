import { parseArgs } from 'node:util';
import {
  PolicyEngine,
  describeVerdict,
  formatLabels,
  podKey,
  validatePolicy,
  type Cluster,
  type Explanation,
  type Pod,
  type Protocol,
} from '#lumen/policy';
import {
  InputError,
  loadInputFile,
  mergeClusters,
  type LoadedInput,
  type Scenario,
} from '#lumen/scenario';
import { ExitCode, UsageError, renderTable, type CommandIo } from '../io.js';

export const evaluateUsage = `Usage: lumen evaluate [--format table|json] [--matrix] FILE...

Computes what NetworkPolicies allow, without touching a network.

FILE is a Lumen scenario (see shared/conformance/README.md) or Kubernetes YAML/JSON
(multi-document or List) holding Namespaces, Pods and NetworkPolicies. Manifest files
are merged into one cluster; each scenario stands alone. FILE - reads standard input:

  kubectl get namespaces,pods,networkpolicies -A -o yaml | lumen evaluate --matrix -

  --format table|json  output format (default: table)
  --matrix             print the pod x pod matrix for every declared port/protocol

Exit codes: 0 every expectation agrees, 1 some disagree, 2 invalid input.
`;

interface ResultRow {
  readonly from: string;
  readonly to: string;
  readonly port: number;
  readonly protocol: Protocol;
  readonly expected: boolean;
  readonly allowed: boolean;
  readonly loopback: boolean;
  readonly explanation: Explanation;
}

interface ScenarioResult {
  readonly name: string;
  readonly agree: number;
  readonly disagree: number;
  readonly results: readonly ResultRow[];
}

interface NamedCluster {
  readonly name: string;
  readonly cluster: Cluster;
}

/** Invalid policies are invalid input here: name the file and the object. */
function assertValidPolicies(input: LoadedInput): void {
  const cluster = input.kind === 'scenario' ? input.scenario.cluster : input.cluster;
  for (const policy of cluster.policies) {
    const result = validatePolicy(policy);
    if (!result.ok) {
      const [first] = result.errors;
      throw new InputError(
        input.file,
        `NetworkPolicy ${first?.policy ?? '?'}`,
        result.errors.map((e) => `${e.field}: ${e.message}`).join('; '),
      );
    }
  }
}

function evaluateScenario(scenario: Scenario): ScenarioResult {
  const engine = new PolicyEngine(scenario.cluster);
  const results = scenario.expectations.map((row): ResultRow => {
    const verdict = engine.verdict(row);
    return {
      from: podKey(row.from),
      to: podKey(row.to),
      port: row.port,
      protocol: row.protocol,
      expected: row.allowed,
      allowed: verdict.allowed,
      loopback: row.loopback,
      explanation: verdict.explanation,
    };
  });
  const agree = results.filter((r) => r.expected === r.allowed).length;
  return { name: scenario.name, agree, disagree: results.length - agree, results };
}

function describePods(pod: Pod): string {
  const labels = formatLabels(pod.labels);
  return `pods in namespace ${pod.namespace} with labels ${labels || '(none)'}`;
}

function scenarioTable(result: ScenarioResult, scenario: Scenario): string {
  const pods = new Map(scenario.cluster.pods.map((p) => [podKey(p), p]));
  const rows = result.results.map((r) => {
    const from = pods.get(r.from);
    const to = pods.get(r.to);
    const verb = r.allowed ? 'can reach' : 'cannot reach';
    const sentence = `${from ? describePods(from) : r.from} ${verb} ${to ? describePods(to) : r.to} on port ${r.port}/${r.protocol}`;
    const mark = r.expected === r.allowed ? '✓' : '✗';
    return [
      mark,
      `${r.from} → ${r.to}`,
      `${r.port}/${r.protocol}`,
      r.expected ? 'allow' : 'deny',
      r.allowed ? 'allow' : 'deny',
      sentence.charAt(0).toUpperCase() + sentence.slice(1),
    ];
  });
  const heading = `${result.name}: ${result.agree} agree, ${result.disagree} disagree\n`;
  return (
    heading + renderTable(['', 'CONNECTION', 'PORT', 'EXPECTED', 'POLICIES SAY', 'MEANING'], rows)
  );
}

function disagreementDetails(result: ScenarioResult): string {
  return result.results
    .filter((r) => r.expected !== r.allowed)
    .map(
      (r) =>
        `  ✗ ${r.from} → ${r.to} ${r.port}/${r.protocol}: ${describeVerdict({ allowed: r.allowed, explanation: r.explanation })}\n`,
    )
    .join('');
}

interface MatrixTable {
  readonly port: number;
  readonly protocol: Protocol;
  readonly from: readonly string[];
  readonly to: readonly string[];
  /** allowed[i][j]: from[i] may reach to[j]. */
  readonly allowed: readonly (readonly boolean[])[];
}

function matrixOf(cluster: Cluster): MatrixTable[] {
  const engine = new PolicyEngine(cluster);
  const portKeys = new Map<string, { port: number; protocol: Protocol }>();
  for (const pod of cluster.pods)
    for (const p of pod.ports)
      portKeys.set(`${p.port}/${p.protocol}`, { port: p.port, protocol: p.protocol });
  const names = cluster.pods.map(podKey);
  return [...portKeys.values()]
    .sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol))
    .map(({ port, protocol }) => ({
      port,
      protocol,
      from: names,
      to: names,
      allowed: cluster.pods.map((from) =>
        cluster.pods.map((to) => engine.verdict({ from, to, port, protocol }).allowed),
      ),
    }));
}

function matrixText(name: string, tables: readonly MatrixTable[]): string {
  if (tables.length === 0)
    return `${name}: no pod declares a containerPort, so there is no matrix to show\n`;
  return tables
    .map((t) => {
      const title = `${name}, port ${t.port}/${t.protocol}: ✓ allowed, ✗ denied (row: from, column: to)\n`;
      const header = ['FROM \\ TO', ...t.to.map((_, j) => String(j + 1))];
      const rows = t.from.map((from, i) => [
        `${i + 1} ${from}`,
        ...(t.allowed[i] ?? []).map((a) => (a ? '✓' : '✗')),
      ]);
      return title + renderTable(header, rows);
    })
    .join('\n');
}

function loadAll(files: readonly string[]): {
  scenarios: Scenario[];
  manifests: NamedCluster | undefined;
  notes: string[];
} {
  const inputs = files.map(loadInputFile);
  inputs.forEach(assertValidPolicies);
  const scenarios = inputs.flatMap((i) => (i.kind === 'scenario' ? [i.scenario] : []));
  const manifestInputs = inputs.flatMap((i) => (i.kind === 'manifests' ? [i] : []));
  const notes = manifestInputs.flatMap((i) =>
    i.ignored.map(
      (o) => `${i.file}: ignoring ${o} (only Namespaces, Pods and NetworkPolicies are read)\n`,
    ),
  );
  const manifests =
    manifestInputs.length === 0
      ? undefined
      : {
          name: manifestInputs.map((i) => i.file).join(', '),
          cluster: mergeClusters(manifestInputs.map((i) => i.cluster)),
        };
  if (manifests) {
    // Pods named twice across files are as ambiguous as within one.
    const seen = new Set<string>();
    for (const pod of manifests.cluster.pods) {
      if (seen.has(podKey(pod)))
        throw new InputError(manifests.name, `Pod ${podKey(pod)}`, 'defined more than once');
      seen.add(podKey(pod));
    }
  }
  return { scenarios, manifests, notes };
}

function summaryLine(cluster: NamedCluster): string {
  const engine = new PolicyEngine(cluster.cluster);
  const isolated = engine.podClasses
    .filter((c) => engine.classVerdict(c, c, 1, 'TCP').explanation.ingress.isolated)
    .flatMap((c) => c.pods).length;
  return `${cluster.name}: ${cluster.cluster.pods.length} pods in ${engine.podClasses.length} classes, ${engine.policies.length} policies, ${isolated} pods isolated for ingress (use --matrix for every connection)\n`;
}

export function runEvaluate(args: readonly string[], io: CommandIo): number {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      format: { type: 'string', default: 'table' },
      matrix: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout(evaluateUsage);
    return ExitCode.ok;
  }
  if (values.format !== 'table' && values.format !== 'json')
    throw new UsageError(`--format must be table or json, not ${values.format}`);
  if (positionals.length === 0) throw new UsageError('evaluate needs at least one FILE');
  const { scenarios, manifests, notes } = loadAll(positionals);
  notes.forEach(io.stderr);
  const results = scenarios.map(evaluateScenario);
  const agree = results.reduce((n, r) => n + r.agree, 0);
  const disagree = results.reduce((n, r) => n + r.disagree, 0);
  const clusters: NamedCluster[] = [
    ...scenarios.map((s) => ({ name: s.name, cluster: s.cluster })),
    ...(manifests ? [manifests] : []),
  ];

  if (values.format === 'json') {
    const document = values.matrix
      ? { matrices: clusters.map((c) => ({ name: c.name, tables: matrixOf(c.cluster) })) }
      : { scenarios: results, agree, disagree };
    io.stdout(`${JSON.stringify(document, null, 2)}\n`);
  } else if (values.matrix) {
    io.stdout(clusters.map((c) => matrixText(c.name, matrixOf(c.cluster))).join('\n'));
  } else {
    const sections = results.map(
      (r, i) => scenarioTable(r, scenarios[i] as Scenario) + disagreementDetails(r),
    );
    if (manifests) sections.push(summaryLine(manifests));
    if (results.length > 0) sections.push(`${agree} agree, ${disagree} disagree\n`);
    io.stdout(sections.join('\n'));
  }
  return disagree > 0 ? ExitCode.mismatch : ExitCode.ok;
}
