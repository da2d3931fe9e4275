import { describe, expect, it } from '@jest/globals';
import { InputError, backendsOf, mergeClusters, parseInput } from '#lumen/scenario';

const networkPolicy = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: 'deny' },
  spec: { podSelector: {} },
};

function manifests(text: string): ReturnType<typeof parseInput> & { kind: 'manifests' } {
  const input = parseInput(text, 'in.yaml');
  if (input.kind !== 'manifests') throw new Error('expected manifests');
  return input;
}

describe('Kubernetes manifests', () => {
  it('reads multi-document YAML', () => {
    const input = manifests(`apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {tenant: a}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  hostNetwork: false
  containers:
    - {name: a, ports: [{name: http, containerPort: 80}, {containerPort: 53, protocol: UDP}]}
    - {name: b, ports: [{containerPort: 9090}]}
status: {podIP: 10.0.0.5}
---
${JSON.stringify(networkPolicy)}
`);
    expect(input.cluster.pods).toEqual([
      {
        namespace: 'shop',
        name: 'web',
        labels: { app: 'web' },
        hostNetwork: false,
        ip: '10.0.0.5',
        ports: [
          { name: 'http', port: 80, protocol: 'TCP' },
          { port: 53, protocol: 'UDP' },
          { port: 9090, protocol: 'TCP' },
        ],
      },
    ]);
    expect(input.cluster.policies[0]?.metadata).toEqual({ name: 'deny', namespace: 'default' });
    expect(input.cluster.namespaces).toEqual([
      { name: 'shop', labels: { tenant: 'a', 'kubernetes.io/metadata.name': 'shop' } },
      { name: 'default', labels: { 'kubernetes.io/metadata.name': 'default' } },
    ]);
  });

  it('reads kubectl List output in JSON, and names what it ignores', () => {
    const input = manifests(
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          { apiVersion: 'v1', kind: 'PodList', items: [{ kind: 'Pod', metadata: { name: 'a' } }] },
          {
            apiVersion: 'apps/v1',
            kind: 'Deployment',
            metadata: { name: 'web', namespace: 'shop' },
          },
          networkPolicy,
        ],
      }),
    );
    expect(input.cluster.pods.map((p) => `${p.namespace}/${p.name}`)).toEqual(['default/a']);
    expect(input.cluster.policies).toHaveLength(1);
    expect(input.ignored).toEqual(['Deployment shop/web']);
  });

  it.each([
    [
      'a duplicate pod',
      'kind: Pod\nmetadata: {name: a}\n---\nkind: Pod\nmetadata: {name: a}\n',
      'duplicate pod default/a',
    ],
    [
      'a bad containerPort',
      'kind: Pod\nmetadata: {name: a}\nspec: {containers: [{ports: [{containerPort: 99999}]}]}\n',
      'Pod a: spec.containers[0].ports[0].containerPort',
    ],
    [
      'a bad protocol',
      'kind: Pod\nmetadata: {name: a}\nspec: {containers: [{ports: [{containerPort: 80, protocol: tcp}]}]}\n',
      'protocol',
    ],
  ])('rejects %s with a message naming the object', (_name, text, message) => {
    expect(() => parseInput(text, 'in.yaml')).toThrow(InputError);
    expect(() => parseInput(text, 'in.yaml')).toThrow(message);
  });

  it('merges namespaces of several files, uniting their labels', () => {
    const a = manifests('kind: Namespace\nmetadata: {name: x, labels: {a: "1"}}\n').cluster;
    const b = manifests('kind: Namespace\nmetadata: {name: x, labels: {b: "2"}}\n').cluster;
    expect(mergeClusters([a, b]).namespaces).toEqual([
      { name: 'x', labels: { a: '1', b: '2', 'kubernetes.io/metadata.name': 'x' } },
    ]);
  });
});

