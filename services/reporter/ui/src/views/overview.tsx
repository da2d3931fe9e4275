import { useMemo } from 'preact/hooks';
import uPlot from 'uplot';
import type {
  ApiSummary,
  LatencyStats,
  MatrixCoverageAnswer,
  PolicyCoverage,
  Regression,
} from '#lumen/contracts';
import { apiGet } from '../api.js';
import { Chart } from '../chart.js';
import { OUTCOME_COLOUR, percent, when } from '../format.js';
import { useLoad } from '../load.js';
import { href } from '../route.js';
import { Await } from './common.js';

const KINDS = ['pass', 'fail', 'flaky', 'inconclusive', 'unverified'] as const;

interface OverviewData {
  readonly summary: ApiSummary;
  readonly regressions: { items: Regression[]; truncated: boolean };
  readonly coverage: { policies: PolicyCoverage[]; matrix: MatrixCoverageAnswer | null };
  readonly latency: LatencyStats;
}

function OutcomeChart(props: { readonly summary: ApiSummary }) {
  const counts = KINDS.map((k) =>
    k === 'unverified' ? props.summary.undecided : props.summary.byOutcome[k],
  );
  const data = useMemo<uPlot.AlignedData>(() => [KINDS.map((_, i) => i), counts], [counts.join()]);
  const options = useMemo<Omit<uPlot.Options, 'width' | 'height'>>(
    () => ({
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: false, range: [-0.5, KINDS.length - 0.5] } },
      axes: [
        { values: (_u, ticks) => ticks.map((t) => (Number.isInteger(t) ? (KINDS[t] ?? '') : '')) },
        { size: 70 },
      ],
      series: [
        {},
        {
          label: 'cases',
          paths: uPlot.paths.bars?.({ size: [0.6, 80] }),
          points: { show: false },
          fill: (u: uPlot) => {
            // One colour per bar: a gradient with hard stops at the bar edges.
            const left = u.valToPos(-0.5, 'x', true);
            const right = u.valToPos(KINDS.length - 0.5, 'x', true);
            const gradient = u.ctx.createLinearGradient(left, 0, right, 0);
            KINDS.forEach((k, i) => {
              gradient.addColorStop(i / KINDS.length, OUTCOME_COLOUR[k]);
              gradient.addColorStop((i + 1) / KINDS.length, OUTCOME_COLOUR[k]);
            });
            return gradient;
          },
          stroke: 'transparent',
        },
      ],
    }),
    [],
  );
  return <Chart options={options} data={data} height={180} label="cases by latest outcome" />;
}

