import { useMemo } from 'preact/hooks';
import type uPlot from 'uplot';
import type { ApiCaseSide, CaseDetail, Outcome } from '#lumen/contracts';
import { apiGet } from '../api.js';
import { Chart } from '../chart.js';
import { OUTCOME_COLOUR, labelsText, when } from '../format.js';
import { useLoad } from '../load.js';
import { href } from '../route.js';
import { Await, OutcomeBadge } from './common.js';

const LEVELS: Outcome[] = ['pass', 'inconclusive', 'flaky', 'fail'];

function Side(props: { readonly side: ApiCaseSide }) {
  const { side } = props;
  return (
    <span>
      <b>{side.namespace}</b>{' '}
      {'labels' in side ? labelsText(side.labels) : '(another tenant’s pods)'}
    </span>
  );
}

/** The case's outcomes over time, one point per decision, on a pass…fail scale. */
function Timeline(props: { readonly history: CaseDetail['history'] }) {
  const data = useMemo<uPlot.AlignedData>(
    () => [
      props.history.map((h) => new Date(h.decidedAt).getTime() / 1000),
      props.history.map((h) => LEVELS.indexOf(h.outcome)),
    ],
    [props.history],
  );
  const options = useMemo<Omit<uPlot.Options, 'width' | 'height'>>(
    () => ({
      legend: { show: false },
      scales: { y: { range: [-0.5, LEVELS.length - 0.5] } },
      axes: [
        {},
        {
          size: 90,
          splits: () => LEVELS.map((_, i) => i),
          values: (_u, ticks) => ticks.map((t) => LEVELS[t] ?? ''),
        },
      ],
      series: [
        {},
        {
          label: 'outcome',
          stroke: '#57606a',
          width: 1,
          points: { show: true, size: 9, fill: OUTCOME_COLOUR.fail },
        },
      ],
    }),
    [],
  );
  return <Chart options={options} data={data} height={160} label="outcome history" />;
}

export function CaseView(props: { readonly caseId: string }) {
  const loaded = useLoad(`case ${props.caseId}`, () =>
    apiGet<CaseDetail>(`cases/${encodeURIComponent(props.caseId)}`, { limit: '100' }),
  );
  return (
    <Await loaded={loaded}>
      {(detail) => {
        const c = detail.case;
        const o = detail.outcome;
        return (
          <div class="case" data-case={c.caseId}>
            <p>
              <a
                href={href({
                  view: 'pair',
                  source: c.source.namespace,
                  destination: c.destination.namespace,
                })}
              >
                {c.source.namespace} → {c.destination.namespace}
              </a>{' '}
              › case {c.caseId}
            </p>
            <h2>
              <Side side={c.source} /> → <Side side={c.destination} /> on {c.port}/{c.protocol}
            </h2>
            <p class="verdict">
              The policies say <b>{c.expected}</b>; verified:{' '}
              <OutcomeBadge outcome={o?.outcome ?? null} />{' '}
              {o
                ? `${o.reason} (round ${o.round}, ${o.attempts} attempts, ${when(o.decidedAt)})`
                : 'not yet judged'}
              {o?.traceId && (
                <>
                  {' '}
                  · trace <code class="trace">{o.traceId}</code>
                </>
              )}
            </p>
            <h3>Why: the explanation</h3>
            <p>
              Case reason: {c.reason}
              {c.rule && (
                <>
                  ; it checks{' '}
                  <a href={href({ view: 'policy', policy: c.rule.policy })}>{c.rule.policy}</a>{' '}
                  {c.rule.direction}[{c.rule.index}]
                </>
              )}
              {c.policy && !c.rule && (
                <>
                  ; policy <a href={href({ view: 'policy', policy: c.policy })}>{c.policy}</a>
                </>
              )}
              .
            </p>
            <table class="explanation">
              <thead>
                <tr>
                  <th>side</th>
                  <th>isolated</th>
                  <th>allowed</th>
                  <th>decided by</th>
                  <th>policies</th>
                  <th>admitting rules</th>
                </tr>
              </thead>
              <tbody>
                {(['egress', 'ingress'] as const).map((direction) => {
                  const side = c.explanation[direction];
                  return (
                    <tr data-side={direction}>
                      <td>
                        {direction} (
                        {direction === 'egress' ? 'at the source' : 'at the destination'})
                      </td>
                      <td>{side.isolated ? 'yes' : 'no'}</td>
                      <td>{side.allowed ? 'yes' : 'no'}</td>
                      <td>
                        {side.decidedBy
                          ? `${side.decidedBy.tier} ${side.decidedBy.policy} ${side.decidedBy.direction}[${side.decidedBy.index}] ${side.decidedBy.action}`
                          : (side.tier ?? '')}
                      </td>
                      <td>
                        {side.hidden
                          ? '(not shown to this token)'
                          : side.policies.join(', ') || 'none'}
                      </td>
                      <td>
                        {side.allowedBy
                          .map((r) => `${r.policy} ${r.direction}[${r.index}]`)
                          .join(', ') || 'none'}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
            {c.explanation.unprobeable && (
              <p class="error">Not probeable: {c.explanation.unprobeable}</p>
            )}
            <h3>History</h3>
            {detail.history.length === 0 ? (
              <p class="muted">No decision yet.</p>
            ) : (
              <>
                <Timeline history={detail.history} />
                <ol class="history">
                  {detail.history.map((h) => (
                    <li>
                      {when(h.decidedAt)} round {h.round}: <OutcomeBadge outcome={h.outcome} />
                    </li>
                  ))}
                </ol>
              </>
            )}
            <h3>Attempts (newest first): {detail.attempts.items.length}</h3>
            <table class="attempts">
              <thead>
                <tr>
                  <th>observed</th>
                  <th>round.attempt</th>
                  <th>node</th>
                  <th>from → to</th>
                  <th>saw</th>
                  <th>nmap evidence</th>
                  <th>trace</th>
                </tr>
              </thead>
              <tbody>
                {detail.attempts.items.map((a) => (
                  <tr class="attempt">
                    <td>{when(a.observedAt)}</td>
                    <td>
                      {a.round}.{a.attempt}
                    </td>
                    <td>{a.node ?? '–'}</td>
                    <td>
                      {a.sourcePod ?? '–'} → {a.destinationPod ?? '–'}
                    </td>
                    <td>{a.reachability}</td>
                    <td class="evidence">
                      {a.basis}
                      {a.evidence && (
                        <>
                          {' '}
                          (state <code>{a.evidence.state}</code>, reason{' '}
                          <code>{a.evidence.reason}</code>
                          {a.evidence.reasonTtl !== undefined
                            ? `, ttl ${a.evidence.reasonTtl}`
                            : ''}
                          )
                          {a.evidence.command && (
                            <details>
                              <summary>nmap command</summary>
                              <code>{a.evidence.command.join(' ')}</code>
                            </details>
                          )}
                        </>
                      )}
                    </td>
                    <td>
                      <code class="trace">{a.traceId ?? '–'}</code>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        );
      }}
    </Await>
  );
}
