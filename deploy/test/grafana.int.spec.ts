/**
 * The chart's Grafana dashboard (issue 18): shipped as a ConfigMap for Grafana's sidecar
 * only when asked for, its JSON valid, every query about a metric and labels Lumen's
 * services export, and every query valid PromQL by Prometheus's own promtool.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { run } from '#lumen/host';
import { exportedSeries } from '#lumen/telemetry';
import { promtool, renderChart, repositoryRoot } from '#lumen/testing';

const DASHBOARD = join(repositoryRoot, 'deploy', 'helm', 'lumen', 'dashboards', 'lumen.json');
/** Labels Prometheus (the Operator's ServiceMonitor) gives every series of a target. */
const TARGET_LABELS = ['job', 'instance', 'namespace', 'pod', 'service', 'container', 'endpoint'];
/** PromQL's words that look like metric names in an expression but are not. */
const PROMQL_WORDS = new Set([
  'sum',
  'max',
  'min',
  'avg',
  'count',
  'by',
  'without',
  'rate',
  'increase',
  'irate',
  'histogram_quantile',
  'bottomk',
  'topk',
  'label_values',
  'le',
  'on',
  'ignoring',
]);

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: { refId: string; expr: string }[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; query: string | { query: string } }[] };
}

const exported = exportedSeries();
let dashboard: Dashboard;
let shipped: string | undefined;

beforeAll(async () => {
  const objects = await renderChart(repositoryRoot, [
    '--set',
    'monitoring.grafanaDashboard.enabled=true',
    '--set',
    'monitoring.grafanaDashboard.folder=Platform',
  ]);
  const configMap = objects.find(
    (o) => o.kind === 'ConfigMap' && o.metadata.name === 'lumen-grafana-dashboard',
  ) as
    | {
        metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
        data: Record<string, string>;
      }
    | undefined;
  expect(configMap?.metadata.labels['grafana_dashboard']).toBe('1');
  expect(configMap?.metadata.annotations?.['grafana_folder']).toBe('Platform');
  shipped = configMap?.data['lumen.json'];
  dashboard = JSON.parse(shipped ?? 'null') as Dashboard;
});

/** Every PromQL expression of the dashboard: panel targets and template variables. */
function expressions(): { where: string; expr: string }[] {
  return [
    ...dashboard.panels.flatMap((p) =>
      (p.targets ?? []).map((t) => ({ where: `${p.title} ${t.refId}`, expr: t.expr })),
    ),
    ...dashboard.templating.list
      .filter((v) => typeof v.query === 'object')
      .map((v) => ({ where: `variable ${v.name}`, expr: (v.query as { query: string }).query })),
  ];
}

describe('the Grafana dashboard', () => {
  it('is shipped only when asked for', async () => {
    const objects = await renderChart(repositoryRoot);
    expect(objects.filter((o) => o.metadata.name.endsWith('grafana-dashboard'))).toEqual([]);
  });

  it('is the chart’s dashboards/lumen.json, valid JSON, every panel placed and on the chosen data source', () => {
    expect(shipped).toBe(readFileSync(DASHBOARD, 'utf8').trimEnd());
    expect(dashboard).toMatchObject({ uid: 'lumen-overview' });
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) {
      expect([p.title, p.gridPos.x + p.gridPos.w <= 24]).toEqual([p.title, true]);
      if (p.type !== 'row')
        expect([p.title, p.datasource?.uid]).toEqual([p.title, '${datasource}']);
    }
    expect(expressions().length).toBeGreaterThan(20);
  });

  it('queries only metrics, and labels, that Lumen exports', () => {
    for (const { where, expr } of expressions()) {
      const names = [...expr.matchAll(/\b[a-z_][a-z0-9_]*\b/g)]
        .map((m) => m[0])
        .filter((n) => n.startsWith('lumen_'));
      expect([where, names.length > 0]).toEqual([where, true]);
      for (const name of names)
        expect([where, name, exported.has(name)]).toEqual([where, name, true]);
      const labels = new Set([...TARGET_LABELS, ...names.flatMap((n) => exported.get(n) ?? [])]);
      const used = [
        ...[...expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',')),
        ...[...expr.matchAll(/[{,]\s*([a-z_]+)\s*=/g)].map((m) => m[1]!),
        ...[...expr.matchAll(/label_values\([^,]+,\s*([a-z_]+)\)/g)].map((m) => m[1]!),
      ].map((l) => l.trim());
      for (const label of used)
        expect([where, label, labels.has(label) || PROMQL_WORDS.has(label)]).toEqual([
          where,
          label,
          true,
        ]);
    }
  });

  it('holds only valid PromQL, by promtool', async () => {
    // Grafana's variables as Grafana would fill them, then each query as a recording rule.
    const rules = expressions()
      .filter((e) => !e.expr.startsWith('label_values('))
      .map((e, i) => ({
        record: `lumen:dashboard_query_${i}`,
        expr: e.expr.replaceAll('$__rate_interval', '5m').replaceAll('$namespace', 'lumen'),
      }));
    const file = join(mkdtempSync(join(tmpdir(), 'lumen-grafana-')), 'queries.yaml');
    writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules }] }));
    const checked = await run(promtool(repositoryRoot), ['check', 'rules', file]);
    expect([checked.code, checked.stdout + checked.stderr]).toEqual([
      0,
      expect.stringContaining(`SUCCESS: ${rules.length} rules found`),
    ]);
  });
});
