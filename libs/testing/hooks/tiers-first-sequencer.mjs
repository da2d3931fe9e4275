import Sequencer from '@jest/test-sequencer';

/**
 * Lab suites first, then integration, then unit; within a tier, Jest's own order (failed
 * first, then slowest by the cached timings, or largest file on a clean clone).
 *
 * Why: on a clean clone Jest orders every suite by file size alone, and the longest lab
 * suite (the pipeline, about 6 minutes) started last, beside nothing, which made `npm test`
 * two workers' worth of lab time plus that suite alone: 853 s of jest. Lab suites mostly
 * wait on nmap and timeouts; started first they share the two workers, and the short unit
 * suites fill in at the end.
 */
const TIER = { lab: 2, integration: 1, unit: 0 };

export default class TiersFirstSequencer extends Sequencer {
  async sort(tests) {
    const ordered = await super.sort(tests);
    const tier = (test) => TIER[test.context.config.displayName?.name ?? 'unit'] ?? 0;
    // Array.prototype.sort is stable: Jest's order holds within a tier.
    return [...ordered].sort((a, b) => tier(b) - tier(a));
  }
}
