import { describe, expect, it } from '@jest/globals';
import { CaseTurns } from '#lumen/reporter';

const tick = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('CaseTurns', () => {
  it('runs one case’s work in order and different cases side by side, and forgets idle cases', async () => {
    const turns = new CaseTurns();
    const log: string[] = [];
    const step = (caseId: string, name: string, ms: number) =>
      turns.runAll([caseId], async () => {
        log.push(`${name} start`);
        await tick(ms);
        log.push(`${name} end`);
      });
    await Promise.all([step('a', 'a1', 30), step('a', 'a2', 1), step('b', 'b1', 5)]);
    // a2 waited for a1; b1 did not wait for a.
    expect(log.indexOf('a2 start')).toBeGreaterThan(log.indexOf('a1 end'));
    expect(log.indexOf('b1 end')).toBeLessThan(log.indexOf('a1 end'));
    await tick(0);
    expect(turns.busy).toBe(0);
  });

  it('goes on with a case after a failure, which its caller sees', async () => {
    const turns = new CaseTurns();
    const failed = turns.runAll(['a'], () => Promise.reject(new Error('store down')));
    const next = turns.runAll(['a'], () => Promise.resolve('judged'));
    await expect(failed).rejects.toThrow('store down');
    await expect(next).resolves.toBe('judged');
  });
});
