import { describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadScenarioFile, scenarioFiles } from '#lumen/scenario';
import { conformanceScenarioFiles, repositoryRoot } from '#lumen/testing';
import { main } from '../src/main.js';

async function lumen(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

const scratch = mkdtempSync(join(tmpdir(), 'lumen-evaluate-'));
function file(name: string, text: string): string {
  const path = join(scratch, name);
  writeFileSync(path, text);
  return path;
}

const recipe07 = conformanceScenarioFiles().find((f) =>
  f.includes('07-allow-traffic-from-some-pods'),
)!;

const wrongExpectation = file(
  'wrong.yaml',
  `name: wrong
pods:
  - {namespace: default, name: web, labels: {app: web}}
  - {namespace: default, name: client}
policies:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: deny}
    spec: {podSelector: {}, ingress: []}
expect:
  - {from: default/client, to: default/web, port: 80, protocol: TCP, allowed: true}
  - {from: default/web, to: default/client, port: 80, protocol: TCP, allowed: false}
`,
);

describe('lumen evaluate', () => {
  it('agrees with every conformance scenario and exits 0', async () => {
    const result = await lumen('evaluate', '--format', 'json', ...conformanceScenarioFiles());
    expect(result.code).toBe(0);
    const document = JSON.parse(result.stdout) as {
      agree: number;
      disagree: number;
      scenarios: unknown[];
    };
    expect(document.disagree).toBe(0);
    expect(document.scenarios).toHaveLength(conformanceScenarioFiles().length);
    expect(document.agree).toBeGreaterThan(80);
  });

  it('prints the documented JSON shape', async () => {
    const result = await lumen('evaluate', '--format', 'json', recipe07);
    const document = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(Object.keys(document)).toEqual(['scenarios', 'agree', 'disagree', 'ambiguous']);
    expect(document).toMatchObject({ agree: 4, disagree: 0, ambiguous: 0 });
    const [scenario] = document.scenarios as Record<string, unknown>[];
    expect(Object.keys(scenario!)).toEqual(['name', 'agree', 'disagree', 'ambiguous', 'results']);
    const [row] = scenario!.results as Record<string, unknown>[];
    expect(row).toEqual({
      from: 'other/monitoring',
      to: 'default/web',
      port: 80,
      protocol: 'TCP',
      expected: true,
      allowed: true,
      loopback: false,
      explanation: {
        egress: { isolated: false, policies: [], allowedBy: [], allowed: true },
        ingress: {
          isolated: true,
          policies: ['default/web-allow-all-ns-monitoring'],
          allowedBy: [
            { policy: 'default/web-allow-all-ns-monitoring', direction: 'ingress', index: 0 },
          ],
          allowed: true,
        },
      },
    });
  });

  it('marks disagreements with ✗, explains them and exits 1', async () => {
    const result = await lumen('evaluate', wrongExpectation);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('wrong: 1 agree, 1 disagree');
    expect(result.stdout).toMatch(/✗ +default\/client → default\/web/);
    expect(result.stdout).toContain('ingress: isolated by default/deny and no rule matched');
    expect(result.stdout).toMatch(/✓ +default\/web → default\/client/);
  });

  it('prints a pod x pod matrix for plain manifests', async () => {
    const result = await lumen(
      'evaluate',
      '--matrix',
      join(repositoryRoot, 'examples', 'shop.yaml'),
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('port 5432/TCP');
    const dbRow = result.stdout.split('\n').filter((l) => l.startsWith('1 shop/frontend-7d9f'))[0];
    expect(dbRow?.split(/\s+/).slice(2)).toEqual(['✗', '✓', '✓']);
  });

  it('matrix JSON says who may reach whom', async () => {
    const result = await lumen(
      'evaluate',
      '--matrix',
      '--format',
      'json',
      join(repositoryRoot, 'examples', 'shop.yaml'),
    );
    const document = JSON.parse(result.stdout) as {
      matrices: {
        tables: { port: number; from: string[]; to: string[]; allowed: boolean[][] }[];
      }[];
    };
    const table = document.matrices[0]!.tables.find((t) => t.port === 5432)!;
    const i = table.from.indexOf('monitoring/prometheus-0');
    const j = table.to.indexOf('shop/db-0');
    expect(table.allowed[i]![j]).toBe(false);
    expect(table.allowed[table.from.indexOf('shop/frontend-7d9f')]![j]).toBe(true);
  });

  it.each([
    ['a missing file', () => join(scratch, 'nope.yaml'), 'nope.yaml: file: no such file'],
    ['broken YAML', () => file('broken.yaml', 'pods: [\n'), 'broken.yaml: document 1: YAML error'],
    [
      'an unknown pod in expect',
      () =>
        file(
          'ghost.yaml',
          'name: g\npods: [{name: a}]\nexpect: [{from: default/a, to: default/ghost, port: 80, allowed: true}]\n',
        ),
      'ghost.yaml: scenario g expect[0]: no pod default/ghost',
    ],
    [
      'a bad port in a scenario pod',
      () => file('port.yaml', 'name: p\npods: [{name: a, ports: [{containerPort: 0}]}]\n'),
      'port.yaml: scenario pods[0].ports[0].containerPort',
    ],
    [
      'an invalid policy',
      () =>
        file(
          'policy.yaml',
          'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: bad, namespace: prod}\nspec:\n  podSelector: {}\n  ingress: [{ports: [{port: 80, endPort: 10}]}]\n',
        ),
      'policy.yaml: NetworkPolicy prod/bad: spec.ingress[0].ports[0].endPort: 10 is less than port 80',
    ],
    [
      'a pod without a name',
      () => file('anon.yaml', 'apiVersion: v1\nkind: Pod\nmetadata: {namespace: x}\n'),
      'anon.yaml: Pod x/#0: metadata.name is required',
    ],
  ])('exits 2 on %s, naming the file and the object', async (_name, path, message) => {
    const result = await lumen('evaluate', path());
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stdout).toBe('');
  });

  it.each([
    [['evaluate']],
    [['evaluate', '--format', 'xml', recipe07]],
    [['evaluate', '--bogus', recipe07]],
    [['frobnicate']],
  ])('exits 2 on bad usage %j', async (argv) => {
    const result = await lumen(...argv);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/Usage: lumen/);
  });

  it('runs as the real `lumen` bin from the repository root', async () => {
    const { stdout } = await promisify(execFile)('npx', ['lumen', 'evaluate', recipe07], {
      cwd: repositoryRoot,
    });
    expect(stdout).toContain(
      '07-allow-traffic-from-some-pods-in-another-namespace: 4 agree, 0 disagree',
    );
  });
});

