import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { neighbourLimitsFor } from '#lumen/lab';

describe('neighbourLimitsFor (the kernel neighbour table a lab of n pods needs)', () => {
  it.each([
    // The kernel's defaults (512/1024) do not hold 202 pods probing each other.
    [202, { soft: 512, hard: 1024 }, { soft: 32768, hard: 65536 }],
    [9, { soft: 512, hard: 1024 }, { soft: 1024, hard: 2048 }],
    // Limits a host already set higher stay.
    [202, { soft: 100_000, hard: 200_000 }, undefined],
    [202, { soft: 1024, hard: 200_000 }, { soft: 32768, hard: 200_000 }],
  ])('%d pods with %o → %o', (pods, current, expected) => {
    expect(neighbourLimitsFor(pods, current)).toEqual(expected);
  });

  it('never lowers a limit, and always leaves room for every pair of pods (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2000 }),
        fc.integer({ min: 0, max: 1 << 22 }),
        fc.integer({ min: 0, max: 1 << 22 }),
        (pods, soft, hard) => {
          const raised = neighbourLimitsFor(pods, { soft, hard }) ?? { soft, hard };
          expect(raised.soft).toBeGreaterThanOrEqual(soft);
          expect(raised.hard).toBeGreaterThanOrEqual(hard);
          expect(raised.hard).toBeGreaterThanOrEqual(pods * pods);
          expect(raised.soft * 2).toBeGreaterThanOrEqual(pods * pods);
        },
      ),
    );
  });
});
