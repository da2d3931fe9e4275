import { formatLabels } from '#lumen/policy';
import { escapeXml as escape, failureText, gateFails, type FailOn } from './junit.js';
import { caseSentence, type CaseReport, type Outcome, type RunReport } from './report.js';

/*
 * `lumen run --once --html FILE` (issue 18): one self-contained HTML file a CI job keeps as
 * an artifact and a person opens from disk: the namespace matrix, every failure with its
 * evidence, the coverage, and what was not judged and why. No script, no network: its
 * Content-Security-Policy forbids loading anything. Built from the same RunReport as
 * --json and --junit, so the three always name the same failures.
 */

/** The dashboard's colours (services/reporter/ui/src/format.ts), so both read alike. */
const OUTCOME_COLOUR: Record<Outcome, string> = {
  pass: '#2da44e',
  fail: '#cf222e',
  flaky: '#d4a72c',
  inconclusive: '#8c959f',
};
const EXPECTED_COLOUR = { allow: '#0969da', deny: '#24292f', mixed: '#8250df' } as const;

/** Beyond this many namespaces the matrix is a list of pairs: a table would not read. */
const MATRIX_MAX_NAMESPACES = 40;
/** Cases listed in full at most; --json has every one. */
const MAX_LISTED_CASES = 5000;

interface Pair {
  readonly source: string;
  readonly destination: string;
  readonly cases: CaseReport[];
}

const ORDER: readonly Outcome[] = ['fail', 'flaky', 'inconclusive', 'pass'];

function worstOf(cases: readonly CaseReport[]): Outcome {
  return ORDER.find((o) => cases.some((c) => c.outcome === o)) ?? 'pass';
}

function expectedOf(cases: readonly CaseReport[]): keyof typeof EXPECTED_COLOUR {
  const allow = cases.some((c) => c.expected === 'allow');
  const deny = cases.some((c) => c.expected === 'deny');
  return allow && deny ? 'mixed' : deny ? 'deny' : 'allow';
}

function pairsOf(cases: readonly CaseReport[]): Pair[] {
  const pairs = new Map<string, Pair>();
  for (const c of cases) {
    const key = `${c.from.namespace} ${c.to.namespace}`;
    const pair = pairs.get(key) ?? {
      source: c.from.namespace,
      destination: c.to.namespace,
      cases: [],
    };
    pair.cases.push(c);
    pairs.set(key, pair);
  }
  return [...pairs.values()].sort(
    (a, b) => a.source.localeCompare(b.source) || a.destination.localeCompare(b.destination),
  );
}

const anchor = (pair: { source: string; destination: string }): string =>
  `pair-${pair.source}--${pair.destination}`;

function tally(cases: readonly CaseReport[]): string {
  return ORDER.map((o) => [o, cases.filter((c) => c.outcome === o).length] as const)
    .filter(([, n]) => n > 0)
    .map(([o, n]) => `${n} ${o}`)
    .join(', ');
}

function cellStyle(cases: readonly CaseReport[]): string {
  return `background:linear-gradient(135deg,${EXPECTED_COLOUR[expectedOf(cases)]} 50%,${OUTCOME_COLOUR[worstOf(cases)]} 50%)`;
}

