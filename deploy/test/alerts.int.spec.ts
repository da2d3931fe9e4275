/**
 * The chart's PrometheusRule, checked and run by Debian's promtool (which the bootstrap
 * takes out of the prometheus package): every alert fires on the series that would page
 * for it and stays quiet on healthy ones. The input series are Lumen's own: each metric
 * and label is looked up in the registry the services export from, with the labels
 * Prometheus adds to a scraped target. Every alert links to its section of
 * docs/runbook.md.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { exportedSeries } from '#lumen/telemetry';
import { run } from '#lumen/host';
import { promtool, renderChart, repositoryRoot } from '#lumen/testing';

const scratch = mkdtempSync(join(tmpdir(), 'lumen-alerts-'));
const NS = 'lumen';
/** Labels Prometheus (the Operator's ServiceMonitor) gives every series of a target. */
const TARGET_LABELS = ['job', 'instance', 'namespace', 'pod', 'service', 'container', 'endpoint'];
/** What the rules read that is not Lumen's: the scrape's own series and kube-state-metrics'. */
const FOREIGN_METRICS = ['up', 'kube_daemonset_status_desired_number_scheduled'];

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
let rules: Rule[] = [];
const rulesFile = join(scratch, 'rules.yaml');

/** Lumen's metrics as the services export them: name → label names. */
const exported = exportedSeries();

beforeAll(async () => {
  const objects = await renderChart(repositoryRoot, [
    '-f',
    join(repositoryRoot, 'deploy', 'test', 'values', 'monitoring.yaml'),
  ]);
  const rule = objects.find((o) => o.kind === 'PrometheusRule');
  if (!rule) throw new Error('no PrometheusRule rendered');
  const spec = rule['spec'] as { groups: { name: string; rules: Rule[] }[] };
  rules = spec.groups.flatMap((g) => g.rules);
  writeFileSync(rulesFile, stringify({ groups: spec.groups }));
});

/** A series as Prometheus stores it from one of Lumen's pods: the metric must be Lumen's. */
function series(
  metric: string,
  job: string,
  values: string,
  labels: Record<string, string> = {},
): { series: string; values: string } {
  const own = exported.get(metric);
  if (!own && !FOREIGN_METRICS.includes(metric))
    throw new Error(`${metric} is not a metric Lumen exports`);
  for (const label of Object.keys(labels))
    if (own && !own.includes(label))
      throw new Error(`${metric} has no label ${label} (it has ${own.join(', ') || 'none'})`);
  const all = { ...labels, job, namespace: NS, pod: `lumen-${job}-0`, instance: `10.0.0.1:8080` };
  const text = Object.entries(all)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',');
  return { series: `${metric}{${text}}`, values };
}

/** The alert's annotations as Prometheus would expand them for this value and these labels. */
function annotationsOf(alert: string, value: string, labels: Record<string, string> = {}) {
  // LumenDown is one rule per component: the one whose labels these are.
  const rule = rules.find(
    (r) => r.alert === alert && Object.entries(r.labels).every(([k, v]) => (labels[k] ?? v) === v),
  );
  if (!rule) throw new Error(`no alert ${alert}`);
  return Object.fromEntries(
    Object.entries(rule.annotations).map(([key, text]) => [
      key,
      text
        .replaceAll('{{ $value }}', value)
        .replace(/\{\{ \$labels\.(\w+) \}\}/g, (_m, name: string) => labels[name] ?? ''),
    ]),
  );
}

interface AlertCase {
  readonly name: string;
  readonly input: { series: string; values: string }[];
  readonly at: string;
  readonly fires: { labels: Record<string, string>; value: string }[];
}

async function promtoolTest(alert: string, cases: readonly AlertCase[]): Promise<string> {
  const file = join(scratch, `${alert}.test.yaml`);
  writeFileSync(
    file,
    stringify({
      rule_files: [rulesFile],
      evaluation_interval: '1m',
      tests: cases.map((c) => ({
        name: c.name,
        interval: '1m',
        input_series: c.input,
        alert_rule_test: [
          {
            eval_time: c.at,
            alertname: alert,
            exp_alerts: c.fires.map((f) => ({
              exp_labels: f.labels,
              exp_annotations: annotationsOf(alert, f.value, f.labels),
            })),
          },
        ],
      })),
    }),
  );
  const result = await run(promtool(repositoryRoot), ['test', 'rules', file]);
  return `${result.code}\n${result.stdout}${result.stderr}`;
}

