/**
 * `npm run fuzz [-- --runs N] [--seed S] [--target NAME]`: every boundary that parses
 * outside input (libs/testing/src/fuzz.ts), far longer than the suite's fixed-seed run and
 * with a fresh seed each time (printed, so that a find can be replayed). Exits 1 with
 * fast-check's shrunk counterexample on the first input that crashes a boundary.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { fuzzTargets, runFuzzTarget } from '#lumen/testing';
import { lumenRepository } from '../cli/src/paths.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '20000' },
    seed: { type: 'string' },
    target: { type: 'string' },
  },
});
const runs = Number(values.runs);
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(seed)) {
  console.error('fuzz: --runs and --seed take whole numbers');
  process.exit(2);
}
const targets = fuzzTargets(lumenRepository()).filter(
  (t) => !values.target || t.name.includes(values.target),
);
if (targets.length === 0) {
  console.error(`fuzz: no target matches ${values.target ?? ''}`);
  process.exit(2);
}
console.log(`fuzz: seed ${seed}, ${runs} inputs per target`);
let failed = false;
for (const target of targets) {
  const started = performance.now();
  try {
    const { accepted, refused } = runFuzzTarget(target, { seed, numRuns: runs });
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `  ${target.name}: ${accepted} accepted, ${refused} refused with a reason, none crashed (${seconds.toFixed(1)} s)`,
    );
  } catch (error) {
    failed = true;
    console.log(
      `  ${target.name}: CRASH\n${error instanceof Error ? error.message : String(error)}`,
    );
  }
}
process.exit(failed ? 1 : 0);
