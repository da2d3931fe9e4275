import { describe, expect, it } from '@jest/globals';
import { htmlReport } from '../src/pipeline/html-report.js';
import { DEFAULT_FAIL_ON } from '../src/pipeline/junit.js';
import type { CaseReport, Outcome, RunReport } from '../src/pipeline/report.js';

const meta = { timestamp: new Date('2026-12-07T10:00:00Z'), durationSeconds: 3.2, hostname: 'ci' };

function caseOf(id: number, outcome: Outcome, from = 'other', to = 'default'): CaseReport {
  return {
    id: id.toString(16).padStart(16, '0'),
    from: { namespace: from, pod: 'client-0', labels: { run: 'client' } },
    to: { namespace: to, pod: 'web-0', labels: { app: 'web' } },
    port: 80,
    protocol: 'TCP',
    expected: 'deny',
    observed: outcome === 'pass' ? 'blocked' : 'reachable',
    outcome,
    attempts: 2,
    policies: ['default/web'],
    policy: 'default/web',
    verdict: `${outcome} after 2 attempts`,
    evidence: 'reachable: port open nmap state open (syn-ack)',
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  };
}

function reportOf(cases: CaseReport[]): RunReport {
  const summary: Record<Outcome, number> = { pass: 0, fail: 0, flaky: 0, inconclusive: 0 };
  for (const c of cases) summary[c.outcome] += 1;
  return { summary, cases };
}

const failureIds = (html: string): string[] =>
  [...html.matchAll(/<article class="failure" id="case-([0-9a-f]+)"/g)].map((m) => m[1]!);

describe('the HTML report', () => {
  it('lists every fail and flaky case with its evidence, and nothing else as a failure', () => {
    const cases = [
      caseOf(1, 'pass'),
      caseOf(2, 'fail'),
      caseOf(3, 'flaky'),
      caseOf(4, 'inconclusive'),
    ];
    const html = htmlReport(reportOf(cases), DEFAULT_FAIL_ON, meta);
    expect(failureIds(html)).toEqual([cases[1]!.id, cases[2]!.id]);
    expect(html).toContain('evidence: reachable: port open nmap state open (syn-ack)');
    expect(html).toContain('trace 4bf92f3577b34da6a3ce929d0e0e4736');
    expect(html).toContain('<b class="gate-failed" id="gate">failed</b>');
    expect(html).toContain('data-pass="1" data-fail="1" data-flaky="1" data-inconclusive="1"');
  });

  it('says the gate passed when no case has an outcome of --fail-on', () => {
    const html = htmlReport(
      reportOf([caseOf(1, 'pass'), caseOf(2, 'inconclusive')]),
      DEFAULT_FAIL_ON,
      meta,
    );
    expect(html).toContain('<b class="gate-passed" id="gate">passed</b>');
    expect(failureIds(html)).toEqual([]);
  });

  it('loads nothing: no script, no remote address, a CSP that forbids both', () => {
    const html = htmlReport(reportOf([caseOf(1, 'fail')]), DEFAULT_FAIL_ON, meta);
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'"`);
    expect(html).not.toMatch(/<script|<link|src=|https?:\/\//i);
  });

  it('escapes what the cluster wrote: labels, names and evidence are text, never markup', () => {
    const hostile: CaseReport = {
      ...caseOf(1, 'fail'),
      from: { namespace: 'other', pod: 'x', labels: { app: '<script>alert(1)</script>' } },
      evidence: '"><img src=x onerror=alert(1)>',
    };
    const html = htmlReport(reportOf([hostile]), DEFAULT_FAIL_ON, meta);
    expect(html).not.toContain('<script>alert');
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });

  it.each([
    [3, 'table class="matrix"'],
    [40, 'table class="matrix"'],
    [41, 'table class="pairs"'],
  ])('draws %i namespaces as %s', (namespaces, shape) => {
    const cases = Array.from({ length: namespaces }, (_, i) =>
      caseOf(i, i % 7 === 0 ? 'fail' : 'pass', `ns-${i}`, `ns-${(i + 1) % namespaces}`),
    );
    const html = htmlReport(reportOf(cases), DEFAULT_FAIL_ON, meta);
    expect(html).toContain(shape);
    // Every pair links to its cases.
    for (const c of cases)
      expect(html).toContain(`id="pair-${c.from.namespace}--${c.to.namespace}"`);
  });

  it('colours a matrix cell by its worst outcome', () => {
    const html = htmlReport(
      reportOf([caseOf(1, 'pass'), caseOf(2, 'flaky'), caseOf(3, 'pass', 'a', 'b')]),
      DEFAULT_FAIL_ON,
      meta,
    );
    expect(html).toMatch(/href="#pair-other--default"[^>]*data-outcome="flaky"/);
    expect(html).toMatch(/href="#pair-a--b"[^>]*data-outcome="pass"/);
  });
});