describe('the chart’s alerts', () => {
  it('pass promtool’s check', async () => {
    const result = await run(promtool(repositoryRoot), ['check', 'rules', rulesFile]);
    expect(`${result.code} ${result.stdout}${result.stderr}`).toMatch(/^0 .*SUCCESS/s);
  });

  it('read only metrics Lumen exports, whose labels never collide with a target’s', () => {
    const used = new Set(
      rules.flatMap((r) => r.expr.match(/\b(lumen_[a-z_]+|up|kube_[a-z_]+)\b/g) ?? []),
    );
    for (const metric of used)
      expect({ metric, known: exported.has(metric) || FOREIGN_METRICS.includes(metric) }).toEqual({
        metric,
        known: true,
      });
    for (const [metric, labels] of exported)
      expect({ metric, colliding: labels.filter((l) => TARGET_LABELS.includes(l)) }).toEqual({
        metric,
        colliding: [],
      });
  });

  it('each link to their own section of docs/runbook.md', () => {
    const runbook = readFileSync(join(repositoryRoot, 'docs', 'runbook.md'), 'utf8');
    const anchors = new Set(
      [...runbook.matchAll(/^## (\w+)/gm)].map((m) => (m[1] ?? '').toLowerCase()),
    );
    for (const rule of rules) {
      expect(rule.annotations['runbook_url']).toBe(
        `https://github.com/lumen-dev/lumen/blob/main/docs/runbook.md#${rule.alert.toLowerCase()}`,
      );
      expect({ alert: rule.alert, documented: anchors.has(rule.alert.toLowerCase()) }).toEqual({
        alert: rule.alert,
        documented: true,
      });
    }
  });

  it.each([
    [
      'LumenNoProbers',
      [
        {
          name: 'the scheduler sees no prober',
          input: [series('lumen_probers_live', 'scheduler', '0x20')],
          at: '15m',
          fires: [{ labels: { severity: 'critical' }, value: '0' }],
        },
        {
          name: 'no scheduler reports any',
          input: [series('up', 'planner', '1x20')],
          at: '15m',
          fires: [{ labels: { severity: 'critical' }, value: '0' }],
        },
        {
          name: 'a standby reports none while the leader sees three',
          input: [
            series('lumen_probers_live', 'scheduler', '3x20'),
            {
              ...series('lumen_probers_live', 'scheduler', '0x20'),
              series: `lumen_probers_live{job="scheduler",namespace="${NS}",pod="lumen-scheduler-1",instance="10.0.0.2:8082"}`,
            },
          ],
          at: '15m',
          fires: [],
        },
      ],
    ],
    [
      'LumenProbersMissing',
      [
        {
          name: 'two of five nodes without a live prober',
          input: [
            series('kube_daemonset_status_desired_number_scheduled', 'kube-state-metrics', '5x20', {
              daemonset: 'lumen-prober',
            }),
            series('lumen_probers_live', 'scheduler', '3x20'),
          ],
          at: '15m',
          fires: [{ labels: { severity: 'warning' }, value: '2' }],
        },
        {
          name: 'every node has one',
          input: [
            series('kube_daemonset_status_desired_number_scheduled', 'kube-state-metrics', '5x20', {
              daemonset: 'lumen-prober',
            }),
            series('lumen_probers_live', 'scheduler', '5x20'),
          ],
          at: '15m',
          fires: [],
        },
      ],
    ],
    [
      'LumenDown',
      [
        {
          name: 'the reporter stops answering',
          input: [
            series('up', 'planner', '1x20'),
            series('up', 'scheduler', '1x20'),
            series('up', 'reporter', '1 1 0x18'),
          ],
          at: '10m',
          fires: [{ labels: { severity: 'critical', component: 'reporter' }, value: '1' }],
        },
        {
          name: 'a standby is down, its leader up',
          input: [
            series('up', 'planner', '1x20'),
            series('up', 'scheduler', '1x20'),
            series('up', 'reporter', '1x20'),
            {
              series: `up{job="reporter",namespace="${NS}",pod="lumen-reporter-1",instance="10.0.0.2:8084"}`,
              values: '0x20',
            },
          ],
          at: '10m',
          fires: [],
        },
      ],
    ],
    [
      'LumenVerdictsStalled',
      [
        {
          name: 'cases planned, no verdict for half an hour',
          input: [
            series('lumen_planned_cases', 'planner', '40x60'),
            series('lumen_verdicts_total', 'reporter', '100x60', { outcome: 'pass' }),
          ],
          at: '45m',
          fires: [{ labels: { severity: 'critical' }, value: '0' }],
        },
        {
          name: 'verdicts keep coming',
          input: [
            series('lumen_planned_cases', 'planner', '40x60'),
            series('lumen_verdicts_total', 'reporter', '0+8x60', { outcome: 'pass' }),
          ],
          at: '45m',
          fires: [],
        },
      ],
    ],
    [
      'LumenDeadLetters',
      [
        {
          name: 'a result dead-lettered',
          input: [
            series('lumen_dead_letters_total', 'reporter', '0 0 0 1 1 1', {
              subject: 'lumen.v1.results.node-a',
            }),
          ],
          at: '5m',
          fires: [
            { labels: { severity: 'warning', subject: 'lumen.v1.results.node-a' }, value: '1' },
          ],
        },
      ],
    ],
    [
      'LumenAlertOutboxBacklog',
      [
        {
          name: 'a receiver down for 20 minutes',
          input: [series('lumen_alert_outbox_pending', 'reporter', '3x30', { receiver: 'slack' })],
          at: '20m',
          fires: [{ labels: { severity: 'warning', receiver: 'slack' }, value: '3' }],
        },
        {
          name: 'a burst delivered at once',
          input: [
            series('lumen_alert_outbox_pending', 'reporter', '0 4 0x28', { receiver: 'slack' }),
          ],
          at: '20m',
          fires: [],
        },
      ],
    ],
    [
      'LumenRegressionPresent',
      [
        {
          name: 'two regressions firing',
          input: [series('lumen_regressions_firing', 'reporter', '0 2x10')],
          at: '5m',
          fires: [{ labels: { severity: 'critical' }, value: '2' }],
        },
        {
          name: 'none',
          input: [series('lumen_regressions_firing', 'reporter', '0x10')],
          at: '5m',
          fires: [],
        },
      ],
    ],
    [
      'LumenPublishRejected',
      [
        {
          name: 'the cases stream refuses work',
          input: [
            series('lumen_publish_rejected_total', 'planner', '0 0 4 4 4', {
              stream: 'LUMEN_V1_CASES',
            }),
          ],
          at: '4m',
          fires: [{ labels: { severity: 'critical', stream: 'LUMEN_V1_CASES' }, value: '4' }],
        },
      ],
    ],
  ] as const)('%s fires when it should, and only then', async (alert, cases) => {
    const output = await promtoolTest(alert, cases as unknown as AlertCase[]);
    expect(output).toMatch(/^0\n.*SUCCESS/s);
  });
});
