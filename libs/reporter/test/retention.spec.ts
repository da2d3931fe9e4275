import { describe, expect, it } from '@jest/globals';
import type { RetentionPolicy, RetentionReport } from '#lumen/contracts';
import { REPORTER_DEFAULTS, startRetention, type RetentionStore } from '#lumen/reporter';
import { ManualClock, RecordingLog } from '#lumen/testing';

/** A store whose retention runs are scripted: each call takes the next answer. */
class ScriptedStore implements RetentionStore {
  readonly calls: { policy: RetentionPolicy; now: Date }[] = [];
  constructor(private readonly answers: (RetentionReport | Error)[]) {}
  applyRetention(policy: RetentionPolicy, now: Date): Promise<RetentionReport> {
    this.calls.push({ policy, now });
    const answer = this.answers.shift() ?? { attempts: 0, history: 0, cases: 0, alerts: 0 };
    return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
  }
}

const tick = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('startRetention', () => {
  it('applies the policy at once and then on its interval; a failed run is logged and the next one runs', async () => {
    const store = new ScriptedStore([
      new Error('database is locked'),
      { attempts: 3, history: 0, cases: 1, alerts: 2 },
    ]);
    const log = new RecordingLog();
    const stop = startRetention(
      { store, clock: new ManualClock(), log },
      { ...REPORTER_DEFAULTS.retention, everyMs: 20 },
    );
    await tick(70);
    await stop();
    const calls = store.calls.length;
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(store.calls[0]?.policy.attemptsPerCase).toBe(
      REPORTER_DEFAULTS.retention.attemptsPerCase,
    );
    expect(log.lines).toContainEqual({
      level: 'warn',
      message: 'retention failed; it runs again later',
      fields: { error: 'Error: database is locked' },
    });
    expect(log.lines).toContainEqual({
      level: 'info',
      message: 'retention applied',
      fields: { attempts: 3, history: 0, cases: 1, alerts: 2 },
    });
    // Stopped: no run after.
    await tick(50);
    expect(store.calls).toHaveLength(calls);
  });
});
