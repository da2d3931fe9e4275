import { useState } from 'preact/hooks';
import type { ClassMatrix } from '#lumen/contracts';
import { apiGet } from '../api.js';
import {
  EXPECTED_COLOUR,
  OUTCOME_COLOUR,
  countsText,
  expectedOf,
  labelsText,
  worst,
} from '../format.js';
import { useLoad } from '../load.js';
import { href } from '../route.js';
import { Await, OutcomeBadge } from './common.js';
import { Legend } from './matrix.js';

type PairCell = ClassMatrix['cells'][number];

/** One namespace pair, class × class (a handful of classes each), and the cases of a cell. */
export function PairView(props: { readonly source: string; readonly destination: string }) {
  const { source, destination } = props;
  const loaded = useLoad(`pair ${source} ${destination}`, () =>
    apiGet<ClassMatrix>(`matrix/${encodeURIComponent(source)}/${encodeURIComponent(destination)}`),
  );
  const [open, setOpen] = useState<PairCell | null>(null);
  return (
    <Await loaded={loaded}>
      {(pair) => {
        const cell = (from: string, to: string): PairCell | undefined =>
          pair.cells.find((c) => c.source === from && c.destination === to);
        const chosen = open ?? (pair.cells.length === 1 ? (pair.cells[0] ?? null) : null);
        return (
          <div class="pair">
            <p>
              <a href={href({ view: 'matrix' })}>Matrix</a> › {source} → {destination}
            </p>
            <h2>
              {source} → {destination}: pod classes
            </h2>
            <Legend />
            {pair.truncated && <p class="error">Only the first cases of this pair are shown.</p>}
            <table class="class-matrix">
              <thead>
                <tr>
                  <th>from ↓ to →</th>
                  {pair.destinationClasses.map((d) => (
                    <th title={d.id}>{labelsText(d.labels)}</th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {pair.sourceClasses.map((s) => (
                  <tr>
                    <th title={s.id}>{labelsText(s.labels)}</th>
                    {pair.destinationClasses.map((d) => {
                      const c = cell(s.id, d.id);
                      if (!c) return <td class="empty" />;
                      return (
                        <td
                          class={`class-cell ${chosen === c ? 'chosen' : ''}`}
                          data-outcome={worst(c)}
                          title={countsText(c)}
                          style={{
                            borderLeft: `6px solid ${EXPECTED_COLOUR[expectedOf(c)]}`,
                            background: OUTCOME_COLOUR[worst(c)],
                          }}
                        >
                          <button
                            type="button"
                            onClick={() => {
                              setOpen(c);
                            }}
                          >
                            {c.cases.length} {c.cases.length === 1 ? 'case' : 'cases'}
                          </button>
                        </td>
                      );
                    })}
                  </tr>
                ))}
              </tbody>
            </table>
            {chosen && (
              <section>
                <h3>Cases of the cell: {countsText(chosen)}</h3>
                <table class="cases">
                  <thead>
                    <tr>
                      <th>case</th>
                      <th>port</th>
                      <th>policies say</th>
                      <th>verified</th>
                    </tr>
                  </thead>
                  <tbody>
                    {chosen.cases.map((c) => (
                      <tr>
                        <td>
                          <a class="case-link" href={href({ view: 'case', caseId: c.caseId })}>
                            {c.caseId}
                          </a>
                        </td>
                        <td>
                          {c.port}/{c.protocol}
                        </td>
                        <td>{c.expected}</td>
                        <td>
                          <OutcomeBadge outcome={c.outcome} />
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </section>
            )}
          </div>
        );
      }}
    </Await>
  );
}