describe('scenario files', () => {
  it('applies the documented defaults', () => {
    const input = parseInput(
      'name: s\npods: [{name: a, ports: [{containerPort: 80}]}]\nexpect: [{from: default/a, to: default/a, port: 80, allowed: true}]\n',
      's.yaml',
    );
    if (input.kind !== 'scenario') throw new Error('expected a scenario');
    expect(input.scenario.cluster.pods[0]).toEqual({
      namespace: 'default',
      name: 'a',
      labels: {},
      hostNetwork: false,
      ports: [{ port: 80, protocol: 'TCP' }],
    });
    expect(input.scenario.expectations[0]).toEqual({
      from: { namespace: 'default', name: 'a' },
      to: { namespace: 'default', name: 'a' },
      port: 80,
      protocol: 'TCP',
      allowed: true,
      loopback: false,
    });
  });

  it.each([
    ['an unknown field', 'name: s\npods: []\nflavour: x\n', 's.yaml: scenario: Unrecognized key'],
    ['an invalid IP', 'name: s\npods: [{name: a, ip: 10.0.0.999}]\n', 'scenario pods[0].ip'],
    [
      'a malformed pod reference',
      'name: s\npods: [{name: a}]\nexpect: [{from: a, to: default/a, port: 1, allowed: true}]\n',
      'scenario expect[0].from: must be "namespace/pod"',
    ],
  ])('rejects %s', (_name, text, message) => {
    expect(() => parseInput(text, 's.yaml')).toThrow(message);
  });

  // Found by the fuzzer (npm run fuzz): the YAML library throws a ReferenceError for these,
  // which the CLI would have printed as a crash with its stack.
  it.each([
    ['an alias that names no anchor', '*!', /s.yaml: document 1: YAML error: Unresolved alias/],
    [
      'an alias bomb',
      [
        'a: &a [x, x, x, x, x, x, x, x, x, x]',
        ...Array.from(
          { length: 9 },
          (_, i) =>
            `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10)
              .fill(`*${String.fromCharCode(97 + i)}`)
              .join(', ')}]`,
        ),
      ].join('\n'),
      /s.yaml: document 1: YAML error: Excessive alias count/,
    ],
  ])('refuses %s as invalid input, naming the file', (_name, text, message) => {
    let thrown: unknown;
    try {
      parseInput(text, 's.yaml');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InputError);
    expect((thrown as Error).message).toMatch(message);
  });
});

