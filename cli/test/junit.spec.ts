import { describe, expect, it } from '@jest/globals';
import { junitReport, parseFailOn, gateFails } from '../src/pipeline/junit.js';
import { progressBar, progressLine } from '../src/pipeline/progress.js';
import type { CaseReport, RunReport } from '../src/pipeline/report.js';

const base: CaseReport = {
  id: '0123456789abcdef',
  from: { namespace: 'other', pod: 'client-0', labels: { run: 'client' } },
  to: { namespace: 'default', pod: 'web-0', labels: { app: 'web' } },
  port: 80,
  protocol: 'TCP',
  expected: 'deny',
  observed: 'reachable',
  outcome: 'fail',
  attempts: 2,
  policies: ['default/web'],
  policy: 'default/web',
  verdict: 'reachable in 2 attempts outside the settle window',
  evidence: 'reachable: port open nmap state open (syn-ack)',
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
};

const report = (cases: CaseReport[]): RunReport => ({
  summary: { pass: 0, fail: 0, flaky: 0, inconclusive: 0 },
  cases,
});

describe('--fail-on', () => {
  it.each([
    ['fail', ['fail']],
    ['fail,flaky', ['fail', 'flaky']],
    [' inconclusive , fail ', ['inconclusive', 'fail']],
  ])('%j → %j', (text, outcomes) => {
    expect([...parseFailOn(text)]).toEqual(outcomes);
  });

  it.each(['', 'pass', 'fail,maybe', ','])('refuses %j', (text) => {
    expect(() => parseFailOn(text)).toThrow('--fail-on takes');
  });

  it.each([
    ['fail', 'fail', true],
    ['flaky', 'fail', false],
    ['inconclusive', 'fail,flaky', false],
    ['inconclusive', 'inconclusive', true],
    ['pass', 'fail,flaky,inconclusive', false],
  ] as const)('a %s case with --fail-on %s fails the gate: %s', (outcome, failOn, fails) => {
    expect(gateFails(report([{ ...base, outcome }]), parseFailOn(failOn))).toBe(fails);
  });
});

describe('JUnit report', () => {
  const meta = {
    timestamp: new Date('2026-11-26T10:00:00Z'),
    durationSeconds: 12.5,
    hostname: 'ci',
  };

  it('groups cases per policy and puts the evidence in each failure, escaped', () => {
    const xml = junitReport(
      report([
        base,
        { ...base, id: '1', outcome: 'pass', policy: 'default/web' },
        { ...base, id: '2', outcome: 'inconclusive', policy: 'a/<b>&"c"' },
        { ...base, id: '3', outcome: 'flaky', policy: null },
      ]),
      parseFailOn('fail,flaky'),
      meta,
    );
    expect(xml).toContain(
      '<testsuites name="lumen" tests="4" failures="2" errors="0" time="12.500">',
    );
    expect(xml).toContain(
      '<testsuite name="default/web" tests="2" failures="1" errors="0" skipped="0"',
    );
    expect(xml).toContain(
      '<testsuite name="a/&lt;b&gt;&amp;&quot;c&quot;" tests="1" failures="0" errors="0" skipped="1"',
    );
    expect(xml).toContain('<testsuite name="(no policy: default allow)" tests="1" failures="1"');
    expect(xml).toContain(
      '<failure type="fail" message="fail: expected deny, observed reachable">',
    );
    expect(xml).toContain('evidence: reachable: port open nmap state open (syn-ack)');
    expect(xml).toContain('trace 4bf92f3577b34da6a3ce929d0e0e4736');
    expect(xml).toContain('<skipped>inconclusive: ');
  });

  it('reports inconclusive cases as errors when the gate includes them', () => {
    const xml = junitReport(
      report([{ ...base, outcome: 'inconclusive' }]),
      parseFailOn('inconclusive'),
      meta,
    );
    expect(xml).toContain('<error type="inconclusive"');
    expect(xml).toContain('errors="1"');
  });
});

describe('progress', () => {
  it.each([
    [{ planned: 0, probed: 0, judged: 0 }, '[..............................]'],
    [{ planned: 10, probed: 10, judged: 5 }, '[###############...............]'],
    [{ planned: 10, probed: 10, judged: 10 }, '[##############################]'],
  ])('draws %j as %s', (p, bar) => {
    const line = progressBar(p, 3.2);
    expect(
      line.startsWith(
        `\r${bar} planned ${p.planned} · probed ${p.probed} · judged ${p.judged} · 3 s`,
      ),
    ).toBe(true);
  });

  it('logs plain lines without a terminal', () => {
    expect(progressLine({ planned: 4, probed: 2, judged: 1 }, 7)).toBe(
      'lumen run: 7 s: planned 4, probed 2, judged 1\n',
    );
  });
});