export function Overview() {
  const loaded = useLoad('overview', async (): Promise<OverviewData> => {
    const [summary, regressions, coverage, latency] = await Promise.all([
      apiGet<ApiSummary>('summary'),
      apiGet<OverviewData['regressions']>('regressions'),
      apiGet<OverviewData['coverage']>('coverage'),
      apiGet<LatencyStats>('latency'),
    ]);
    return { summary, regressions, coverage, latency };
  });
  return (
    <Await loaded={loaded}>
      {({ summary, regressions, coverage, latency }) => {
        const matrix = coverage.matrix;
        const rules = coverage.policies.reduce((n, p) => n + p.rules, 0);
        const covered = coverage.policies.reduce((n, p) => n + p.covered, 0);
        return (
          <div class="overview">
            <section class="tiles" aria-label="outcomes">
              <div class="tile" data-kind="cases">
                <b>{summary.cases}</b> cases
              </div>
              {(['pass', 'fail', 'flaky', 'inconclusive'] as const).map((k) => (
                <div class={`tile outcome-${k}`} data-kind={k}>
                  <b>{summary.byOutcome[k]}</b> {k}
                </div>
              ))}
              <div class="tile" data-kind="unverified">
                <b>{summary.undecided}</b> not yet judged
              </div>
              <div
                class={`tile ${summary.firingAlerts > 0 ? 'outcome-fail' : ''}`}
                data-kind="regressions"
              >
                <b>{summary.firingAlerts}</b> regressions firing
              </div>
            </section>
            <p class="muted">Last verdict {when(summary.lastDecidedAt)}</p>
            <div class="columns">
              <section>
                <h2>Cases by latest outcome</h2>
                <OutcomeChart summary={summary} />
              </section>
              <section>
                <h2>Enforcement latency</h2>
                <p class="muted">From a policy change to the first probe that saw it enforced.</p>
                <table class="latency">
                  <tbody>
                    {(['p50Ms', 'p90Ms', 'p99Ms', 'maxMs'] as const).map((k) => (
                      <tr>
                        <th>{k.replace('Ms', '')}</th>
                        <td>{latency[k] === null ? '–' : `${(latency[k] / 1000).toFixed(1)} s`}</td>
                      </tr>
                    ))}
                    <tr>
                      <th>measured</th>
                      <td>{latency.count} changes</td>
                    </tr>
                  </tbody>
                </table>
              </section>
            </div>
            <section>
              <h2>Regressions firing</h2>
              {regressions.items.length === 0 ? (
                <p class="muted" data-regressions="0">
                  None.
                </p>
              ) : (
                <table class="regressions" data-regressions={regressions.items.length}>
                  <thead>
                    <tr>
                      <th>since</th>
                      <th>severity</th>
                      <th>policy</th>
                      <th>connection</th>
                      <th>case</th>
                    </tr>
                  </thead>
                  <tbody>
                    {regressions.items.map((r) => (
                      <tr class={`severity-${r.severity}`}>
                        <td>{when(r.startsAt)}</td>
                        <td>{r.severity}</td>
                        <td>
                          {r.policy ? (
                            <a href={href({ view: 'policy', policy: r.policy })}>{r.policy}</a>
                          ) : (
                            '(another tenant’s)'
                          )}
                        </td>
                        <td>
                          {r.sourceNamespace} → {r.destinationNamespace} {r.port}/{r.protocol}, must{' '}
                          {r.expected === 'allow' ? 'pass' : 'be blocked'}
                        </td>
                        <td>
                          <a class="case-link" href={href({ view: 'case', caseId: r.caseId })}>
                            {r.caseId}
                          </a>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
              {regressions.truncated && <p class="muted">Only the newest are listed.</p>}
            </section>
            <section>
              <h2>Coverage</h2>
              {matrix ? (
                <p data-coverage="matrix">
                  Matrix ({matrix.mode}): {matrix.cellsVerified}
                  {matrix.cells === null
                    ? ' cells verified in your namespaces'
                    : ` of ${matrix.cells} cells verified (${percent(matrix.cellsVerified, matrix.cells)})`}
                  {matrix.sweepsPerRotation !== null && matrix.sweepsPerRotation > 1
                    ? `; a full rotation takes ${matrix.sweepsPerRotation} sweeps`
                    : ''}
                  .
                </p>
              ) : (
                <p class="muted">The planner has not reported a matrix yet.</p>
              )}
              <p data-coverage="rules">
                Rules: {covered} of {rules} covered ({percent(covered, rules)}): a passing
                must-allow and must-deny case each.{' '}
                <a href={href({ view: 'policies' })}>Per policy</a>
              </p>
              {matrix && matrix.notJudged.length > 0 && (
                <p>
                  Not judged: {matrix.notJudged.length} policy objects of kinds Lumen does not model
                  (
                  {matrix.notJudged
                    .slice(0, 5)
                    .map((o) => `${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name}`)
                    .join(', ')}
                  {matrix.notJudged.length > 5 ? ', …' : ''}).
                </p>
              )}
              {matrix && matrix.notGenerated.length > 0 && (
                <details>
                  <summary>{matrix.notGenerated.length} checks the plan could not generate</summary>
                  <ul>
                    {matrix.notGenerated.slice(0, 100).map((n) => (
                      <li>
                        {n.reason}
                        {n.rule ? ` for ${n.rule.policy} ${n.rule.direction}[${n.rule.index}]` : ''}
                        : {n.why}
                      </li>
                    ))}
                  </ul>
                </details>
              )}
            </section>
          </div>
        );
      }}
    </Await>
  );
}
