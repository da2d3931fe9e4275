import { describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { LabNames } from '#lumen/lab';
import { run } from '#lumen/host';
import { TEST_LAB_ROOT, labFootprint, standaloneCopy } from '#lumen/testing';

describe('lumen demo (npm run demo)', () => {
  it('runs from a clone with nothing beside it: verifies recipes, runs the four services, finds the and-as-or regressions, and leaves nothing behind', async () => {
    // As a user runs it: the real bin/lumen.mjs, as a process, in a copy of the repository
    // with no ../shared beside it (the demo's scenarios are the repository's own).
    const clone = standaloneCopy();
    expect(existsSync(join(dirname(clone), 'shared'))).toBe(false);
    // Every recipe runs in cli/test/pipeline.lab.spec.ts; here the two of recipe 07 do.
    const result = await run(
      process.execPath,
      [join(clone, 'bin', 'lumen.mjs'), 'demo', '--recipes', '07'],
      {
        env: { LUMEN_LAB_ROOT: TEST_LAB_ROOT },
        timeoutMs: 600_000,
      },
    );
    const out = result.stdout;
    expect({ code: result.code, err: result.stderr }).toEqual({ code: 0, err: '' });
    expect(out).toMatch(/2 recipes: (\d+) of \1 cases pass/);
    // Recipe 07's four other pods to web's port 80, and web to itself (an unlisted source).
    expect(out).toContain('5 cases: 5 pass, 0 fail, 0 flaky, 0 inconclusive');
    expect(out).toContain('2 regressions (pass → fail)');
    expect(out).toMatch(
      /Pods in namespace operations with labels type=batch cannot reach pods in namespace default with labels app=web on port 80 ✗/,
    );
    const detected = /Detected ([\d.]+)–([\d.]+) s after the fault/.exec(out);
    expect(detected).not.toBeNull();
    // The regressions also left as signed CloudEvents webhooks for their policy: one, or
    // two when they were decided apart; each regression's alert is shown once.
    const alert =
      /Alert: (?:one signed CloudEvents webhook|2 signed CloudEvents webhooks) for policy default\/web-allow-ops-monitoring \(signature valid\), the first ([\d.]+) s after the fault:\n((?: {2}.*\n {4}evidence: .*\n)+)/.exec(
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
  }, 420_000);
});
