import { describe, expect, it } from '@jest/globals';
import { StoreOutageGuard } from '#lumen/reporter';
import { isStoreUnreachable } from '#lumen/store';
import { ManualClock, RecordingLog } from '#lumen/testing';

const outageError = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), {
  code: 'ECONNREFUSED',
});

function guard(): { guard: StoreOutageGuard; log: RecordingLog } {
  const log = new RecordingLog();
  return {
    guard: new StoreOutageGuard(
      { clock: new ManualClock(), log, unreachable: isStoreUnreachable },
      { firstRetryMs: 1, maxRetryMs: 4 },
    ),
    log,
  };
}

describe('isStoreUnreachable', () => {
  it.each([
    ['a refused connection', outageError],
    ['a reset socket', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })],
    [
      'PostgreSQL shutting down (57P01)',
      Object.assign(new Error('terminating'), { code: '57P01' }),
    ],
    ['PostgreSQL starting up (57P03)', Object.assign(new Error('starting'), { code: '57P03' })],
    ['a connection exception (08006)', Object.assign(new Error('failure'), { code: '08006' })],
    ['a dropped connection, by message', new Error('Connection terminated unexpectedly')],
    [
      'a driver error wrapped by TypeORM',
      Object.assign(new Error('Query failed'), { driverError: outageError }),
    ],
    ['an error with a cause', new Error('write failed', { cause: outageError })],
  ])('is true for %s', (_what, error) => {
    expect(isStoreUnreachable(error)).toBe(true);
  });

  it.each([
    ['a unique violation', Object.assign(new Error('duplicate key'), { code: '23505' })],
    ['a syntax error', Object.assign(new Error('syntax error'), { code: '42601' })],
    ['a plain error', new Error('value out of range')],
    ['a string', 'ECONNREFUSED'],
    ['nothing', undefined],
  ])('is false for %s', (_what, error) => {
    expect(isStoreUnreachable(error)).toBe(false);
  });
});

describe('StoreOutageGuard', () => {
  it('runs the work again through an outage, is not ready meanwhile, and says when it ends', async () => {
    const { guard: outage, log } = guard();
    let calls = 0;
    const readiness: (string | undefined)[] = [];
    const value = await outage.run(async () => {
      calls += 1;
      readiness.push(outage.notReady());
      if (calls <= 3) throw outageError;
      return 'stored';
    });
    expect(value).toBe('stored');
    expect(calls).toBe(4);
    expect(readiness[0]).toBeUndefined();
    expect(readiness[1]).toMatch(/^the store is unreachable since .*; messages wait unacked$/);
    expect(outage.notReady()).toBeUndefined();
    // One warning for the outage however many retries, one line when it ends.
    expect(log.warnings()).toEqual([
      'store unreachable: holding messages unacked until it answers',
    ]);
    expect(log.lines.filter((l) => l.message === 'store reachable again')).toHaveLength(1);
  });

  it('hands any other failure straight back, for the bus to retry or dead-letter', async () => {
    const { guard: outage } = guard();
    let calls = 0;
    await expect(
      outage.run(async () => {
        calls += 1;
        throw new Error('value out of range');
      }),
    ).rejects.toThrow('value out of range');
    expect(calls).toBe(1);
    expect(outage.notReady()).toBeUndefined();
  });

  it('stops waiting when stopped, and the work goes back unacked with its error', async () => {
    const log = new RecordingLog();
    const outage = new StoreOutageGuard(
      { clock: new ManualClock(), log, unreachable: isStoreUnreachable },
      { firstRetryMs: 60_000, maxRetryMs: 60_000 },
    );
    const running = outage.run(async () => {
      throw outageError;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    outage.stop();
    await expect(running).rejects.toThrow('ECONNREFUSED');
  });
});
