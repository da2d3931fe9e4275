import type {
  MatrixCoverageAnswer,
  OutcomeItem,
  PolicyCoverage,
  Regression,
} from '#lumen/contracts';
import { apiAll, apiGet } from '../api.js';
import { percent, when } from '../format.js';
import { useLoad } from '../load.js';
import { href } from '../route.js';
import { Await, OutcomeBadge } from './common.js';

/** Cases a policy view lists at most (its outcomes, in pages of 500). */
const MAX_POLICY_CASES = 5_000;

export function PoliciesView() {
  const loaded = useLoad('policies', () =>
    apiGet<{ policies: PolicyCoverage[]; matrix: MatrixCoverageAnswer | null }>('coverage'),
  );
  return (
    <Await loaded={loaded}>
      {({ policies }) => (
        <div>
          <h2>Policies: {policies.length}</h2>
          <table class="policies">
            <thead>
              <tr>
                <th>policy</th>
                <th>rules</th>
                <th>covered</th>
              </tr>
            </thead>
            <tbody>
              {policies.map((p) => (
                <tr>
                  <td>
                    <a class="policy-link" href={href({ view: 'policy', policy: p.policy })}>
                      {p.policy}
                    </a>
                  </td>
                  <td>{p.rules}</td>
                  <td>
                    {p.covered} ({percent(p.covered, p.rules)})
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Await>
  );
}

interface PolicyData {
  readonly coverage: PolicyCoverage | undefined;
  readonly cases: { items: OutcomeItem[]; complete: boolean };
  readonly regressions: Regression[];
}

const ruleKey = (r: { direction: string; index: number }): string => `${r.direction}[${r.index}]`;

/** A policy: its rules with their coverage and cases, and its regressions firing. */
export function PolicyView(props: { readonly policy: string }) {
  const { policy } = props;
  const loaded = useLoad(`policy ${policy}`, async (): Promise<PolicyData> => {
    const [coverage, cases, regressions] = await Promise.all([
      apiGet<{ policies: PolicyCoverage[] }>('coverage', { policy }),
      apiAll<OutcomeItem>('outcomes', { policy }, MAX_POLICY_CASES),
      apiGet<{ items: Regression[] }>('regressions', { policy }),
    ]);
    return { coverage: coverage.policies[0], cases, regressions: regressions.items };
  });
  return (
    <Await loaded={loaded}>
      {({ coverage, cases, regressions }) => {
        const byRule = new Map<string, OutcomeItem[]>();
        const other: OutcomeItem[] = [];
        for (const c of cases.items) {
          if (c.rule && c.rule.policy === policy) {
            const key = ruleKey(c.rule);
            byRule.set(key, [...(byRule.get(key) ?? []), c]);
          } else other.push(c);
        }
        return (
          <div class="policy">
            <p>
              <a href={href({ view: 'policies' })}>Policies</a> › {policy}
            </p>
            <h2>{policy}</h2>
            {coverage ? (
              <p data-policy-coverage={coverage.coverage}>
                {coverage.covered} of {coverage.rules} rules covered (
                {percent(coverage.covered, coverage.rules)}): each needs a passing must-allow and a
                passing must-deny case.
              </p>
            ) : (
              <p class="muted">Not in the planner’s inventory (deleted, or not yet planned).</p>
            )}
            <h3>Regressions firing: {regressions.length}</h3>
            {regressions.length > 0 && (
              <ul class="regressions">
                {regressions.map((r) => (
                  <li>
                    {r.severity}: {r.sourceNamespace} → {r.destinationNamespace} {r.port}/
                    {r.protocol} since {when(r.startsAt)} —{' '}
                    <a class="case-link" href={href({ view: 'case', caseId: r.caseId })}>
                      case {r.caseId}
                    </a>
                  </li>
                ))}
              </ul>
            )}
            <h3>Rules</h3>
            <table class="rules">
              <thead>
                <tr>
                  <th>rule</th>
                  <th>must-allow verified</th>
                  <th>must-deny verified</th>
                  <th>cases</th>
                </tr>
              </thead>
              <tbody>
                {(coverage?.perRule ?? []).map((r) => {
                  const ruleCases = byRule.get(ruleKey(r)) ?? [];
                  return (
                    <tr data-rule={ruleKey(r)}>
                      <td>{ruleKey(r)}</td>
                      <td>{r.allowVerified ? '✓' : '✗'}</td>
                      <td>{r.denyVerified ? '✓' : '✗'}</td>
                      <td>
                        {ruleCases.length === 0
                          ? 'none stored'
                          : ruleCases.map((c) => (
                              <a class="case-link" href={href({ view: 'case', caseId: c.caseId })}>
                                <OutcomeBadge outcome={c.outcome} /> {c.expected} {c.port}/
                                {c.protocol}
                              </a>
                            ))}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
            {other.length > 0 && (
              <>
                <h3>Other cases the policy decides</h3>
                <p class="muted">Isolation checks and cases it shares with other policies.</p>
                <ul>
                  {other.map((c) => (
                    <li>
                      <a class="case-link" href={href({ view: 'case', caseId: c.caseId })}>
                        <OutcomeBadge outcome={c.outcome} /> {c.caseReason}: {c.source.namespace} →{' '}
                        {c.destination.namespace} {c.port}/{c.protocol} {c.expected}
                      </a>
                    </li>
                  ))}
                </ul>
              </>
            )}
            {!cases.complete && (
              <p class="muted">Only the first {MAX_POLICY_CASES} cases are listed.</p>
            )}
          </div>
        );
      }}
    </Await>
  );
}
