import { parseArgs } from 'node:util';
import {
  PolicyEngine,
  describeVerdict,
  formatLabels,
  clusterPolicyKey,
  podKey,
  validateClusterPolicy,
  validatePolicy,
  type Cluster,
  type Explanation,
  type IpFamily,
  type Pod,
  type Protocol,
} from '#lumen/policy';
import {
  InputError,
  loadInputFile,
  mergeClusters,
  serviceRowVerdicts,
  type LoadedInput,
  type Scenario,
} from '#lumen/scenario';
import { ExitCode, UsageError, renderTable, type CommandIo } from '../io.js';

export const evaluateUsage = `Usage: lumen evaluate [--format table|json] [--matrix] FILE...

Computes what the policies allow, without touching a network: NetworkPolicies, and the
cluster-scoped tiers around them (ClusterNetworkPolicy v1alpha2, AdminNetworkPolicy and
BaselineAdminNetworkPolicy v1alpha1).

FILE is a Lumen scenario (see examples/README.md) or Kubernetes YAML/JSON (multi-document
or List) holding Namespaces, Pods and policies. Manifest files are merged into one
cluster; each scenario stands alone. FILE - reads standard input:

  kubectl get namespaces,pods,networkpolicies -A -o yaml | lumen evaluate --matrix -
  kubectl get clusternetworkpolicies -o yaml > tiers.yaml

A connection that overlapping policies of one tier and priority decide differently is
ambiguous (the spec leaves it to the implementation): shown as "?", never a disagreement.
A scenario row through a Service is checked against each of its ready backends; a row
of dual-stack pods, in each family (docs/scenarios.md).

  --format table|json  output format (default: table)
  --matrix             print the pod x pod matrix for every declared port/protocol

Exit codes: 0 every expectation agrees, 1 some disagree, 2 invalid input.
`;

interface ResultRow {
  readonly from: string;
  /** The pod reached; for a row through a Service, `svc namespace/name`. */
  readonly to: string;
  /** A row through a Service: each ready backend's verdict. */
  readonly backends?: readonly { pod: string; port: number; allowed: boolean }[];
  /** The backends decide differently: no single verdict holds, so the row disagrees. */
  readonly backendsDisagree?: true;
  /** In a dual-stack scenario, the family this row was checked over. */
  readonly family?: IpFamily;
  readonly port: number;
  readonly protocol: Protocol;
  readonly expected: boolean;
  readonly allowed: boolean;
  readonly loopback: boolean;
  readonly explanation: Explanation;
  /** Why the policies leave the connection to the implementation, when they do. */
  readonly ambiguous?: string;
}

interface ScenarioResult {
  readonly name: string;
  readonly agree: number;
  readonly disagree: number;
  /** Rows whose verdict is implementation-defined: neither agreeing nor disagreeing. */
  readonly ambiguous: number;
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
  for (const policy of cluster.clusterPolicies ?? []) {
    const result = validateClusterPolicy(policy);
    if (!result.ok)
      throw new InputError(
        input.file,
        clusterPolicyKey(policy).replace('/', ' '),
        result.errors.map((e) => `${e.field}: ${e.message}`).join('; '),
      );
  }
}

/**
 * Every row in every family it holds for: pod-to-pod rows by the engine, rows through a
 * Service by each ready backend (the policies apply after the address translation). A
 * Service's row is allowed when every backend allows it; backends that disagree make it
 * a disagreement, since the scenario states a verdict only when all agree.
 */
