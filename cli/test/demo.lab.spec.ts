import { describe, expect, it } from '@jest/globals';
import { LabNames } from '#lumen/lab';
import { TEST_LAB_ROOT, labFootprint } from '#lumen/testing';
import { main } from '../src/main.js';

describe('lumen demo (npm run demo)', () => {
  it('verifies recipes, runs the four services, finds the and-as-or regressions, and leaves nothing behind', async () => {
    const before = process.env.LUMEN_LAB_ROOT;
    process.env.LUMEN_LAB_ROOT = TEST_LAB_ROOT;
    let out = '';
    let err = '';
    // Every recipe runs in cli/test/pipeline.lab.spec.ts; here the two of recipe 07 do.
    const code = await main(['demo', '--recipes', '07'], {
      stdout: (t) => (out += t),
      stderr: (t) => (err += t),
    }).finally(() => {
      if (before === undefined) delete process.env.LUMEN_LAB_ROOT;
      else process.env.LUMEN_LAB_ROOT = before;
    });
    expect({ code, err }).toEqual({ code: 0, err: '' });
    expect(out).toMatch(/2 recipes: (\d+) of \1 cases pass/);
    expect(out).toContain('4 cases: 4 pass, 0 fail, 0 flaky, 0 inconclusive');
    expect(out).toContain('2 regressions (pass → fail)');
    expect(out).toMatch(
      /Pods in namespace other with labels run=client cannot reach pods in namespace default with labels app=web on port 80 ✗/,
    );
    const detected = /Detected ([\d.]+)–([\d.]+) s after the fault/.exec(out);
    expect(detected).not.toBeNull();
    // The regressions also left as one signed CloudEvents webhook for their policy.
    const alert =
      /Alert: one signed CloudEvents webhook for policy default\/web-allow-all-ns-monitoring \(signature valid\), ([\d.]+) s after the fault:\n((?: {2}.*\n {4}evidence: .*\n)+)/.exec(
        out,
      );
    expect(alert).not.toBeNull();
    expect(alert![2]!.match(/evidence: reachable: .*; trace [0-9a-f]{32}/g)).toHaveLength(2);
    expect(out).toContain('Everything Lumen started is stopped and removed.');
    // Other suites' labs may run beside this one: look for the demo's own.
    for (const name of ['demo', 'demo-r0', 'demo-r1'])
      expect(labFootprint(new LabNames(name, TEST_LAB_ROOT))).toEqual({
        netns: [],
        cgroups: [],
        processes: [],
      });
  });
});
