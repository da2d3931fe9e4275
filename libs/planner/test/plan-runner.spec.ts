import { describe, expect, it } from '@jest/globals';
import { PlanRunner, type ClusterView } from '#lumen/planner';

const view = (key: string): ClusterView => ({
  cluster: { namespaces: [], pods: [], policies: [] },
  pods: [],
  changes: [{ kind: 'Pod', type: 'upsert', key }],
});

describe('PlanRunner', () => {
  it('merges the views that arrive while a plan runs into one next plan, and sweeps into one', async () => {
    const planned: string[][] = [];
    let sweeps = 0;
    let release: () => void = () => undefined;
    const runner = new PlanRunner(
      {
        update: async (v: ClusterView) => {
          planned.push(v.changes.map((c) => c.key));
          if (planned.length === 1) await new Promise<void>((resolve) => (release = resolve));
        },
        sweep: async () => {
          sweeps += 1;
        },
      },
      () => undefined,
    );
    runner.change(view('a'));
    await new Promise((resolve) => setTimeout(resolve, 0));
    // The first plan runs; these wait, and become one plan with every change.
    for (const key of ['b', 'c', 'd']) runner.change(view(key));
    runner.sweep();
    runner.sweep();
    release();
    await runner.idle();
    expect(planned).toEqual([['a'], ['b', 'c', 'd']]);
    expect(sweeps).toBe(1);
  });

  it('reports a failed plan and goes on with the next', async () => {
    const failures: unknown[] = [];
    const planned: string[] = [];
    const runner = new PlanRunner(
      {
        update: async (v: ClusterView) => {
          const key = v.changes[0]?.key ?? '';
          if (key === 'bad') throw new Error('API unreachable');
          planned.push(key);
        },
        sweep: async () => undefined,
      },
      (error) => failures.push(error),
    );
    runner.change(view('bad'));
    await runner.idle();
    runner.change(view('good'));
    await runner.idle();
    expect(String(failures[0])).toContain('API unreachable');
    expect(planned).toEqual(['good']);
  });
});