function evaluateScenario(scenario: Scenario): ScenarioResult {
  const dualStack = scenario.families.length > 1;
  const results = scenario.families.flatMap((view): ResultRow[] => {
    const engine = new PolicyEngine(view.cluster);
    const family = dualStack ? { family: view.family } : {};
    const podRows = view.expectations.map((row): ResultRow => {
      const verdict = engine.verdict(row);
      return {
        from: podKey(row.from),
        to: podKey(row.to),
        ...family,
        port: row.port,
        protocol: row.protocol,
        expected: row.allowed,
        allowed: verdict.allowed,
        loopback: row.loopback,
        explanation: verdict.explanation,
        ...(verdict.ambiguous === undefined ? {} : { ambiguous: verdict.ambiguous }),
      };
    });
    const serviceRows = view.serviceExpectations.map((row): ResultRow => {
      const backends = serviceRowVerdicts(engine, view, scenario.services, row);
      const allowed = backends.every((b) => b.verdict.allowed);
      // The backend whose verdict explains the row: one that disagrees with the rest, if any.
      const telling = backends.find((b) => b.verdict.allowed !== allowed) ?? backends[0];
      const unsure = backends.find((b) => b.verdict.ambiguous !== undefined)?.verdict.ambiguous;
      const agreeing = backends.every((b) => b.verdict.allowed === allowed);
      return {
        from: podKey(row.from),
        to: `svc ${row.service.namespace}/${row.service.name}`,
        backends: backends.map((b) => ({
          pod: podKey(b.pod),
          port: b.port,
          allowed: b.verdict.allowed,
        })),
        ...family,
        port: row.port,
        protocol: row.protocol,
        expected: row.allowed,
        ...(agreeing ? {} : { backendsDisagree: true as const }),
        allowed,
        loopback: row.loopback,
        explanation: telling?.verdict.explanation ?? NO_EXPLANATION,
        ...(unsure === undefined ? {} : { ambiguous: unsure }),
      };
    });
    return [...podRows, ...serviceRows];
  });
  const ambiguous = results.filter((r) => r.ambiguous !== undefined).length;
  const agree = results.filter(agrees).length;
  return {
    name: scenario.name,
    agree,
    disagree: results.length - agree - ambiguous,
    ambiguous,
    results,
  };
}

function agrees(r: ResultRow): boolean {
  return r.ambiguous === undefined && r.backendsDisagree === undefined && r.expected === r.allowed;
}

const NO_SIDE = { isolated: false, policies: [], allowedBy: [], allowed: true };
const NO_EXPLANATION: Explanation = { egress: NO_SIDE, ingress: NO_SIDE };

function describePods(pod: Pod): string {
  const labels = formatLabels(pod.labels);
  return `pods in namespace ${pod.namespace} with labels ${labels || '(none)'}`;
}

function scenarioTable(result: ScenarioResult, scenario: Scenario): string {
  const pods = new Map(scenario.cluster.pods.map((p) => [podKey(p), p]));
  const rows = result.results.map((r) => {
    const from = pods.get(r.from);
    const to = pods.get(r.to);
    const verb =
      r.ambiguous !== undefined ? 'may or may not reach' : r.allowed ? 'can reach' : 'cannot reach';
    const sentence = `${from ? describePods(from) : r.from} ${verb} ${to ? describePods(to) : r.to} on port ${r.port}/${r.protocol}`;
    const mark = r.ambiguous !== undefined ? '?' : agrees(r) ? '✓' : '✗';
    return [
      mark,
      `${r.from} → ${r.to}${r.family === undefined ? '' : ` (IPv${r.family})`}`,
      `${r.port}/${r.protocol}`,
      r.expected ? 'allow' : 'deny',
      r.ambiguous !== undefined
        ? 'ambiguous'
        : r.backendsDisagree
          ? 'backends differ'
          : r.allowed
            ? 'allow'
            : 'deny',
      sentence.charAt(0).toUpperCase() + sentence.slice(1),
    ];
  });
  const heading = `${result.name}: ${result.agree} agree, ${result.disagree} disagree${result.ambiguous > 0 ? `, ${result.ambiguous} ambiguous` : ''}\n`;
  return (
    heading + renderTable(['', 'CONNECTION', 'PORT', 'EXPECTED', 'POLICIES SAY', 'MEANING'], rows)
  );
}

/** Why each disagreeing or ambiguous row is what it is. */
function disagreementDetails(result: ScenarioResult): string {
  return result.results
    .filter((r) => !agrees(r))
    .map((r) => {
      const backends = r.backends
        ? ` Through its Service: ${r.backends.map((b) => `${b.pod}:${b.port} ${b.allowed ? 'allows' : 'denies'}`).join(', ')}.`
        : '';
      return `  ${r.ambiguous !== undefined ? '?' : '✗'} ${r.from} → ${r.to} ${r.port}/${r.protocol}${r.family === undefined ? '' : ` over IPv${r.family}`}: ${describeVerdict({ allowed: r.allowed, explanation: r.explanation, ...(r.ambiguous === undefined ? {} : { ambiguous: r.ambiguous }) })}${backends}\n`;
    })
    .join('');
}