function matrix(pairs: readonly Pair[]): string {
  if (pairs.length === 0) return '<p>No cases.</p>';
  const namespaces = [...new Set(pairs.flatMap((p) => [p.source, p.destination]))].sort();
  if (namespaces.length > MATRIX_MAX_NAMESPACES) {
    const rows = [...pairs]
      .sort((a, b) => ORDER.indexOf(worstOf(a.cases)) - ORDER.indexOf(worstOf(b.cases)))
      .map(
        (p) =>
          `<tr><td><i class="cell" style="${cellStyle(p.cases)}"></i></td><td><a href="#${escape(anchor(p))}">${escape(p.source)} → ${escape(p.destination)}</a></td><td>${escape(tally(p.cases))}</td></tr>`,
      );
    return `<p>${namespaces.length} namespaces: the pairs with cases, failures first.</p><table class="pairs">${rows.join('')}</table>`;
  }
  const byKey = new Map(pairs.map((p) => [`${p.source} ${p.destination}`, p]));
  const head = namespaces.map((n) => `<th class="to"><span>${escape(n)}</span></th>`).join('');
  const rows = namespaces.map((from) => {
    const cells = namespaces.map((to) => {
      const pair = byKey.get(`${from} ${to}`);
      if (!pair) return '<td class="empty"></td>';
      return `<td><a class="cell" href="#${escape(anchor(pair))}" style="${cellStyle(pair.cases)}" title="${escape(`${from} → ${to}: ${tally(pair.cases)}`)}" data-outcome="${worstOf(pair.cases)}"></a></td>`;
    });
    return `<tr><th>${escape(from)}</th>${cells.join('')}</tr>`;
  });
  return `<table class="matrix"><thead><tr><th>from ↓ to →</th>${head}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function legend(): string {
  const swatch = (colour: string, name: string): string =>
    `<span><i class="swatch" style="background:${colour}"></i> ${name}</span>`;
  return `<p class="legend">Upper half, what the policies say: ${Object.entries(EXPECTED_COLOUR)
    .map(([k, c]) => swatch(c, k))
    .join(' ')} · lower half, what was verified: ${Object.entries(OUTCOME_COLOUR)
    .map(([k, c]) => swatch(c, k))
    .join(' ')}</p>`;
}

function failure(c: CaseReport): string {
  return `<article class="failure" id="case-${escape(c.id)}" data-case-id="${escape(c.id)}" data-outcome="${c.outcome}">
<h3><span class="badge" style="background:${OUTCOME_COLOUR[c.outcome]}">${c.outcome}</span> ${escape(caseSentence(c).slice(0, -2))}</h3>
<pre>${escape(failureText(c))}</pre>
</article>`;
}

function coverage(report: RunReport): string {
  const cov = report.coverage;
  if (!cov) return '<p>No coverage: the run ended before a plan.</p>';
  const percent = (n: number, of: number): string =>
    of === 0 ? '100%' : `${Math.floor((1000 * n) / of) / 10}%`;
  return `<table class="facts">
<tr><th>mode</th><td>${escape(cov.mode)}</td></tr>
<tr><th>matrix cells verified</th><td data-coverage="cells">${cov.cellsVerified} of ${cov.cells} (${percent(cov.cellsVerified, cov.cells)})</td></tr>
<tr><th>rules covered</th><td data-coverage="rules">${cov.rulesCovered} of ${cov.rules} (${percent(cov.rulesCovered, cov.rules)}): a passing must-allow and must-deny case each</td></tr>
<tr><th>obligations</th><td>${cov.obligations}</td></tr>
<tr><th>rotation</th><td>${cov.runsPerRotation === null ? 'not rotated (obligations only)' : cov.runsPerRotation <= 1 ? 'the whole matrix fits one run' : `${cov.runsPerRotation} runs at this budget`}</td></tr>
</table>`;
}

function notJudged(report: RunReport): string {
  const cov = report.coverage;
  const parts: string[] = [];
  if (cov && cov.notJudged.length > 0)
    parts.push(
      `<p>${cov.notJudgedCases} cases are not judged: policies of kinds Lumen does not model may affect them (their CNI enforces more than the model says, so none is failed).</p><ul>${cov.notJudged
        .map((n) => `<li>${escape(n.policy)}: ${n.cases} cases</li>`)
        .join('')}</ul>`,
    );
  const notVerified = cov?.notVerified ?? [];
  if (notVerified.length > 0)
    parts.push(
      `<table class="not-verified"><thead><tr><th>what</th><th>rule</th><th>why</th></tr></thead><tbody>${notVerified
        .slice(0, MAX_LISTED_CASES)
        .map(
          (n) =>
            `<tr><td>${escape(n.what)}</td><td>${escape(n.rule ?? '–')}</td><td>${escape(n.why)}</td></tr>`,
        )
        .join(
          '',
        )}</tbody></table>${notVerified.length > MAX_LISTED_CASES ? `<p>… and ${notVerified.length - MAX_LISTED_CASES} more (--json lists them all).</p>` : ''}`,
    );
  return parts.length > 0 ? parts.join('') : '<p>Everything planned was judged.</p>';
}

function caseRows(pairs: readonly Pair[]): string {
  let listed = 0;
  const sections: string[] = [];
  for (const pair of pairs) {
    if (listed >= MAX_LISTED_CASES) break;
    const cases = pair.cases.slice(0, MAX_LISTED_CASES - listed);
    listed += cases.length;
    sections.push(
      `<tbody id="${escape(anchor(pair))}"><tr class="pair"><th colspan="6">${escape(pair.source)} → ${escape(pair.destination)}: ${escape(tally(pair.cases))}</th></tr>${cases
        .map(
          (c) =>
            `<tr data-case-id="${escape(c.id)}"><td><span class="badge" style="background:${OUTCOME_COLOUR[c.outcome]}">${c.outcome}</span></td><td>${escape(formatLabels(c.from.labels) || '(any pod)')} → ${escape(formatLabels(c.to.labels) || '(any pod)')}</td><td>${c.port}/${escape(c.protocol)}</td><td>${c.expected}</td><td>${c.observed}</td><td>${escape(c.policy ?? '–')}</td></tr>`,
        )
        .join('')}</tbody>`,
    );
  }
  const total = pairs.reduce((n, p) => n + p.cases.length, 0);
  return `<table class="cases"><thead><tr><th>verified</th><th>from → to</th><th>port</th><th>policies say</th><th>observed</th><th>policy</th></tr></thead>${sections.join('')}</table>${total > listed ? `<p>Only the first ${listed} of ${total} cases are listed (--json lists them all).</p>` : ''}`;
}

const STYLE = `body{font:14px system-ui,-apple-system,'Segoe UI',sans-serif;color:#24292f;margin:1.5rem;max-width:80rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d8dee4}h3{font-size:1rem}
table{border-collapse:collapse}th,td{text-align:left;padding:.2rem .5rem;border-bottom:1px solid #eaeef2;vertical-align:top}
.matrix td{padding:1px;border:0}.matrix td.empty{background:#f6f8fa}.matrix th.to{height:8rem;vertical-align:bottom}
.matrix th.to span{writing-mode:vertical-rl;transform:rotate(180deg)}
.cell{display:block;width:1.4rem;height:1.4rem}.swatch{display:inline-block;width:.8rem;height:.8rem;vertical-align:middle}
.badge{color:#fff;border-radius:10px;padding:0 .5rem;font-size:.85em}
.failure{border-left:4px solid #cf222e;padding:.1rem .8rem;margin:.8rem 0;background:#fff8f8}
.failure pre{white-space:pre-wrap;word-break:break-all}
.summary span{margin-right:1.2rem}.gate-failed{color:#cf222e}.gate-passed{color:#1a7f37}tr.pair th{background:#f6f8fa}`;

/** The whole report as one HTML document. */
export function htmlReport(
  report: RunReport,
  failOn: FailOn,
  meta: { readonly timestamp: Date; readonly durationSeconds: number; readonly hostname: string },
): string {
  const pairs = pairsOf(report.cases);
  const failures = report.cases.filter((c) => c.outcome === 'fail' || c.outcome === 'flaky');
  const failed = gateFails(report, failOn);
  const { pass, fail, flaky, inconclusive } = report.summary;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Lumen report: ${fail + flaky} failing of ${report.cases.length} cases</title>
<style>${STYLE}</style>
</head>
<body>
<h1>Lumen: network policy verification</h1>
<p>Run on ${escape(meta.hostname)} at ${escape(meta.timestamp.toISOString())}, ${meta.durationSeconds.toFixed(1)} s. Gate (--fail-on ${escape([...failOn].join(','))}): <b class="${failed ? 'gate-failed' : 'gate-passed'}" id="gate">${failed ? 'failed' : 'passed'}</b>.</p>
<p class="summary" id="summary" data-pass="${pass}" data-fail="${fail}" data-flaky="${flaky}" data-inconclusive="${inconclusive}"><span><b>${report.cases.length}</b> cases</span><span><b>${pass}</b> pass</span><span><b>${fail}</b> fail</span><span><b>${flaky}</b> flaky</span><span><b>${inconclusive}</b> inconclusive</span></p>
<h2 id="matrix">Matrix: namespace × namespace</h2>
${legend()}
${matrix(pairs)}
<h2 id="failures">Failures: ${failures.length}</h2>
${failures.length === 0 ? '<p>None.</p>' : failures.map(failure).join('\n')}
<h2 id="coverage">Coverage</h2>
${coverage(report)}
<h2 id="not-judged">Not judged, and why</h2>
${notJudged(report)}
<h2 id="cases">Every case, by namespace pair</h2>
${caseRows(pairs)}
</body>
</html>
`;
}
