import { describe, expect, it } from '@jest/globals';
import { InputError, mergeClusters, parseInput } from '#lumen/scenario';

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
