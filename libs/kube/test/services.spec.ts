import { describe, expect, it } from '@jest/globals';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { endpointSliceFrom, serviceFrom, serviceFrontends } from '#lumen/kube';

const service = (spec: V1Service['spec'], name = 'api'): V1Service => ({
  metadata: { name, namespace: 'shop' },
  spec,
});

const slice = (
  pods: { name: string; ready?: boolean; kind?: string }[],
  ports: V1EndpointSlice['ports'],
  service = 'api',
): V1EndpointSlice => ({
  addressType: 'IPv4',
  metadata: {
    name: `${service}-x1`,
    namespace: 'shop',
    labels: { 'kubernetes.io/service-name': service },
  },
  ports,
  endpoints: pods.map((p, i) => ({
    addresses: [`10.0.0.${i + 1}`],
    ...(p.ready === undefined ? {} : { conditions: { ready: p.ready } }),
    targetRef: { kind: p.kind ?? 'Pod', name: p.name, namespace: 'shop' },
  })),
});

describe('serviceFrom', () => {
  it.each([
    ['headless', { clusterIP: 'None', ports: [{ port: 80 }] }],
    ['ExternalName', { type: 'ExternalName', externalName: 'example.org', ports: [{ port: 80 }] }],
  ])('leaves out a %s Service, which has no ClusterIP to probe', (_, spec) => {
    expect(serviceFrom(service(spec))).toBeUndefined();
  });

  it('reads the ClusterIPs of both families and each port, TCP when unsaid', () => {
    expect(
      serviceFrom(
        service({
          clusterIP: '10.96.0.12',
          clusterIPs: ['10.96.0.12', 'fd00:10:96::c'],
          ports: [
            { name: 'http', port: 80 },
            { name: 'dns', port: 53, protocol: 'UDP' },
          ],
        }),
      ),
    ).toEqual({
      namespace: 'shop',
      name: 'api',
      clusterIPs: ['10.96.0.12', 'fd00:10:96::c'],
      ports: [
        { name: 'http', port: 80, protocol: 'TCP' },
        { name: 'dns', port: 53, protocol: 'UDP' },
      ],
    });
  });

  it('takes clusterIP alone when clusterIPs is unset', () => {
    expect(
      serviceFrom(service({ clusterIP: '10.96.0.7', ports: [{ port: 80 }] }))?.clusterIPs,
    ).toEqual(['10.96.0.7']);
  });
});

describe('endpointSliceFrom', () => {
  it('lists the ready pods (ready unset counts as ready), never other kinds or unready pods', () => {
    expect(
      endpointSliceFrom(
        slice(
          [
            { name: 'api-1' },
            { name: 'api-2', ready: true },
            { name: 'api-3', ready: false },
            { name: 'vm-1', kind: 'VirtualMachine' },
          ],
          [{ name: 'http', port: 8080, protocol: 'TCP' }],
        ),
      ),
    ).toEqual({
      namespace: 'shop',
      service: 'api',
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      pods: ['api-1', 'api-2'],
    });
  });

  it('leaves out a slice without its Service label', () => {
    const unlabelled = slice([{ name: 'api-1' }], []);
    unlabelled.metadata!.labels = {};
    expect(endpointSliceFrom(unlabelled)).toBeUndefined();
  });
});

describe('serviceFrontends', () => {
  const api = serviceFrom(
    service({
      clusterIP: '10.96.0.12',
      ports: [
        { name: 'http', port: 80 },
        { name: 'admin', port: 9000 },
      ],
    }),
  )!;

  it('joins each Service port to its slices by port name, with the port each backend is reached on', () => {
    const slices = [
      endpointSliceFrom(
        slice(
          [{ name: 'api-1' }, { name: 'api-2' }],
          [{ name: 'http', port: 8080, protocol: 'TCP' }],
        ),
      )!,
      // A second slice repeats api-2 (slices may overlap while they are rebalanced).
      endpointSliceFrom(
        slice(
          [{ name: 'api-2' }, { name: 'api-3' }],
          [{ name: 'http', port: 8080, protocol: 'TCP' }],
        ),
      )!,
    ];
    expect(serviceFrontends([api], slices)).toEqual([
      {
        namespace: 'shop',
        name: 'api',
        clusterIPs: ['10.96.0.12'],
        port: 80,
        protocol: 'TCP',
        backends: ['api-1', 'api-2', 'api-3'].map((name) => ({
          pod: { namespace: 'shop', name },
          port: 8080,
        })),
      },
    ]);
  });

  it('leaves out a Service without a ClusterIP yet, and slices of another Service', () => {
    const pending = { ...api, clusterIPs: [] };
    const other = endpointSliceFrom(
      slice([{ name: 'web-1' }], [{ name: 'http', port: 80, protocol: 'TCP' }], 'web'),
    )!;
    expect(serviceFrontends([pending], [other])).toEqual([]);
    expect(serviceFrontends([api], [other])).toEqual([]);
  });
});
