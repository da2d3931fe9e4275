import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { Reachability } from '#lumen/contracts';
import { decide, type Attempt } from '#lumen/reporter';

const settings = { settleWindowMs: 10_000, maxAttempts: 3, backoffMs: 1_000 };
const attempt = (n: number, at: number, reachability: Reachability): Attempt => ({
  attempt: n,
  observedAt: at,
  reachability,
  basis: reachability === 'inconclusive' ? 'source pod gone' : 'nmap said so',
});

describe('decide (the verdict model with race retries)', () => {
  it.each([
    [
      'a first match passes at once',
      'deny',
      [attempt(1, 30_000, 'blocked')],
      { kind: 'final', outcome: 'pass', enforcementLatencyMs: 30_000 },
    ],
    [
      'a mismatch inside the window is re-probed after the backoff, to time the enforcement',
      'deny',
      [attempt(1, 2_000, 'reachable')],
      { kind: 'reprobe', afterMs: 1_000 },
    ],
    [
      'the backoff inside the window doubles, but never past the window',
      'deny',
      [
        attempt(1, 2_000, 'reachable'),
        attempt(2, 3_000, 'reachable'),
        attempt(3, 5_000, 'reachable'),
        attempt(4, 9_000, 'reachable'),
      ],
      { kind: 'reprobe', afterMs: 1_000 },
    ],
    [
      'a mismatch that heals inside the window passes with the time it took',
      'deny',
      [attempt(1, 500, 'reachable'), attempt(2, 1_500, 'reachable'), attempt(3, 3_500, 'blocked')],
      { kind: 'final', outcome: 'pass', enforcementLatencyMs: 3_500 },
    ],
    [
      'a mismatch that heals is a pass with its enforcement latency',
      'deny',
      [attempt(1, 2_000, 'reachable'), attempt(2, 10_500, 'blocked')],
      { kind: 'final', outcome: 'pass', enforcementLatencyMs: 10_500 },
    ],
    [
      'a mismatch outside the window is confirmed first',
      'allow',
      [attempt(1, 20_000, 'blocked')],
      { kind: 'reprobe', afterMs: 1_000 },
    ],
    [
      'a mismatch that persists outside the window fails',
      'allow',
      [attempt(1, 20_000, 'blocked'), attempt(2, 21_000, 'blocked'), attempt(3, 23_000, 'blocked')],
      { kind: 'final', outcome: 'fail' },
    ],
    [
      'attempts that disagree outside the window are flaky',
      'deny',
      [
        attempt(1, 20_000, 'reachable'),
        attempt(2, 21_000, 'blocked'),
        attempt(3, 23_000, 'reachable'),
      ],
      { kind: 'final', outcome: 'flaky' },
    ],
    [
      'a late match after an outside mismatch is still flaky',
      'deny',
      [attempt(1, 20_000, 'reachable'), attempt(2, 21_000, 'blocked')],
      { kind: 'final', outcome: 'flaky' },
    ],
    [
      'an inconclusive attempt is retried',
      'allow',
      [attempt(1, 20_000, 'inconclusive')],
      { kind: 'reprobe', afterMs: 1_000 },
    ],
    [
      'only inconclusive attempts end inconclusive',
      'allow',
      [
        attempt(1, 20_000, 'inconclusive'),
        attempt(2, 21_000, 'inconclusive'),
        attempt(3, 23_000, 'inconclusive'),
      ],
      { kind: 'final', outcome: 'inconclusive', reason: 'source pod gone' },
    ],
    [
      'mismatches inside the window do not use up the attempts',
      'allow',
      [attempt(1, 1_000, 'blocked'), attempt(2, 2_000, 'blocked'), attempt(3, 4_000, 'blocked')],
      { kind: 'reprobe', afterMs: 4_000 },
    ],
    [
      'a mismatch that persists past the window fails after maxAttempts attempts outside it',
      'allow',
      [
        attempt(1, 1_000, 'blocked'),
        attempt(2, 10_000, 'blocked'),
        attempt(3, 11_000, 'blocked'),
        attempt(4, 13_000, 'blocked'),
      ],
      { kind: 'final', outcome: 'fail' },
    ],
  ] as const)('%s', (_name, expected, attempts, decision) => {
    expect(decide({ expected, changedAt: 0, attempts }, settings)).toMatchObject(decision);
  });

  it.each([
    [
      'a first match waits for its confirmations',
      [attempt(1, 20_000, 'blocked')],
      { kind: 'reprobe', afterMs: 1_000, reason: 'confirming a pass' },
    ],
    [
      'agreeing confirmations pass',
      [attempt(1, 20_000, 'blocked'), attempt(2, 21_000, 'blocked'), attempt(3, 22_000, 'blocked')],
      { kind: 'final', outcome: 'pass' },
    ],
    [
      'a confirmation that disagrees makes the case flaky',
      [
        attempt(1, 20_000, 'blocked'),
        attempt(2, 21_000, 'reachable'),
        attempt(3, 22_000, 'blocked'),
      ],
      { kind: 'final', outcome: 'flaky' },
    ],
  ] as const)('with confirmAttempts 3: %s', (_name, list, decision) => {
    expect(
      decide(
        { expected: 'deny', changedAt: 0, attempts: list },
        { ...settings, confirmAttempts: 3 },
      ),
    ).toMatchObject(decision);
  });

  const attempts = fc
    .array(
      fc.record({
        gap: fc.integer({ min: 0, max: 8_000 }),
        reachability: fc.constantFrom<Reachability>('reachable', 'blocked', 'inconclusive'),
      }),
      { minLength: 1, maxLength: 3 },
    )
    .map((list) => {
      let at = 0;
      return list.map((a, i) => attempt(i + 1, (at += a.gap), a.reachability));
    });

  it('never fails a case on attempts that all fell inside the settle window (property)', () => {
    fc.assert(
      fc.property(
        attempts,
        fc.constantFrom<'allow' | 'deny'>('allow', 'deny'),
        (list, expected) => {
          const decision = decide(
            { expected, changedAt: list[list.length - 1]!.observedAt, attempts: list },
            settings,
          );
          expect(decision.kind === 'final' && decision.outcome === 'fail').toBe(false);
        },
      ),
      { seed: 5, numRuns: 2000 },
    );
  });

  it('passes exactly when the newest conclusive attempt matches and nothing outside the window disagrees (property)', () => {
    fc.assert(
      fc.property(
        attempts,
        fc.constantFrom<'allow' | 'deny'>('allow', 'deny'),
        fc.integer({ min: -30_000, max: 30_000 }),
        (list, expected, changedAt) => {
          const decision = decide({ expected, changedAt, attempts: list }, settings);
          const conclusive = list.filter((a) => a.reachability !== 'inconclusive');
          const matches = (a: Attempt): boolean =>
            (a.reachability === 'reachable') === (expected === 'allow');
          const outside = conclusive.filter(
            (a) => a.observedAt - changedAt >= settings.settleWindowMs,
          );
          const newest = conclusive[conclusive.length - 1];
          const lastInconclusive = list[list.length - 1]!.reachability === 'inconclusive';
          const counted = list.filter(
            (a) =>
              a.reachability === 'inconclusive' ||
              a.observedAt - changedAt >= settings.settleWindowMs,
          ).length;
          const shouldPass =
            newest !== undefined &&
            matches(newest) &&
            !(outside.some(matches) && outside.some((a) => !matches(a))) &&
            !(lastInconclusive && counted < settings.maxAttempts);
          expect(decision.kind === 'final' && decision.outcome === 'pass').toBe(shouldPass);
          if (decision.kind === 'final')
            expect(
              counted >= settings.maxAttempts ||
                decision.outcome === 'pass' ||
                decision.outcome === 'flaky',
            ).toBe(true);
        },
      ),
      { seed: 6, numRuns: 2000 },
    );
  });
});
