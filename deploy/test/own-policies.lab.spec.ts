/**
 * Lumen verifies its own NetworkPolicies: the chart's rendered policies, with pods shaped
 * like its components (labels, named ports) and a monitoring, an ingress and a tenant
 * namespace around them, go into a lab, and the pipeline probes them like any others.
 */
import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { PolicyEngine } from '#lumen/policy';
import { TEST_LAB_ROOT, renderChart, repositoryRoot } from '#lumen/testing';
import { buildReport } from '../../cli/src/pipeline/report.js';
import { withLabPipeline } from '../../cli/src/pipeline/lab-verify.js';

const component = (name: string, port: number, extra: object[] = []): object => ({
  namespace: 'lumen',
  name,
  labels: {
    'app.kubernetes.io/name': 'lumen',
    'app.kubernetes.io/instance': 'lumen',
    'app.kubernetes.io/component': name,
  },
  ports: [
    { name: name === 'nats' ? 'client' : 'http', containerPort: port, protocol: 'TCP' },
    ...extra,
  ],
});

describe('Lumen’s own NetworkPolicies', () => {
  it('are enforced as the chart means them, and Lumen’s own plan probes them', async () => {
    const policies = (await renderChart(repositoryRoot)).filter((o) => o.kind === 'NetworkPolicy');
    expect(policies.length).toBeGreaterThanOrEqual(7);
    const scenario = {
      name: 'lumen-own-policies',
      description: 'The Helm chart’s NetworkPolicies around pods shaped like Lumen’s.',
      namespaces: [
        { name: 'lumen' },
        { name: 'monitoring' },
        { name: 'ingress-nginx' },
        { name: 'tenant' },
        { name: 'kube-system' },
        { name: 'default' },
      ],
      pods: [
        component('planner', 8081),
        component('scheduler', 8082),
        component('prober', 8083),
        component('reporter', 8084),
        component('nats', 4222, [{ name: 'cluster', containerPort: 6222, protocol: 'TCP' }]),
        { namespace: 'monitoring', name: 'prometheus', labels: { app: 'prometheus' } },
        { namespace: 'ingress-nginx', name: 'controller', labels: { app: 'ingress' } },
        {
          namespace: 'tenant',
          name: 'app',
          labels: { app: 'shop' },
          ports: [{ containerPort: 80, protocol: 'TCP' }],
        },
        {
          namespace: 'kube-system',
          name: 'coredns',
          labels: { 'k8s-app': 'kube-dns' },
          ports: [{ containerPort: 53, protocol: 'TCP' }],
        },
        // The API server's endpoint, on its Service port and on kubeadm's endpoint port.
        {
          namespace: 'default',
          name: 'apiserver',
          labels: { component: 'kube-apiserver' },
          // An address, since the chart reaches the API server by ipBlock, not by labels.
          ip: '10.244.1.250',
          ports: [
            { containerPort: 443, protocol: 'TCP' },
            { containerPort: 6443, protocol: 'TCP' },
          ],
        },
        {
          namespace: 'tenant',
          name: 'webhook',
          labels: { app: 'webhook' },
          ip: '10.244.2.250',
          ports: [
            { containerPort: 443, protocol: 'TCP' },
            { containerPort: 80, protocol: 'TCP' },
          ],
        },
      ],
      policies,
      expect: [
        {
          from: 'monitoring/prometheus',
          to: 'lumen/reporter',
          port: 8084,
          protocol: 'TCP',
          allowed: true,
        },
        {
          from: 'monitoring/prometheus',
          to: 'lumen/prober',
          port: 8083,
          protocol: 'TCP',
          allowed: true,
        },
        {
          from: 'ingress-nginx/controller',
          to: 'lumen/reporter',
          port: 8084,
          protocol: 'TCP',
          allowed: true,
        },
        {
          from: 'ingress-nginx/controller',
          to: 'lumen/planner',
          port: 8081,
          protocol: 'TCP',
          allowed: false,
        },
        { from: 'tenant/app', to: 'lumen/reporter', port: 8084, protocol: 'TCP', allowed: false },
        { from: 'tenant/app', to: 'lumen/nats', port: 4222, protocol: 'TCP', allowed: false },
        // What Lumen needs under its own default deny: every component to NATS and DNS,
        // those that read the API to its endpoint on either port, the reporter to webhooks.
        ...['planner', 'scheduler', 'prober', 'reporter'].flatMap((c) => [
          { from: `lumen/${c}`, to: 'lumen/nats', port: 4222, protocol: 'TCP', allowed: true },
          {
            from: `lumen/${c}`,
            to: 'kube-system/coredns',
            port: 53,
            protocol: 'TCP',
            allowed: true,
          },
          {
            from: `lumen/${c}`,
            to: 'default/apiserver',
            port: 443,
            protocol: 'TCP',
            allowed: true,
          },
          {
            from: `lumen/${c}`,
            to: 'default/apiserver',
            port: 6443,
            protocol: 'TCP',
            allowed: true,
          },
        ]),
        { from: 'lumen/reporter', to: 'tenant/webhook', port: 443, protocol: 'TCP', allowed: true },
        { from: 'lumen/reporter', to: 'tenant/webhook', port: 80, protocol: 'TCP', allowed: true },
        // and nothing more: a prober's egress is NATS, DNS and the API's ports only (to any
        // address while networkPolicies.apiServerCidrs is empty).
        { from: 'lumen/prober', to: 'tenant/webhook', port: 80, protocol: 'TCP', allowed: false },
        // Cluster routes are for NATS servers only.
        { from: 'lumen/prober', to: 'lumen/nats', port: 6222, protocol: 'TCP', allowed: false },
        { from: 'lumen/prober', to: 'tenant/app', port: 80, protocol: 'TCP', allowed: false },
        {
          from: 'lumen/planner',
          to: 'kube-system/coredns',
          port: 53,
          protocol: 'TCP',
          allowed: true,
        },
      ],
    };
    const scratch = mkdtempSync(join(tmpdir(), 'lumen-own-'));
    const file = join(scratch, 'lumen-own-policies.yaml');
    writeFileSync(file, stringify(scenario));
    await withLabPipeline(
      { file, labName: 'own-policies', labRoot: TEST_LAB_ROOT, scratch },
      async (pipeline, loaded) => {
        // The policies say what the chart means.
        const engine = new PolicyEngine(loaded.cluster);
        for (const row of loaded.expectations)
          expect([
            `${row.from.name}→${row.to.name}:${row.port}`,
            engine.verdict(row).allowed,
          ]).toEqual([`${row.from.name}→${row.to.name}:${row.port}`, row.allowed]);
        // Every case planned from them passes in the lab, and the rules of Lumen's own
        // policies are among them.
        const report = buildReport(pipeline.planner.plan!.cases, pipeline.finalOutcomes);
        expect(report.cases.filter((c) => c.outcome !== 'pass')).toEqual([]);
        const own = report.cases.filter((c) => c.policies.some((p) => p.startsWith('lumen/')));
        expect(own.length).toBeGreaterThanOrEqual(10);
        expect(own.some((c) => c.expected === 'allow')).toBe(true);
        expect(own.some((c) => c.expected === 'deny')).toBe(true);
        process.stdout.write(
          `own policies: ${policies.length} policies, ${report.cases.length} cases (${own.length} under Lumen's policies), all pass\n`,
        );
      },
    );
  });
});