interface MatrixTable {
  readonly port: number;
  readonly protocol: Protocol;
  readonly from: readonly string[];
  readonly to: readonly string[];
  /** allowed[i][j]: from[i] may reach to[j]. */
  readonly allowed: readonly (readonly boolean[])[];
  /** [i, j] of the cells whose answer is implementation-defined (allowed holds one answer). */
  readonly ambiguous?: readonly (readonly [number, number])[];
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
    .map(({ port, protocol }) => {
      const ambiguous: [number, number][] = [];
      const allowed = cluster.pods.map((from, i) =>
        cluster.pods.map((to, j) => {
          const verdict = engine.verdict({ from, to, port, protocol });
          if (verdict.ambiguous !== undefined) ambiguous.push([i, j]);
          return verdict.allowed;
        }),
      );
      return {
        port,
        protocol,
        from: names,
        to: names,
        allowed,
        ...(ambiguous.length > 0 ? { ambiguous } : {}),
      };
    });
}

function matrixText(name: string, tables: readonly MatrixTable[]): string {
  if (tables.length === 0)
    return `${name}: no pod declares a containerPort, so there is no matrix to show\n`;
  return tables
    .map((t) => {
      const title = `${name}, port ${t.port}/${t.protocol}: ✓ allowed, ✗ denied${t.ambiguous ? ', ? ambiguous' : ''} (row: from, column: to)\n`;
      const header = ['FROM \\ TO', ...t.to.map((_, j) => String(j + 1))];
      const unsure = new Set((t.ambiguous ?? []).map(([i, j]) => `${i},${j}`));
      const rows = t.from.map((from, i) => [
        `${i + 1} ${from}`,
        ...(t.allowed[i] ?? []).map((a, j) => (unsure.has(`${i},${j}`) ? '?' : a ? '✓' : '✗')),
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
      (o) =>
        `${i.file}: ignoring ${o} (only Namespaces, Pods, NetworkPolicies, ClusterNetworkPolicies, AdminNetworkPolicies and BaselineAdminNetworkPolicies are read)\n`,
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
  const tiers = engine.clusterPolicies.length;
  return `${cluster.name}: ${cluster.cluster.pods.length} pods in ${engine.podClasses.length} classes, ${engine.policies.length} policies${tiers > 0 ? ` and ${tiers} cluster-scoped` : ''}, ${isolated} pods isolated for ingress by NetworkPolicies (use --matrix for every connection)\n`;
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
  const ambiguous = results.reduce((n, r) => n + r.ambiguous, 0);
  const clusters: NamedCluster[] = [
    ...scenarios.map((s) => ({ name: s.name, cluster: s.cluster })),
    ...(manifests ? [manifests] : []),
  ];

  if (values.format === 'json') {
    const document = values.matrix
      ? { matrices: clusters.map((c) => ({ name: c.name, tables: matrixOf(c.cluster) })) }
      : { scenarios: results, agree, disagree, ambiguous };
    io.stdout(`${JSON.stringify(document, null, 2)}\n`);
  } else if (values.matrix) {
    io.stdout(clusters.map((c) => matrixText(c.name, matrixOf(c.cluster))).join('\n'));
  } else {
    const sections = results.map(
      (r, i) => scenarioTable(r, scenarios[i] as Scenario) + disagreementDetails(r),
    );
    if (manifests) sections.push(summaryLine(manifests));
    if (results.length > 0)
      sections.push(
        `${agree} agree, ${disagree} disagree${ambiguous > 0 ? `, ${ambiguous} ambiguous (implementation-defined)` : ''}\n`,
      );
    io.stdout(sections.join('\n'));
  }
  return disagree > 0 ? ExitCode.mismatch : ExitCode.ok;
}