describe('scenario files with Services and dual-stack pods', () => {
  const nginx = (spec: string): string =>
    `services: [{apiVersion: v1, kind: Service, metadata: {name: nginx}, spec: ${spec}}]\n`;
  const base = [
    'name: s',
    'pods:',
    '  - {name: web-1, labels: {run: nginx}, ports: [{name: http, containerPort: 8080}]}',
    '  - {name: web-2, labels: {run: nginx}, ports: [{containerPort: 8080}]}',
    '  - {name: client}',
    '',
  ].join('\n');
  const row = (extra: string): string =>
    `expect: [{from: default/client, service: default/nginx, port: 80, allowed: true${extra}}]\n`;

  it('reads a Service and its row, whose backends are the selected pods on the target port', () => {
    const input = parseInput(
      base +
        nginx(
          '{selector: {run: nginx}, clusterIP: 10.96.0.10, ports: [{port: 80, targetPort: 8080}]}',
        ) +
        row(''),
      's.yaml',
    );
    if (input.kind !== 'scenario') throw new Error('expected a scenario');
    const [service] = input.scenario.services;
    expect(service).toEqual({
      namespace: 'default',
      name: 'nginx',
      selector: { run: 'nginx' },
      clusterIPs: ['10.96.0.10'],
      headless: false,
      ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }],
    });
    expect(input.scenario.serviceExpectations).toEqual([
      {
        from: { namespace: 'default', name: 'client' },
        service: { namespace: 'default', name: 'nginx' },
        port: 80,
        protocol: 'TCP',
        allowed: true,
        loopback: false,
      },
    ]);
    expect(input.scenario.expectations).toEqual([]);
    expect(
      backendsOf(service!, 80, 'TCP', input.scenario.cluster.pods)?.map((b) => [
        b.pod.name,
        b.port,
      ]),
    ).toEqual([
      ['web-1', 8080],
      ['web-2', 8080],
    ]);
  });

  it('reaches a named target port only on the pods that declare it', () => {
    const input = parseInput(
      base + nginx('{selector: {run: nginx}, ports: [{port: 80, targetPort: http}]}') + row(''),
      's.yaml',
    );
    if (input.kind !== 'scenario') throw new Error('expected a scenario');
    expect(
      backendsOf(input.scenario.services[0]!, 80, 'TCP', input.scenario.cluster.pods)?.map((b) => [
        b.pod.name,
        b.port,
      ]),
    ).toEqual([['web-1', 8080]]);
  });

  it.each([
    ['a row to an unknown Service', base + row(''), 'no service default/nginx in the scenario'],
    [
      'a row to a port the Service lacks',
      base + nginx('{selector: {run: nginx}, ports: [{port: 443}]}') + row(''),
      'service default/nginx has no port 80/TCP',
    ],
    [
      'a Service whose selector selects no pod',
      base + nginx('{selector: {run: other}, ports: [{port: 80}]}') + row(''),
      'has no backend for port 80/TCP',
    ],
    [
      'a headless Service',
      base + nginx('{selector: {run: nginx}, clusterIP: None, ports: [{port: 80}]}') + row(''),
      'is headless (clusterIP: None)',
    ],
    [
      'an object that is not a Service',
      base +
        'services: [{apiVersion: v1, kind: Pod, metadata: {name: x}, spec: {ports: [{port: 1}]}}]\n',
      'services[0] (Pod x): kind: must be kind Service',
    ],
    [
      'a row with both a pod and a Service',
      base +
        nginx('{selector: {run: nginx}, ports: [{port: 80}]}') +
        'expect: [{from: default/client, to: default/web-1, service: default/nginx, port: 80, allowed: true}]\n',
      'give to (a pod) or service (a Service), exactly one',
    ],
    [
      'a pod with ip and ips',
      "name: s\npods: [{name: a, ip: 10.0.0.1, ips: [10.0.0.1, 'fd00::1']}]\n",
      'give ip or ips, not both',
    ],
    [
      'a dual-stack pod with two IPv4 addresses',
      'name: s\npods: [{name: a, ips: [10.0.0.1, 10.0.0.2]}]\n',
      'a dual-stack pod has one address of each family',
    ],
    [
      'a row over IPv6 from a pod without an IPv6 address',
      "name: s\npods: [{name: a, ip: 10.0.0.1}, {name: b, ips: [10.0.0.2, 'fd00::2']}]\n" +
        'expect: [{from: default/a, to: default/b, port: 80, allowed: true, family: 6}]\n',
      'a connection over IPv6 needs default/a and default/b to have IPv6 addresses',
    ],
  ])('refuses %s, naming it', (_name, text, message) => {
    expect(() => parseInput(text, 's.yaml')).toThrow(message);
  });

  it('puts each row in the families both its ends have, or the one it names', () => {
    const input = parseInput(
      [
        'name: s',
        'pods:',
        "  - {name: a, ips: [10.0.0.1, 'fd00::1']}",
        "  - {name: b, ips: [10.0.0.2, 'fd00::2']}",
        '  - {name: c, ip: 10.0.0.3}',
        'expect:',
        '  - {from: default/a, to: default/b, port: 80, allowed: true}',
        '  - {from: default/a, to: default/b, port: 81, allowed: true, family: 6}',
        '  - {from: default/a, to: default/c, port: 82, allowed: true}',
        '',
      ].join('\n'),
      's.yaml',
    );
    if (input.kind !== 'scenario') throw new Error('expected a scenario');
    const ports = (family: number) =>
      input.scenario.families.find((f) => f.family === family)?.expectations.map((e) => e.port);
    expect(input.scenario.families.map((f) => f.family)).toEqual([4, 6]);
    expect(ports(4)).toEqual([80, 82]);
    expect(ports(6)).toEqual([80, 81]);
    // Each family's view puts every dual-stack pod at its address of that family.
    const v6 = input.scenario.families[1]!.cluster.pods.map((p) => p.ip);
    expect(v6).toEqual(['fd00::1', 'fd00::2', undefined]);
    // The scenario's own cluster is the primary family's: the first address.
    expect(input.scenario.cluster.pods[0]).toMatchObject({
      ip: '10.0.0.1',
      ips: ['10.0.0.1', 'fd00::1'],
    });
  });
});
