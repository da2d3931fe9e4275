/**
 * npm run bench:e2e [-- --record]   (root)
 *
 * End to end in the lab, as `npm run demo` runs it: the time from the first `lab up` to
 * the last verdict for every recipe (one lab each, two at a time, planner + scheduler +
 * reporter in one process with a prober per node), then the four services as processes
 * against recipe 07 and the detection time of the injected and-as-or fault (from the
 * fault to the regression's verdict; budget: sweep interval + 5 s).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exampleScenarioDirs } from '#lumen/scenario';
import { RECIPE_07, servicesAndFault, verifyRecipes, withNats } from '../cli/src/commands/demo.js';
import { lumenRepository } from '../cli/src/paths.js';
import { measureMachine, recordSection } from './report.js';

const labRoot = '/run/lumen/bench-labs';
const sweepMs = 10_000;
const scratch = mkdtempSync(join(tmpdir(), 'lumen-bench-e2e-'));
const quiet = { stdout: () => undefined, stderr: (t: string) => process.stderr.write(t) };
try {
  const recipes = await verifyRecipes(quiet, labRoot, scratch);
  const fault = await withNats(quiet, undefined, join(scratch, 'nats-2'), (url) =>
    servicesAndFault(
      { io: quiet, labRoot, natsUrl: url, scratch, sweepMs },
      join(exampleScenarioDirs(lumenRepository()).recipes, RECIPE_07),
    ),
  );
  const detection = [...fault.detectionMs].sort((a, b) => a - b);
  const lines = [
    `recipes: ${recipes.recipes} labs, ${recipes.cases} cases, ${recipes.passed} pass`,
    `first lab up to last verdict (two labs at a time): ${(recipes.ms / 1000).toFixed(1)} s`,
    `four services on recipe 07, start to every first verdict: ${(fault.firstVerdictsMs / 1000).toFixed(1)} s`,
    `and-as-or injected: ${fault.regressions} regressions, detected after ${detection.map((ms) => (ms / 1000).toFixed(1)).join(', ')} s (sweep interval ${sweepMs / 1000} s)`,
    `signed webhook (one CloudEvent for the policy) received ${fault.alertMs === undefined ? 'never' : `${(fault.alertMs / 1000).toFixed(1)} s`} after the fault (budget: sweep interval + 5 s = ${sweepMs / 1000 + 5} s)`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (process.argv.includes('--record'))
    recordSection('e2e', 'npm run bench:e2e', measureMachine(), lines);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