describe('lumen evaluate with the cluster-scoped tiers', () => {
  const tierScenarios = ['tenant-isolation-cnp.yaml', 'tenant-isolation-anp.yaml'].map((f) =>
    join(repositoryRoot, 'examples', 'tiers', f),
  );

  it('agrees with the tier scenarios of the repository (v1alpha2 and v1alpha1)', async () => {
    const result = await lumen('evaluate', '--format', 'json', ...tierScenarios);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const document = JSON.parse(result.stdout) as { agree: number; disagree: number };
    expect(document).toMatchObject({ agree: 30, disagree: 0 });
  });

  it('agrees with every state of the upstream ClusterNetworkPolicy conformance tests', async () => {
    const states = scenarioFiles(join(repositoryRoot, 'examples', 'tiers', 'upstream'));
    const rows = states.reduce((n, f) => n + loadScenarioFile(f).expectations.length, 0);
    expect(states).toHaveLength(13);
    const result = await lumen('evaluate', '--format', 'json', ...states);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const document = JSON.parse(result.stdout) as { agree: number; disagree: number };
    expect(document).toMatchObject({ agree: rows, disagree: 0 });
    expect(rows).toBe(102);
  });

  it('checks rows through a Service by every backend, and dual-stack rows in each family', async () => {
    const files = [
      join(repositoryRoot, 'examples', 'services', 'seed-access-nginx-service.yaml'),
      join(repositoryRoot, 'examples', 'dual-stack', 'ipblock-per-family.yaml'),
    ];
    const result = await lumen('evaluate', '--format', 'json', ...files);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const document = JSON.parse(result.stdout) as {
      agree: number;
      disagree: number;
      scenarios: { results: { to: string; family?: number; backends?: { pod: string }[] }[] }[];
    };
    // 5 rows through and beside the Service; 4 dual-stack rows, two of them in both families.
    expect(document).toMatchObject({ agree: 11, disagree: 0 });
    const [service, dual] = document.scenarios;
    expect(service?.results.find((r) => r.to === 'svc default/nginx')?.backends).toEqual([
      { pod: 'default/nginx-1', port: 80, allowed: false },
      { pod: 'default/nginx-2', port: 80, allowed: false },
    ]);
    expect(dual?.results.map((r) => r.family)).toEqual([4, 4, 4, 6, 6, 6]);
    const table = await lumen('evaluate', ...files);
    expect(table.stdout).toContain('✓  default/client → default/web (IPv6)');
  });

  it('says a Service row disagrees when its backends decide differently', async () => {
    const split = file(
      'split.yaml',
      `name: split
pods:
  - {name: web-1, labels: {app: web, tier: open}, ports: [{containerPort: 80}]}
  - {name: web-2, labels: {app: web}, ports: [{containerPort: 80}]}
  - {name: client}
services:
  - {apiVersion: v1, kind: Service, metadata: {name: web}, spec: {selector: {app: web}, ports: [{port: 80}]}}
policies:
  - apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: closed}
    spec: {podSelector: {matchExpressions: [{key: tier, operator: DoesNotExist}]}, ingress: []}
expect:
  - {from: default/client, service: default/web, port: 80, allowed: true}
`,
    );
    const result = await lumen('evaluate', split);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('backends differ');
    expect(result.stdout).toContain(
      'Through its Service: default/web-1:80 allows, default/web-2:80 denies.',
    );
  });

  it('explains which tier, policy, priority, rule and action decided', async () => {
    const result = await lumen('evaluate', '--format', 'json', tierScenarios[0]!);
    const [scenario] = (JSON.parse(result.stdout) as { scenarios: { results: unknown[] }[] })
      .scenarios;
    expect(scenario!.results[2]).toMatchObject({
      from: 'tenant-b/web',
      to: 'tenant-a/web',
      allowed: false,
      explanation: {
        ingress: {
          isolated: true,
          tier: 'Admin',
          decidedBy: {
            tier: 'Admin',
            policy: 'ClusterNetworkPolicy/isolate-tenant-a',
            priority: 20,
            index: 1,
            name: 'everyone-else',
            action: 'Deny',
          },
        },
      },
    });
  });

  it('refuses an object of a kind it does not read, naming it, instead of reading it as a NetworkPolicy', async () => {
    const unknown = file(
      'cilium.yaml',
      `name: cilium
pods: [{namespace: default, name: web}]
policies:
  - apiVersion: cilium.io/v2
    kind: CiliumNetworkPolicy
    metadata: {name: l7, namespace: default}
    spec: {endpointSelector: {}}
`,
    );
    const result = await lumen('evaluate', unknown);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('CiliumNetworkPolicy default/l7');
    expect(result.stderr).toContain('kind "CiliumNetworkPolicy" is not a policy kind Lumen reads');
  });

  it('refuses an invalid ClusterNetworkPolicy with the field path, as the CRD would', async () => {
    const invalid = file(
      'invalid-cnp.yaml',
      `name: invalid-cnp
pods: [{namespace: default, name: web}]
policies:
  - apiVersion: policy.networking.k8s.io/v1alpha2
    kind: ClusterNetworkPolicy
    metadata: {name: egress-udp}
    spec:
      tier: Admin
      priority: 1001
      subject: {namespaces: {}}
      egress:
        - action: Allow
          to: [{networks: [10.0.0.0/33]}]
`,
    );
    const result = await lumen('evaluate', invalid);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('ClusterNetworkPolicy egress-udp');
    expect(result.stderr).toContain('spec.priority: 1001 is not an integer from 0 to 1000');
    expect(result.stderr).toContain(
      'spec.egress[0].action: unsupported value "Allow"; expected one of Accept, Deny, Pass',
    );
    expect(result.stderr).toContain('spec.egress[0].to[0].networks[0]');
  });

  it('marks a connection that equal priorities leave to the implementation with ?, not as a disagreement', async () => {
    const clash = file(
      'clash.yaml',
      `name: clash
pods:
  - {namespace: a, name: server, ports: [{containerPort: 80}]}
  - {namespace: b, name: client}
policies:
  - apiVersion: policy.networking.k8s.io/v1alpha2
    kind: ClusterNetworkPolicy
    metadata: {name: accept}
    spec: {tier: Admin, priority: 10, subject: {namespaces: {}}, ingress: [{action: Accept, from: [{namespaces: {}}]}]}
  - apiVersion: policy.networking.k8s.io/v1alpha2
    kind: ClusterNetworkPolicy
    metadata: {name: deny}
    spec: {tier: Admin, priority: 10, subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {}}]}]}
expect:
  - {from: b/client, to: a/server, port: 80, protocol: TCP, allowed: false}
`,
    );
    const result = await lumen('evaluate', clash);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('clash: 0 agree, 0 disagree, 1 ambiguous');
    expect(result.stdout).toMatch(/\? +b\/client → a\/server +80\/TCP +deny +ambiguous/);
    expect(result.stdout).toContain(
      'ambiguous: Admin tier priority 10: ClusterNetworkPolicy/accept Accepts, ClusterNetworkPolicy/deny Denys',
    );
  });

  it('reads ClusterNetworkPolicies from kubectl output (a List) beside pods', async () => {
    const manifests = file(
      'cluster.yaml',
      `apiVersion: v1
kind: List
items:
  - {apiVersion: v1, kind: Pod, metadata: {name: server, namespace: a}, spec: {containers: [{name: c, ports: [{containerPort: 80}]}]}}
  - {apiVersion: v1, kind: Pod, metadata: {name: client, namespace: b}, spec: {containers: [{name: c}]}}
  - apiVersion: policy.networking.k8s.io/v1alpha2
    kind: ClusterNetworkPolicy
    metadata: {name: deny-b}
    spec:
      tier: Admin
      priority: 5
      subject: {namespaces: {matchLabels: {kubernetes.io/metadata.name: a}}}
      ingress: [{action: Deny, from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: b}}}]}]
`,
    );
    const result = await lumen('evaluate', '--format', 'json', '--matrix', manifests);
    expect(result.stderr).toBe('');
    const { matrices } = JSON.parse(result.stdout) as {
      matrices: { tables: { from: string[]; allowed: boolean[][] }[] }[];
    };
    const table = matrices[0]!.tables[0]!;
    expect(table.from).toEqual(['a/server', 'b/client']);
    // b/client → a/server is denied by the Admin tier; everything else is allowed.
    expect(table.allowed).toEqual([
      [true, true],
      [false, true],
    ]);
  });
});
