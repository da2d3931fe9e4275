import { describe, expect, it } from '@jest/globals';
import { fuzzTargets, runFuzzTarget } from '#lumen/testing';

/**
 * Every boundary that parses outside input, fuzzed with a fixed seed so that a failure
 * here is reproducible; `npm run fuzz` runs the same targets far longer with a fresh seed.
 */
const SEED = 20261202;
const RUNS = 400;

describe.each(fuzzTargets().map((t) => [t.name, t] as const))('fuzzing the %s', (_name, target) => {
  it(`accepts or refuses ${RUNS} inputs with a reason, and never crashes`, () => {
    const tally = runFuzzTarget(target, { seed: SEED, numRuns: RUNS });
    expect(tally.accepted + tally.refused).toBe(RUNS);
    // The inputs reach both sides of the boundary, or the fuzzer proves little.
    expect(tally.refused).toBeGreaterThan(0);
    expect(tally.accepted).toBeGreaterThan(0);
  });
});
