import type { Outcome, Reachability } from '#lumen/contracts';
import { REPORTER_DEFAULTS, type RaceSettings } from './settings.js';

export interface Attempt {
  readonly attempt: number;
  readonly observedAt: number;
  readonly reachability: Reachability;
  readonly basis: string;
}

/** Re-probes never wait longer than this, however many attempts came before. */
const MAX_BACKOFF_MS = 60_000;

export type Decision =
  | { readonly kind: 'reprobe'; readonly afterMs: number; readonly reason: string }
  | {
      readonly kind: 'final';
      readonly outcome: Outcome;
      readonly reason: string;
      /** From the relevant change to the first observation that matched the expectation. */
      readonly enforcementLatencyMs?: number;
    };

export interface CaseState {
  readonly expected: 'allow' | 'deny';
  /** When the last change relevant to the case was seen (start of the settle window). */
  readonly changedAt: number;
  /** In order; the last one is the newest. */
  readonly attempts: readonly Attempt[];
}

/**
 * DESIGN's verdict model for one case, after its newest attempt: judge it, or ask for
 * another probe. A mismatch inside the settle window is not yet a failure: it is re-probed
 * with backoff (so that the first matching observation measures the enforcement latency)
 * until the window has passed, and those early attempts do not count against maxAttempts.
 * A mismatch becomes `fail` only when it persists outside the window for maxAttempts
 * attempts; attempts that disagree outside the window make the case `flaky`.
 */
export function decide(
  state: CaseState,
  settings: RaceSettings = REPORTER_DEFAULTS.race,
): Decision {
  const { attempts, expected, changedAt } = state;
  const last = attempts[attempts.length - 1];
  if (!last) return { kind: 'reprobe', afterMs: 0, reason: 'not probed yet' };
  const matches = (a: Attempt): boolean =>
    (a.reachability === 'reachable') === (expected === 'allow');
  const settled = (a: Attempt): boolean => a.observedAt - changedAt >= settings.settleWindowMs;
  const conclusive = attempts.filter((a) => a.reachability !== 'inconclusive');
  const outside = conclusive.filter(settled);
  // Early conclusive attempts are the race itself; they do not use up the case's attempts.
  const counted = attempts.filter((a) => a.reachability === 'inconclusive' || settled(a)).length;
  const exhausted = counted >= Math.max(settings.maxAttempts, settings.confirmAttempts ?? 1);
  const backoff = (n: number): number =>
    Math.min(MAX_BACKOFF_MS, settings.backoffMs * 2 ** Math.max(0, n - 1));
  const firstMatch = conclusive.find(matches);
  const latency = firstMatch
    ? { enforcementLatencyMs: Math.max(0, firstMatch.observedAt - changedAt) }
    : {};

  // Attempts that disagree once the window has passed are the verdict: more probes cannot undo it.
  if (outside.some(matches) && outside.some((a) => !matches(a)))
    return {
      kind: 'final',
      outcome: 'flaky',
      reason: 'attempts outside the settle window disagree',
      ...latency,
    };
  if (last.reachability === 'inconclusive' && !exhausted)
    return { kind: 'reprobe', afterMs: backoff(counted), reason: `inconclusive: ${last.basis}` };
  const newest = conclusive[conclusive.length - 1];
  if (!newest) return { kind: 'final', outcome: 'inconclusive', reason: last.basis };
  if (matches(newest)) return passOrConfirm(conclusive, firstMatch, settings, latency);
  if (!settled(newest)) {
    const untilSettled = changedAt + settings.settleWindowMs - newest.observedAt;
    return {
      kind: 'reprobe',
      afterMs: Math.max(0, Math.min(backoff(attempts.length - counted), untilSettled)),
      reason: 'mismatch inside the settle window',
    };
  }
  if (!exhausted)
    return { kind: 'reprobe', afterMs: backoff(counted), reason: 'mismatch: confirming' };
  return {
    kind: 'final',
    outcome: 'fail',
    reason: `expected ${expected === 'allow' ? 'reachable' : 'blocked'}, observed ${newest.reachability}: ${newest.basis}`,
  };
}

/** The newest attempt matched: a pass, once enough attempts since the first match agree. */
function passOrConfirm(
  conclusive: readonly Attempt[],
  firstMatch: Attempt | undefined,
  settings: RaceSettings,
  latency: { enforcementLatencyMs?: number },
): Decision {
  const newest = conclusive[conclusive.length - 1] as Attempt;
  const confirmed = firstMatch ? conclusive.length - conclusive.indexOf(firstMatch) : 0;
  if (confirmed < (settings.confirmAttempts ?? 1))
    return { kind: 'reprobe', afterMs: settings.backoffMs, reason: 'confirming a pass' };
  return {
    kind: 'final',
    outcome: 'pass',
    reason: `observed ${newest.reachability} as expected`,
    ...latency,
  };
}
